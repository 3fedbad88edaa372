"""The four modality sources of the demo corpus, each tied to the artist's content genre, partly and noisily.

Content knows genres, not the scenes playlists are made of, and for a few artists it reads as another genre
(corpus.py): a content-only model ranks the long tail and cold songs well but cannot beat co-occurrence on
popular songs.

Shapes follow the real sources: Spotify's audio-features objects, Genius-style lyrics (title line, section
tags, "...Embed" tails, dropped g's), album cover images of many sizes (some corrupt), and artist biographies.
Pure functions of the catalogue, the config and the seed.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image

from mmrec.demo.config import DemoDataConfig
from mmrec.demo.corpus import Catalogue
from mmrec.demo.vocab import (
    BIO_ACTS,
    BIO_ADJECTIVES,
    CITIES,
    COMMON_WORDS,
    DROPPED_G_WORDS,
    STOP_LINE_TEMPLATES,
)

AUDIO_FEATURES = (
    "danceability", "energy", "key", "loudness", "mode", "speechiness",
    "acousticness", "instrumentalness", "liveness", "valence", "tempo",
)
UNIT_FEATURES = ("danceability", "energy", "speechiness", "acousticness", "instrumentalness", "liveness", "valence")
COVER_SIZES = ((640, 640), (300, 300), (200, 200), (128, 128), (64, 64), (500, 400))
COVER_SIZE_SHARE = (0.05, 0.2, 0.15, 0.3, 0.25, 0.05)  # mostly small: the embed stage works at 128x128 anyway
COVER_DRAW_SIZE = 160
LYRICS_OFF_THEME = 0.65  # share of lyric content words that are common words rather than the genre's theme
BIO_NAMES_STYLE = 0.5  # share of biographies that name the artist's style
COVER_GENRE_HUE = 0.5  # share of covers in their genre's hue (the rest pick any hue)
COVER_GENRE_PATTERN = 0.6  # share of covers in their genre's pattern
PATTERNS = ("stripes", "rings", "gradient", "checker", "diagonal", "dots")


@dataclass(frozen=True)
class GenreContent:
    """Hidden per-genre centres of every modality."""

    unit_mean: np.ndarray  # (G, 7) in [0, 1]
    loudness_mean: np.ndarray  # (G,) dB
    tempo_mean: np.ndarray  # (G,) BPM
    key_p: np.ndarray  # (G, 12)
    major_p: np.ndarray  # (G,)
    hue: np.ndarray  # (G,) in [0, 1)
    pattern: np.ndarray  # (G,) index into PATTERNS
    frequency: np.ndarray  # (G,) pattern repeats across a cover


def genre_content(cfg: DemoDataConfig) -> GenreContent:
    rng = np.random.default_rng([cfg.seed, 2])
    g = cfg.genres
    return GenreContent(
        unit_mean=rng.uniform(0.05, 0.95, size=(g, len(UNIT_FEATURES))),
        loudness_mean=rng.uniform(-14.0, -4.0, size=g),
        tempo_mean=rng.uniform(70.0, 170.0, size=g),
        key_p=rng.dirichlet(np.full(12, 0.7), size=g),
        major_p=rng.uniform(0.2, 0.9, size=g),
        hue=(np.arange(g) / g + rng.uniform(0, 0.5 / g, size=g)) % 1.0,
        pattern=rng.integers(0, len(PATTERNS), size=g),
        frequency=rng.uniform(2.0, 9.0, size=g),
    )


# --- audio features ----------------------------------------------------------------------------------------


def audio_features(cat: Catalogue, content: GenreContent, songs: np.ndarray, cfg: DemoDataConfig) -> dict:
    """Spotify audio-features objects for `songs` as columns (id, uri, the 11 features, and the API's extras)."""
    rng = np.random.default_rng([cfg.seed, 3])
    noise = cfg.content_noise
    n_all = cat.num_songs
    genre = cat.track_content_genre  # draw for the whole catalogue so a song's features do not depend on the corpus
    unit = np.clip(content.unit_mean[genre] + rng.normal(0, 0.15 * noise, size=(n_all, len(UNIT_FEATURES))), 0, 1)
    loudness = np.clip(rng.normal(content.loudness_mean[genre], 2.5 * noise + 1e-9), -60.0, 0.0)
    tempo = np.clip(rng.normal(content.tempo_mean[genre], 12.0 * noise + 1e-9), 40.0, 230.0)
    cum_key = np.cumsum(content.key_p[genre], axis=1)
    key = np.minimum((rng.random((n_all, 1)) > cum_key).sum(axis=1), 11)
    key[rng.random(n_all) < 0.01] = -1  # Spotify's "no key detected"
    mode = (rng.random(n_all) < content.major_p[genre]).astype(np.int64)
    time_signature = rng.choice([3, 4, 4, 4, 4, 5], size=n_all)

    columns: dict = {"id": cat.track_id[songs].tolist(), "uri": [cat.track_uri(i) for i in songs]}
    for j, name in enumerate(UNIT_FEATURES):
        columns[name] = np.round(unit[songs, j], 4)
    columns["key"] = key[songs]
    columns["loudness"] = np.round(loudness[songs], 3)
    columns["mode"] = mode[songs]
    columns["tempo"] = np.round(tempo[songs], 3)
    columns["type"] = ["audio_features"] * len(songs)
    columns["duration_ms"] = cat.track_duration_ms[songs]
    columns["time_signature"] = time_signature[songs]
    return {name: columns[name] for name in ("id", "uri", *AUDIO_FEATURES, "type", "duration_ms", "time_signature")}


# --- lyrics ------------------------------------------------------------------------------------------------


def lyrics_records(cat: Catalogue, songs: np.ndarray, cfg: DemoDataConfig) -> list[dict]:
    """Genius-style lyrics for the covered share of `songs`: {track_uri, lyrics}."""
    rng = np.random.default_rng([cfg.seed, 4])
    covered = rng.random(cat.num_songs) < cfg.lyrics_coverage
    genre = cat.track_content_genre
    records = []
    for i in songs:
        if covered[i]:
            song_rng = random.Random(cfg.seed * 1_000_003 + int(i))
            text = song_lyrics(cat.track_name[i], cat.genres[genre[i]].theme, song_rng, cfg.content_noise)
            records.append({"track_uri": cat.track_uri(i), "lyrics": text})
    return records


def song_lyrics(title: str, theme: tuple[str, ...], rng: random.Random, noise: float) -> str:
    """Lines from templates whose content words come partly from the genre's theme, with Genius's artefacts."""
    off_theme = min(0.95, LYRICS_OFF_THEME * noise)

    def word() -> str:
        return rng.choice(COMMON_WORDS) if rng.random() < off_theme else rng.choice(theme)

    def line() -> str:
        template = rng.choice(STOP_LINE_TEMPLATES)
        return template.format(a=word(), b=word(), c=word(), g=rng.choice(DROPPED_G_WORDS)).capitalize()

    chorus = [line() for _ in range(rng.randint(2, 4))]
    parts = []
    for section in ("[Verse 1]", "[Chorus]", "[Verse 2]", "[Chorus]"):
        body = chorus if section == "[Chorus]" else [line() for _ in range(rng.randint(3, 6))]
        parts.append("\n".join([section, *body]))
    header = f"{title} Lyrics"
    if rng.random() < 0.4:
        header = f"{rng.randint(1, 39)} Contributors{header}"
    text = header + "\n" + "\n\n".join(parts)
    if rng.random() < 0.2:
        text = text.replace("\n\n[Verse 2]", "\nYou might also like\n[Verse 2]", 1)
    return text + (f"{rng.randint(1, 399)}Embed" if rng.random() < 0.8 else "Embed")


# --- artist biographies ------------------------------------------------------------------------------------


def bio_records(cat: Catalogue, artists: np.ndarray, cfg: DemoDataConfig) -> list[dict]:
    """Biographies for the covered share of `artists`: {artist_uri, artist_name, bio}.

    Half name the artist's style; the themes they list are half the genre's words, half common ones; the
    artist they are compared to is of a random genre half the time."""
    rng = np.random.default_rng([cfg.seed, 5])
    covered = rng.random(len(cat.artist_id)) < cfg.bio_coverage
    off_genre = min(0.95, 0.5 * cfg.content_noise)
    records = []
    for a in artists:
        if not covered[a]:
            continue
        r = random.Random(cfg.seed * 1_000_003 + int(a))
        genre = cat.genres[cat.artist_content_genre[a]]
        compared = r.choice(cat.genres) if r.random() < off_genre else genre
        themes = [r.choice(genre.theme) if r.random() >= off_genre else r.choice(COMMON_WORDS) for _ in range(3)]
        act, adjective = r.choice(BIO_ACTS), r.choice(BIO_ADJECTIVES)
        style = f"{genre.name} {act}" if r.random() < BIO_NAMES_STYLE else act
        article = "an" if adjective[0] in "aeiou" else "a"
        bio = (
            f"{cat.artist_name[a]} is {article} {adjective} {style} from {r.choice(CITIES)}. "
            f"Their songs are about {themes[0]}, {themes[1]} and {themes[2]}. "
            f"Formed in {r.randint(1965, 2016)}, they are often compared to {compared.name} artists."
        )
        records.append({"artist_uri": cat.artist_uri(a), "artist_name": cat.artist_name[a], "bio": bio})
    return records


# --- album art ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverPlan:
    """What a given album's cover file is: absent, an image of some size and format, or a corrupt file."""

    album: int
    state: str  # "missing" | "ok" | "truncated" | "empty"
    size: tuple[int, int]  # (width, height)
    format: str  # "jpg" | "png"


def cover_plans(cat: Catalogue, albums: np.ndarray, cfg: DemoDataConfig) -> list[CoverPlan]:
    rng = np.random.default_rng([cfg.seed, 6])
    n_all = len(cat.album_id)
    covered = rng.random(n_all) < cfg.art_coverage
    corrupt = rng.random(n_all)
    size_index = rng.choice(len(COVER_SIZES), size=n_all, p=COVER_SIZE_SHARE)
    as_png = rng.random(n_all) < 0.3
    plans = []
    for b in albums:
        size = COVER_SIZES[size_index[b]]
        state = "missing"
        if covered[b]:
            state = "empty" if corrupt[b] < cfg.corrupt_art / 2 else "truncated" if corrupt[b] < cfg.corrupt_art else "ok"
        fmt = "png" if as_png[b] and size[0] <= 300 else "jpg"  # large noisy PNGs would bloat the corpus
        plans.append(CoverPlan(int(b), state, size, fmt))
    return plans


def album_cover(content: GenreContent, genre: int, plan: CoverPlan, cfg: DemoDataConfig) -> np.ndarray:
    """A (height, width, 3) uint8 cover: often the genre's hue and pattern, jittered per album, with smooth noise."""
    rng = np.random.default_rng([cfg.seed, 6, plan.album])
    noise = cfg.content_noise
    # Drawn at most COVER_DRAW_SIZE wide and scaled up: the patterns are smooth, and large covers drawn in full
    # made up most of the demo corpus's generation time.
    width, height = plan.size
    scale = min(1.0, COVER_DRAW_SIZE / max(width, height))
    width, height = max(1, round(width * scale)), max(1, round(height * scale))
    v = (np.arange(height, dtype=np.float32) / height)[:, None]
    u = (np.arange(width, dtype=np.float32) / width)[None, :]
    f = content.frequency[genre] * (1 + 0.15 * noise * rng.normal())
    phase = rng.uniform(0, 2 * np.pi)
    own_pattern, own_hue = rng.random() < COVER_GENRE_PATTERN, rng.random() < COVER_GENRE_HUE
    pattern = PATTERNS[content.pattern[genre] if own_pattern else rng.integers(len(PATTERNS))]
    if pattern == "stripes":
        t = np.sin(2 * np.pi * f * v + phase)
    elif pattern == "rings":
        t = np.sin(2 * np.pi * f * np.hypot(u - 0.5, v - 0.5) + phase)
    elif pattern == "gradient":
        t = 2 * (u * np.cos(phase) + v * np.sin(phase)) - 1
    elif pattern == "checker":
        t = np.sign(np.sin(2 * np.pi * f * u / 2 + phase) * np.sin(2 * np.pi * f * v / 2))
    elif pattern == "diagonal":
        t = np.sin(2 * np.pi * f * (u + v) / 1.5 + phase)
    else:  # dots
        t = np.cos(2 * np.pi * f * u + phase) * np.cos(2 * np.pi * f * v)
    hue = (content.hue[genre] + 0.04 * noise * rng.normal()) % 1.0 if own_hue else rng.random()
    light = 0.5 + 0.3 * t + 0.08 * noise * _smooth_noise(rng, height, width)
    saturation = np.clip(0.6 + 0.1 * noise * rng.normal(), 0.2, 1.0)
    image = _hls_to_rgb(hue, np.clip(light, 0, 1), saturation)
    if scale < 1.0:
        image = np.asarray(Image.fromarray(image).resize(plan.size, Image.BILINEAR))
    return image


def encode_cover(image: np.ndarray, plan: CoverPlan) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG" if plan.format == "png" else "JPEG", quality=85, compress_level=1)
    data = buffer.getvalue()
    if plan.state == "empty":
        return b""
    if plan.state == "truncated":
        return data[: len(data) // 3]
    return data


def _smooth_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    coarse = rng.normal(size=(8, 8))
    rows = np.linspace(0, 7, height).astype(int)
    cols = np.linspace(0, 7, width).astype(int)
    return coarse[np.ix_(rows, cols)]


def _hls_to_rgb(hue: float, light: np.ndarray, saturation: float) -> np.ndarray:
    """Vectorised HLS -> RGB (colorsys's formulas) for one hue and saturation over an image of lightness."""
    m2 = np.where(light <= 0.5, light * (1 + saturation), light + saturation - light * saturation)
    m1 = 2 * light - m2

    def channel(h: float) -> np.ndarray:
        h %= 1.0
        if h < 1 / 6:
            return m1 + (m2 - m1) * h * 6
        if h < 0.5:
            return m2
        if h < 2 / 3:
            return m1 + (m2 - m1) * (2 / 3 - h) * 6
        return m1

    rgb = np.stack([channel(hue + 1 / 3), channel(hue), channel(hue - 1 / 3)], axis=-1)
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)
