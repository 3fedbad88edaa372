"""The demo corpus: MPD format field by field, determinism, the popularity tail, and the hidden structure's signal."""

import json
import re

import numpy as np
import pytest
import scipy.sparse as sp

from mmrec.demo.config import DemoDataConfig
from mmrec.demo.corpus import make_catalogue, make_slice, playlist_tracks, slice_bounds
from mmrec.demo.modalities import UNIT_FEATURES, audio_features, genre_content

SMALL = DemoDataConfig(playlists=1500, songs=20000, seed=7)
URI = {kind: re.compile(rf"^spotify:{kind}:[0-9A-Za-z]{{22}}$") for kind in ("track", "artist", "album")}
PLAYLIST_KEYS = [
    "name", "collaborative", "pid", "modified_at", "num_tracks", "num_albums", "num_followers",
    "tracks", "num_edits", "duration_ms", "num_artists",
]
TRACK_KEYS = ["pos", "artist_name", "track_uri", "artist_uri", "track_name", "album_uri", "duration_ms", "album_name"]


@pytest.fixture(scope="module")
def catalogue():
    return make_catalogue(SMALL)


@pytest.fixture(scope="module")
def slices(catalogue):
    return [json.loads(make_slice(catalogue, SMALL, a, b)[0]) for a, b in slice_bounds(SMALL)]


def test_slices_follow_the_mpd_schema_field_by_field(slices):
    assert [s["info"]["slice"] for s in slices] == ["0-999", "1000-1499"]
    pids = []
    for document in slices:
        assert list(document) == ["info", "playlists"]
        assert set(document["info"]) == {"generated_on", "slice", "version"} and document["info"]["version"] == "v1"
        for p in document["playlists"]:
            keys = [k for k in p if k != "description"]
            assert keys == PLAYLIST_KEYS
            assert isinstance(p["name"], str) and p["name"]
            assert p["collaborative"] in ("true", "false")
            assert isinstance(p.get("description", ""), str)
            assert isinstance(p["modified_at"], int) and p["modified_at"] % 86400 == 0
            assert 1262304000 <= p["modified_at"] <= 1509494400
            assert p["num_followers"] >= 1 and p["num_edits"] >= 1
            tracks = p["tracks"]
            assert 5 <= p["num_tracks"] == len(tracks) <= 250
            assert [t["pos"] for t in tracks] == list(range(len(tracks)))
            for t in tracks:
                assert list(t) == TRACK_KEYS
                for kind in ("track", "artist", "album"):
                    assert URI[kind].match(t[f"{kind}_uri"]), t
                assert isinstance(t["duration_ms"], int) and t["duration_ms"] > 0
                assert t["track_name"] and t["artist_name"] and t["album_name"]
            assert p["num_albums"] == len({t["album_uri"] for t in tracks})
            assert p["num_artists"] == len({t["artist_uri"] for t in tracks})
            assert p["duration_ms"] == sum(t["duration_ms"] for t in tracks)
            pids.append(p["pid"])
    assert pids == list(range(SMALL.playlists))


def test_playlist_lengths_and_flags_look_like_the_mpd(slices):
    playlists = [p for s in slices for p in s["playlists"]]
    lengths = np.array([p["num_tracks"] for p in playlists])
    assert 42 <= np.median(lengths) <= 58
    assert lengths.mean() > np.median(lengths)  # right-skewed, as in the MPD (mean about 66)
    collaborative = np.mean([p["collaborative"] == "true" for p in playlists])
    assert 0.01 < collaborative < 0.06
    assert 0 < sum("description" in p for p in playlists) < 0.06 * len(playlists)
    # a few in-playlist repeats, as in the real data
    repeats = sum(len(p["tracks"]) - len({t["track_uri"] for t in p["tracks"]}) for p in playlists)
    assert 0 < repeats < 0.02 * lengths.sum()


def test_generation_is_deterministic_and_slices_are_independent(catalogue):
    a, _ = make_slice(catalogue, SMALL, 1000, 1499)
    b, _ = make_slice(make_catalogue(SMALL), SMALL, 1000, 1499)  # fresh catalogue, slice made alone
    assert a == b
    c, _ = make_slice(make_catalogue(SMALL.model_copy(update={"seed": 8})), SMALL, 1000, 1499)
    assert a != c


