"""Modality sources carry the artist's content genre (partly, noisily) and look like the real sources."""

import io
import random

import numpy as np
from PIL import Image

from mmrec.demo.config import DemoDataConfig
from mmrec.demo.corpus import make_catalogue
from mmrec.demo.modalities import (
    AUDIO_FEATURES,
    UNIT_FEATURES,
    CoverPlan,
    album_cover,
    audio_features,
    bio_records,
    cover_plans,
    encode_cover,
    genre_content,
    lyrics_records,
    song_lyrics,
)

CFG = DemoDataConfig(songs=5000, seed=11)
CAT = make_catalogue(CFG)
SONGS = np.arange(CAT.num_songs)


def test_audio_features_are_in_spotify_ranges():
    f = audio_features(CAT, genre_content(CFG), SONGS, CFG)
    assert list(f)[:13] == ["id", "uri", *AUDIO_FEATURES]
    for name in UNIT_FEATURES:
        assert 0 <= f[name].min() and f[name].max() <= 1, name
    assert set(np.unique(f["key"])) <= set(range(-1, 12)) and set(np.unique(f["mode"])) <= {0, 1}
    assert -60 <= f["loudness"].min() and f["loudness"].max() <= 0
    assert 40 <= f["tempo"].min() and f["tempo"].max() <= 230
    assert all(u == f"spotify:track:{i}" for u, i in zip(f["uri"], f["id"]))


def test_audio_features_separate_genres_but_not_perfectly():
    f = audio_features(CAT, genre_content(CFG), SONGS, CFG)
    z = np.column_stack([f[name] for name in UNIT_FEATURES])
    genre = CAT.track_content_genre
    centroids = np.stack([z[genre == g].mean(0) for g in range(CFG.genres)])
    nearest = np.argmin(((z[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    accuracy = (nearest == genre).mean()
    assert 3 / CFG.genres < accuracy < 0.98, accuracy


def test_lyrics_have_genius_artefacts_and_genre_words():
    text = song_lyrics("Midnight Drive", ("neon", "highway", "chrome"), random.Random(1), noise=1.0)
    first_line = text.splitlines()[0]
    assert first_line.endswith("Midnight Drive Lyrics")
    assert "[Chorus]" in text and "[Verse 1]" in text and text.endswith("Embed")
    assert "in'" in text  # dropped g's such as "singin'"
    assert any(w in text.lower() for w in ("neon", "highway", "chrome"))
    records = lyrics_records(CAT, SONGS, CFG)
    assert abs(len(records) / len(SONGS) - CFG.lyrics_coverage) < 0.03


def test_lyrics_of_a_genre_share_its_theme():
    records = {r["track_uri"]: r["lyrics"].lower() for r in lyrics_records(CAT, SONGS[:800], CFG)}
    on, off = [], []
    for i in SONGS[:800]:
        text = records.get(CAT.track_uri(i))
        if text is None:
            continue
        genre = CAT.track_content_genre[i]
        on.append(sum(text.count(w) for w in CAT.genres[genre].theme))
        off.append(sum(text.count(w) for w in CAT.genres[(genre + 1) % CFG.genres].theme))
    assert np.mean(on) > 3 * np.mean(off)


def test_bios_name_the_style_of_half_the_artists_and_cover_most():
    artists = np.arange(len(CAT.artist_id))
    bios = bio_records(CAT, artists, CFG)
    assert abs(len(bios) / len(artists) - CFG.bio_coverage) < 0.04
    by_uri = {CAT.artist_uri(a): a for a in artists}
    opening = [b["bio"].split(".")[0] for b in bios]  # "<name> is a <adjective> [<style>] <act> from <city>"
    names_own = np.mean([CAT.genres[CAT.artist_content_genre[by_uri[b["artist_uri"]]]].name in first
                         for b, first in zip(bios, opening)])
    assert 0.4 < names_own < 0.6, names_own
    assert all(b["bio"].startswith(b["artist_name"]) for b in bios)


def test_content_genre_is_the_artists_genre_except_for_a_misleading_few():
    differs = (CAT.artist_content_genre != CAT.artist_genre).mean()
    expected = CFG.misleading_content * (1 - 1 / CFG.genres)  # a random genre can be the artist's own
    assert abs(differs - expected) < 0.03, differs


def test_covers_decode_at_their_size_except_the_corrupt_ones():
    plans = cover_plans(CAT, np.arange(len(CAT.album_id)), CFG)
    states = [p.state for p in plans]
    assert abs(states.count("missing") / len(plans) - (1 - CFG.art_coverage)) < 0.03
    assert states.count("empty") > 0 and states.count("truncated") > 0
    content = genre_content(CFG)
    for plan in [p for p in plans if p.state != "missing"][:60]:
        genre = int(CAT.artist_content_genre[CAT.album_artist[plan.album]])
        data = encode_cover(album_cover(content, genre, plan, CFG), plan)
        if plan.state == "empty":
            assert data == b""
            continue
        try:
            image = Image.open(io.BytesIO(data))
            image.load()
            assert plan.state == "ok" and image.size == plan.size and image.mode == "RGB"
        except OSError:
            assert plan.state == "truncated"


def test_half_the_covers_of_a_genre_wear_its_hue():
    import colorsys

    content = genre_content(CFG)
    for genre in (0, 1):
        hues = []
        for album in range(genre * 100, genre * 100 + 60):
            red, green, blue = album_cover(content, genre, CoverPlan(album, "ok", (64, 64), "png"), CFG).reshape(-1, 3).mean(0)
            hues.append(colorsys.rgb_to_hls(red / 255, green / 255, blue / 255)[0])
        distance = np.abs((np.array(hues) - content.hue[genre] + 0.5) % 1.0 - 0.5)
        near = (distance < 0.06).mean()
        assert 0.35 < near < 0.8, (genre, near)  # the genre's hue for about half, any hue for the rest
