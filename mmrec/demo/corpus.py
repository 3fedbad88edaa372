"""The demo corpus's hidden model: genres, scenes, artists, albums, songs and playlists in the exact MPD format.

Everything is a pure function of the config and its seed (no Ray, no I/O). The generative story, written out in
docs/demo-corpus.md:

1. Genres get a share of the catalogue and split into scenes (latent tastes: a city's trap, bedroom emo...).
   Artists belong to one scene and have a lognormal popularity (the long tail); each artist releases a few
   albums of a few songs. A song's popularity is its artist's times its own.
2. A playlist picks a first scene by popularity and, for some playlists, a second scene it drifts towards: the
   chance of the second grows along the playlist, so the order of songs carries signal.
3. Each position draws a song from its scene by popularity; sometimes from another scene of the same genre
   (leak), now and then from any genre (noise); often from the same artist as the previous song (artist runs).
4. Repeats within a playlist are mostly redrawn; a few stay, as in the real MPD.

Content (modalities.py) follows an artist's *content genre*: its genre for most artists, another genre for a
few. It knows nothing of scenes, so co-occurrence carries structure that content cannot, as on real data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from mmrec.demo.config import DemoDataConfig
from mmrec.demo.vocab import GENERIC_PLAYLIST_NAMES, SYLLABLES, GenreSpec, genre_specs

BASE62 = np.frombuffer(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", dtype="S1")
GENERATED_ON = "2017-12-03 08:41:42.057563"  # the real MPD's stamp: the corpus is byte-for-byte reproducible
FIRST_DAY, LAST_DAY = 14610, 17471  # modified_at between 2010-01-01 and 2017-11-01, whole days as in the MPD
MEAN_SONGS_PER_ARTIST = 8
MEAN_SONGS_PER_ALBUM = 6
SONG_SIGMA = 1.3  # lognormal spread of a song around its artist's popularity
THEMED_TITLES = 0.3  # share of song titles made of their content genre's theme words
REPEAT_KEPT = 0.012  # share of in-playlist repeats that are kept rather than redrawn


def spotify_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """n random 22-character base62 ids, the shape of Spotify's."""
    chars = BASE62[rng.integers(0, len(BASE62), size=(n, 22))]
    return np.char.decode(chars.view("S22").ravel(), "ascii")


def pseudo_words(rng: np.random.Generator, n: int, syllables: tuple[int, int] = (2, 3)) -> list[str]:
    counts = rng.integers(syllables[0], syllables[1] + 1, size=n)
    picks = rng.integers(0, len(SYLLABLES), size=int(counts.sum()))
    words, start = [], 0
    for c in counts:
        words.append("".join(SYLLABLES[j] for j in picks[start : start + c]).capitalize())
        start += c
    return words


@dataclass(frozen=True)
class Catalogue:
    """Every song that playlists can draw from, with its artist, album and hidden genre."""

    genres: tuple[GenreSpec, ...]
    scene_genre: np.ndarray  # (C,) genre of each scene
    scene_weight: np.ndarray  # (C,) share of all plays
    track_id: np.ndarray  # (S,) 22-char ids; track_uri = spotify:track:<id>
    track_name: list[str]
    track_artist: np.ndarray  # (S,) int, songs of one artist are contiguous
    track_album: np.ndarray  # (S,) int
    track_weight: np.ndarray  # (S,) popularity
    track_duration_ms: np.ndarray  # (S,) int
    artist_id: np.ndarray  # (A,)
    artist_name: list[str]
    artist_scene: np.ndarray  # (A,) int
    artist_content_genre: np.ndarray  # (A,) the genre the artist's audio, lyrics, art and bio read as
    album_id: np.ndarray  # (B,)
    album_name: list[str]
    album_artist: np.ndarray  # (B,)
    _sampling: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def num_songs(self) -> int:
        return len(self.track_id)

    @property
    def artist_genre(self) -> np.ndarray:
        return self.scene_genre[self.artist_scene]

    @property
    def track_genre(self) -> np.ndarray:
        return self.artist_genre[self.track_artist]

    @property
    def track_scene(self) -> np.ndarray:
        return self.artist_scene[self.track_artist]

    @property
    def track_content_genre(self) -> np.ndarray:
        return self.artist_content_genre[self.track_artist]

    def scenes_of_genre(self, genre: int) -> np.ndarray:
        return np.flatnonzero(self.scene_genre == genre)

    def track_uri(self, i: int) -> str:
        return f"spotify:track:{self.track_id[i]}"

    def artist_uri(self, a: int) -> str:
        return f"spotify:artist:{self.artist_id[a]}"

    def album_uri(self, b: int) -> str:
        return f"spotify:album:{self.album_id[b]}"

    # Sampling by popularity within a scene or an artist, vectorised with one searchsorted over cumulative
    # weights of the songs ordered by scene (artists are contiguous already).
    def sample_from_scenes(self, scenes: np.ndarray, u: np.ndarray) -> np.ndarray:
        order, cum, start, total = self._scene_index()
        target = start[scenes] + u * total[scenes]
        pos = np.minimum(np.searchsorted(cum, target, side="right"), len(order) - 1)
        return order[pos]

    def sample_from_artists(self, artists: np.ndarray, u: np.ndarray) -> np.ndarray:
        cum, start, total = self._artist_index()
        target = start[artists] + u * total[artists]
        return np.minimum(np.searchsorted(cum, target, side="right"), self.num_songs - 1)

    def _scene_index(self):
        if "scene" not in self._sampling:
            order = np.argsort(self.track_scene, kind="stable")
            cum = np.cumsum(self.track_weight[order])
            total = np.bincount(self.track_scene, weights=self.track_weight, minlength=len(self.scene_genre))
            start = np.concatenate([[0.0], np.cumsum(total)[:-1]])
            self._sampling["scene"] = (order, cum, start, total)
        return self._sampling["scene"]

    def _artist_index(self):
        if "artist" not in self._sampling:
            cum = np.cumsum(self.track_weight)
            total = np.bincount(self.track_artist, weights=self.track_weight, minlength=len(self.artist_id))
            start = np.concatenate([[0.0], np.cumsum(total)[:-1]])
            self._sampling["artist"] = (cum, start, total)
        return self._sampling["artist"]