def test_popularity_has_the_mpd_long_tail():
    cfg = DemoDataConfig(playlists=3000, seed=1)  # the default catalogue
    cat = make_catalogue(cfg)
    rng = np.random.default_rng(0)
    counts = np.zeros(cat.num_songs, dtype=int)
    for _ in range(cfg.playlists):
        np.add.at(counts, playlist_tracks(cat, cfg, rng)[0], 1)
    counts = counts[counts > 0]
    histogram = np.bincount(counts)
    assert histogram[1] == histogram[1:].max()  # appearing once is the most common count
    assert (counts == 1).mean() > 0.35
    top = np.sort(counts)[::-1]
    assert top[: len(top) // 100].sum() / counts.sum() > 0.15  # a head of very frequent songs
    assert top[0] < 0.3 * cfg.playlists  # but no song is in most playlists


# --- the hidden structure must be learnable, noisily ----------------------------------------------------


def next_song_recall(scores: np.ndarray, histories: list[np.ndarray], targets: np.ndarray, k: int = 20) -> float:
    scores = scores.astype(float).copy()
    for row, history in enumerate(histories):
        scores[row, history] = -np.inf
    top = np.argpartition(-scores, k, axis=1)[:, :k]
    return float(np.mean([t in row for t, row in zip(targets, top)]))


@pytest.fixture(scope="module")
def held_out():
    """2,000 training playlists and 400 held-out ones split into history and last song, over the songs they use."""
    cfg = DemoDataConfig(playlists=2400, songs=20000, seed=3)
    cat = make_catalogue(cfg)
    rng = np.random.default_rng(0)
    playlists = [playlist_tracks(cat, cfg, rng)[0] for _ in range(cfg.playlists)]
    train, test = playlists[:2000], playlists[2000:]
    rows = np.repeat(np.arange(len(train)), [len(p) for p in train])
    x = sp.csr_matrix((np.ones(len(rows)), (rows, np.concatenate(train))), shape=(len(train), cat.num_songs))
    x.data[:] = 1
    histories = [p[:-1] for p in test]
    targets = np.array([p[-1] for p in test])
    return cat, cfg, x, histories, targets


def cooccurrence_scores(x, histories, n_songs, window=None):
    rows = [h if window is None else h[window] for h in histories]
    h = sp.csr_matrix(
        (np.ones(sum(map(len, rows))), (np.repeat(np.arange(len(rows)), [len(r) for r in rows]), np.concatenate(rows))),
        shape=(len(rows), n_songs),
    )
    return ((h @ x.T) @ x).toarray()


def test_popularity_cooccurrence_and_content_each_beat_random_but_are_far_from_perfect(held_out):
    cat, cfg, x, histories, targets = held_out
    n_candidates = int((np.asarray(x.sum(axis=0)).ravel() > 0).sum())
    random_recall = 20 / n_candidates

    popularity = np.tile(np.asarray(x.sum(axis=0)).ravel(), (len(histories), 1))
    pop = next_song_recall(popularity, histories, targets)
    cooc = next_song_recall(cooccurrence_scores(x, histories, cat.num_songs), histories, targets)

    # content: songs whose standardised audio features are near the history's mean, among songs seen in training
    features = audio_features(cat, genre_content(cfg), np.arange(cat.num_songs), cfg)
    z = np.column_stack([features[name] for name in (*UNIT_FEATURES, "loudness", "tempo")]).astype(float)
    z = (z - z.mean(0)) / z.std(0)
    seen = np.asarray(x.sum(axis=0)).ravel() > 0
    centre = np.stack([z[h].mean(0) for h in histories])
    content = -((centre[:, None, :] - z[None, seen, :]) ** 2).sum(-1)
    scores = np.full((len(histories), cat.num_songs), -np.inf)
    scores[:, seen] = content
    audio = next_song_recall(scores, histories, targets)

    for name, recall in {"popularity": pop, "co-occurrence": cooc, "audio content": audio}.items():
        assert 3 * random_recall < recall < 0.6, (name, recall, random_recall)
    assert cooc > pop  # co-occurrence knows the scene; popularity does not


def oracle_scores(label: np.ndarray, x, histories) -> np.ndarray:
    """Share of the history in each song's group x the song's share of its group's training plays."""
    plays = np.asarray(x.sum(axis=0)).ravel() + 1
    groups = int(label.max()) + 1
    share = np.stack([np.bincount(label[h], minlength=groups) / len(h) for h in histories])
    return share[:, label] * (plays / np.bincount(label, weights=plays, minlength=groups)[label])


def test_playlists_follow_scenes_that_content_and_genres_only_partly_reveal(held_out):
    """Co-occurrence learns scenes: it beats a scorer that knows every song's hidden genre, and a scorer that
    knows the content's genre does worse still; knowing the scenes themselves would be far better again."""
    cat, _, x, histories, targets = held_out
    cooc = next_song_recall(cooccurrence_scores(x, histories, cat.num_songs), histories, targets)
    recall = {name: next_song_recall(oracle_scores(label, x, histories), histories, targets)
              for name, label in (("genre", cat.track_genre), ("content genre", cat.track_content_genre),
                                  ("scene", cat.track_scene))}
    assert cooc > 1.15 * recall["genre"], (cooc, recall)
    assert recall["genre"] > recall["content genre"], recall
    assert recall["scene"] > 1.3 * cooc, (cooc, recall)


def test_order_carries_signal(held_out):
    """The last song is predicted better from the most recent songs than from the first ones."""
    cat, _, x, histories, targets = held_out
    recent = next_song_recall(cooccurrence_scores(x, histories, cat.num_songs, slice(-3, None)), histories, targets)
    early = next_song_recall(cooccurrence_scores(x, histories, cat.num_songs, slice(0, 3)), histories, targets)
    assert recent > 1.2 * early, (recent, early)