def make_catalogue(cfg: DemoDataConfig) -> Catalogue:
    rng = np.random.default_rng([cfg.seed, 0])
    genres = genre_specs(cfg.genres)
    genre_share = rng.dirichlet(np.full(len(genres), 3.0))

    # Artists with 1 + geometric songs each until the catalogue is full.
    n_artists = int(cfg.songs / MEAN_SONGS_PER_ARTIST * 1.5) + 10
    songs_per_artist = np.minimum(rng.geometric(1 / MEAN_SONGS_PER_ARTIST, size=n_artists), 80)
    ends = np.cumsum(songs_per_artist)
    n_artists = int(np.searchsorted(ends, cfg.songs) + 1)
    songs_per_artist = songs_per_artist[:n_artists]
    songs_per_artist[-1] -= ends[n_artists - 1] - cfg.songs
    n_scenes = len(genres) * cfg.scenes_per_genre
    scene_genre = np.repeat(np.arange(len(genres)), cfg.scenes_per_genre)
    scene_share = genre_share[scene_genre] * rng.dirichlet(np.full(cfg.scenes_per_genre, 3.0), size=len(genres)).ravel()
    artist_scene = rng.choice(n_scenes, size=n_artists, p=scene_share / scene_share.sum())
    artist_genre = scene_genre[artist_scene]
    misleading = rng.random(n_artists) < cfg.misleading_content
    artist_content_genre = np.where(misleading, rng.integers(0, len(genres), size=n_artists), artist_genre)
    artist_weight = rng.lognormal(0.0, cfg.popularity_skew, size=n_artists)
    track_artist = np.repeat(np.arange(n_artists), songs_per_artist)

    # Albums: a new album starts at an artist's first song and then with chance 1/MEAN_SONGS_PER_ALBUM.
    first_of_artist = np.r_[True, track_artist[1:] != track_artist[:-1]]
    new_album = first_of_artist | (rng.random(cfg.songs) < 1 / MEAN_SONGS_PER_ALBUM)
    track_album = np.cumsum(new_album) - 1
    album_artist = track_artist[new_album]

    track_weight = artist_weight[track_artist] * rng.lognormal(0.0, SONG_SIGMA, size=cfg.songs)
    scene_weight = np.bincount(artist_scene[track_artist], weights=track_weight, minlength=n_scenes)
    genre_length_mean = rng.uniform(170_000, 280_000, size=len(genres))
    duration = rng.normal(genre_length_mean[artist_content_genre[track_artist]], 45_000)

    return Catalogue(
        genres=genres,
        scene_genre=scene_genre,
        scene_weight=scene_weight / scene_weight.sum(),
        track_id=spotify_ids(rng, cfg.songs),
        track_name=_song_titles(rng, genres, artist_content_genre[track_artist]),
        track_artist=track_artist,
        track_album=track_album,
        track_weight=track_weight,
        track_duration_ms=np.clip(duration, 30_000, 900_000).astype(np.int64),
        artist_id=spotify_ids(rng, n_artists),
        artist_name=_artist_names(rng, n_artists),
        artist_scene=artist_scene,
        artist_content_genre=artist_content_genre,
        album_id=spotify_ids(rng, len(album_artist)),
        album_name=pseudo_words(rng, len(album_artist), (2, 4)),
        album_artist=album_artist,
    )


def _song_titles(rng: np.random.Generator, genres: tuple[GenreSpec, ...], song_genre: np.ndarray) -> list[str]:
    """A third of the titles use their genre's words (titles say a little about a song), the rest are made up."""
    made_up = pseudo_words(rng, len(song_genre))
    themed = rng.random(len(song_genre)) < THEMED_TITLES
    n_words = rng.integers(1, 4, size=len(song_genre))
    titles = []
    for i, g in enumerate(song_genre):
        if themed[i]:
            words = rng.choice(genres[g].theme, size=n_words[i], replace=False)
            titles.append(" ".join(w.capitalize() for w in words))
        else:
            titles.append(made_up[i])
    return titles


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    first, second = pseudo_words(rng, n), pseudo_words(rng, n)
    style = rng.random(n)
    return [
        f"The {a}s" if s < 0.2 else (a if s < 0.5 else f"{a} {b}") for a, b, s in zip(first, second, style)
    ]


# --- playlists ---------------------------------------------------------------------------------------------


def playlist_tracks(cat: Catalogue, cfg: DemoDataConfig, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Song indices of one playlist in order, and its first (dominant) genre."""
    n = int(np.clip(round(rng.lognormal(np.log(cfg.median_tracks), 0.75)), 5, 250))
    n_scenes = len(cat.scene_genre)
    first = rng.choice(n_scenes, p=cat.scene_weight)
    second = first
    if rng.random() < cfg.second_scene_share:
        if rng.random() < 0.5:  # a sister scene of the same genre: tastes near each other mix more often
            second = rng.choice(cat.scenes_of_genre(cat.scene_genre[first]))
        else:
            second = rng.choice(n_scenes, p=cat.scene_weight)

    draws = 2 * n + 10  # spare draws to replace redrawn repeats (scenes are small: popular songs come back)
    progress = np.minimum(np.arange(draws) / max(n - 1, 1), 1.0)
    scene = np.where(rng.random(draws) < progress, second, first)
    # Leaks stay within the genre (what content can know); noise goes anywhere.
    leak = rng.random(draws) < cfg.scene_leak
    per_genre = cfg.scenes_per_genre  # scenes of genre g are g * per_genre ... g * per_genre + per_genre - 1
    scene[leak] = cat.scene_genre[scene[leak]] * per_genre + rng.integers(0, per_genre, size=int(leak.sum()))
    noisy = rng.random(draws) < cfg.genre_noise
    scene[noisy] = rng.choice(n_scenes, size=int(noisy.sum()), p=cat.scene_weight)
    songs = cat.sample_from_scenes(scene, rng.random(draws))

    # Artist runs: a flagged position takes a song of the artist of the last unflagged position before it.
    same = rng.random(draws) < cfg.same_artist
    same[0] = False
    anchor = np.maximum.accumulate(np.where(same, 0, np.arange(draws)))
    run_artist = cat.track_artist[songs[anchor]]
    songs = np.where(same, cat.sample_from_artists(run_artist, rng.random(draws)), songs)

    _, first_seen = np.unique(songs, return_index=True)
    keep = np.zeros(draws, dtype=bool)
    keep[first_seen] = True
    keep |= rng.random(draws) < REPEAT_KEPT
    return songs[keep][:n], int(cat.scene_genre[first])


def make_playlist(cat: Catalogue, cfg: DemoDataConfig, pid: int, rng: np.random.Generator) -> tuple[dict, np.ndarray]:
    """One playlist as the MPD writes it (fields in the MPD's order, counts consistent) and its song indices."""
    songs, genre = playlist_tracks(cat, cfg, rng)
    tracks = [
        {
            "pos": pos,
            "artist_name": cat.artist_name[cat.track_artist[s]],
            "track_uri": cat.track_uri(s),
            "artist_uri": cat.artist_uri(cat.track_artist[s]),
            "track_name": cat.track_name[s],
            "album_uri": cat.album_uri(cat.track_album[s]),
            "duration_ms": int(cat.track_duration_ms[s]),
            "album_name": cat.album_name[cat.track_album[s]],
        }
        for pos, s in enumerate(songs)
    ]
    playlist = {
        "name": _playlist_name(cat.genres[genre], rng),
        "collaborative": "true" if rng.random() < 0.03 else "false",
        "pid": pid,
        "modified_at": int(rng.integers(FIRST_DAY, LAST_DAY)) * 86400,
        "num_tracks": len(tracks),
        "num_albums": len(np.unique(cat.track_album[songs])),
        "num_followers": int(min(rng.zipf(2.2), 100_000)),
    }
    if rng.random() < 0.02:
        playlist["description"] = f"songs for {rng.choice(cat.genres[genre].playlist_words)} days"
    playlist["tracks"] = tracks
    playlist["num_edits"] = int(1 + rng.poisson(2 + len(tracks) / 10))
    playlist["duration_ms"] = int(cat.track_duration_ms[songs].sum())
    playlist["num_artists"] = len(np.unique(cat.track_artist[songs]))
    return playlist, songs


def _playlist_name(genre: GenreSpec, rng: np.random.Generator) -> str:
    name = str(rng.choice(genre.playlist_words if rng.random() < 0.6 else GENERIC_PLAYLIST_NAMES))
    style = rng.random()
    return name.title() if style < 0.3 else (name.upper() if style < 0.4 else name)


def slice_bounds(cfg: DemoDataConfig) -> list[tuple[int, int]]:
    """(first pid, last pid) of each slice file; the last slice may be short."""
    return [
        (start, min(start + cfg.slice_size, cfg.playlists) - 1) for start in range(0, cfg.playlists, cfg.slice_size)
    ]


def slice_file_name(first: int, last: int) -> str:
    return f"mpd.slice.{first}-{last}.json"


def make_slice(cat: Catalogue, cfg: DemoDataConfig, first: int, last: int) -> tuple[bytes, np.ndarray]:
    """One slice file's bytes (indented JSON like the MPD's) and its song indices, one per entry.

    Each slice has its own random stream, so slices can be made in any order, in parallel, and still match.
    """
    rng = np.random.default_rng([cfg.seed, 1, first])
    made = [make_playlist(cat, cfg, pid, rng) for pid in range(first, last + 1)]
    document = {
        "info": {"generated_on": GENERATED_ON, "slice": f"{first}-{last}", "version": "v1"},
        "playlists": [playlist for playlist, _ in made],
    }
    entries = np.concatenate([songs for _, songs in made])
    return json.dumps(document, indent=4).encode("utf-8"), entries


# --- the challenge set -------------------------------------------------------------------------------------

CHALLENGE_DATE = "2018-01-16 08:47:28.198015"
# The RecSys Challenge 2018's ten categories: (songs given, title shown, given songs are the first or random)
CHALLENGE_CATEGORIES = (
    (0, True, "first"), (1, True, "first"), (5, True, "first"), (5, False, "first"), (10, True, "first"),
    (10, False, "first"), (25, True, "first"), (25, True, "random"), (100, True, "first"), (100, True, "random"),
)


def make_challenge_set(cat: Catalogue, cfg: DemoDataConfig) -> tuple[bytes, list[dict], np.ndarray]:
    """challenge_set.json in the MPD challenge's format, the held-out songs of each playlist (the hidden
    answers), and the song indices it uses. Pids continue after the corpus's."""
    rng = np.random.default_rng([cfg.seed, 7])
    playlists, holdouts, used = [], [], []
    for i in range(cfg.challenge_playlists):
        samples, titled, where = CHALLENGE_CATEGORIES[i * len(CHALLENGE_CATEGORIES) // max(cfg.challenge_playlists, 1)]
        pid = cfg.playlists + i
        while True:  # the challenge only uses playlists with songs left to predict
            full, _ = make_playlist(cat, cfg, pid, rng)
            if full["num_tracks"] > samples:
                break
        tracks = full["tracks"]
        if where == "random":
            given_at = set(rng.choice(len(tracks), size=samples, replace=False).tolist())
        else:
            given_at = set(range(samples))
        entry = {"name": full["name"]} if titled else {}
        entry.update(
            num_holdouts=len(tracks) - samples,
            pid=pid,
            num_tracks=len(tracks),
            tracks=[t for t in tracks if t["pos"] in given_at],
            num_samples=samples,
        )
        playlists.append(entry)
        holdouts.append({"pid": pid, "track_uris": [t["track_uri"] for t in tracks if t["pos"] not in given_at]})
        used.extend(t["track_uri"] for t in tracks)
    document = {"date": CHALLENGE_DATE, "version": "v1", "playlists": playlists}
    index = {cat.track_uri(i): i for i in range(cat.num_songs)} if used else {}
    return json.dumps(document, indent=4).encode("utf-8"), holdouts, np.array([index[u] for u in used], dtype=np.int64)
