"""Ray wrapper of the demo corpus generator: slices and album covers are written by parallel Ray tasks.

Writes under the corpus location (default <artifact_root>/demo-corpus, local or s3://):
    data/mpd.slice.START-END.json   playlists in the exact MPD format
    challenge_set.json               playlists with songs held out, in the MPD challenge's format
    audio_features.csv, audio_features.jsonl   Spotify's audio-features objects
    lyrics.jsonl                     {track_uri, lyrics}, Genius-style
    album_art/index.jsonl, album_art/images/*   {album_uri, path}; JPEG and PNG covers, some corrupt
    artist_bios.jsonl                {artist_uri, artist_name, bio}
    hidden/song_genres.csv           the hidden genre of each song: for plots and checks only, no stage reads it
    hidden/challenge_holdouts.jsonl  the challenge's answers {pid, track_uris}: for scoring a submission only
    manifest.json                    settings, counts and coverage; written last, so its presence means complete
"""

from __future__ import annotations

import io
import json
import logging
import time

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import ray

from mmrec import artifacts, layout
from mmrec.artifacts import Location
from mmrec.config import MMRecConfig
from mmrec.demo.config import DemoDataConfig
from mmrec.demo.corpus import (
    Catalogue,
    make_catalogue,
    make_challenge_set,
    make_slice,
    slice_bounds,
    slice_file_name,
)
from mmrec.demo.modalities import (
    album_cover,
    audio_features,
    bio_records,
    cover_plans,
    encode_cover,
    genre_content,
    lyrics_records,
)
from mmrec.ray_runtime import init_ray

log = logging.getLogger("mmrec.demo")
COVER_TASKS = 8  # album-cover work is split into this many Ray tasks


def corpus_location(config: MMRecConfig) -> Location:
    return layout.demo_corpus(config.artifact_root, config.demo_data.output)


def run(config: MMRecConfig) -> dict[str, str]:
    """Generate the demo corpus (skipped when a complete one with the same settings is there)."""
    cfg = config.demo_data
    out = corpus_location(config)
    manifest_loc = out.join("manifest.json")
    settings = _settings(cfg)
    if not cfg.overwrite and manifest_loc.exists() and artifacts.read_json(manifest_loc).get("settings") == settings:
        log.info("demo corpus at %s is complete and up to date; set demo_data.overwrite=true to redo it", out)
        return _outputs(out)
    if manifest_loc.exists():
        manifest_loc.fs.delete_file(manifest_loc.path)  # the corpus is incomplete until the new manifest lands

    started = time.time()
    init_ray()
    cat = make_catalogue(cfg)
    cat_ref = ray.put(cat)

    bounds = slice_bounds(cfg)
    pending = [_write_slice.remote(cat_ref, cfg, out.uri, first, last) for first, last in bounds]
    counts = np.zeros(cat.num_songs, dtype=np.int64)  # entries per song over the whole corpus
    n_playlists = 0
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        songs, song_counts, playlists = ray.get(done[0])
        counts[songs] += song_counts
        n_playlists += playlists
        log.info("slices %d/%d written (%d playlists)", len(bounds) - len(pending), len(bounds), n_playlists)
    _remove_stale_slices(out.join("data"), {slice_file_name(a, b) for a, b in bounds})
    n_entries = int(counts.sum())
    challenge, holdouts, challenge_songs = make_challenge_set(cat, cfg)
    artifacts.write_bytes(out.join("challenge_set.json"), challenge)
    _write_jsonl(out.join("hidden", "challenge_holdouts.jsonl"), holdouts)
    # modality sources cover every song of the corpus and the challenge set, as scraped sources would
    songs = np.union1d(np.flatnonzero(counts), challenge_songs)

    content = genre_content(cfg)
    features = pa.table(audio_features(cat, content, songs, cfg))
    with artifacts.atomic_output(out.join("audio_features.csv")) as f:
        pacsv.write_csv(features, f)
    _write_jsonl(out.join("audio_features.jsonl"), features.to_pylist())
    lyrics = lyrics_records(cat, songs, cfg)
    _write_jsonl(out.join("lyrics.jsonl"), lyrics)
    artists = np.unique(cat.track_artist[songs])
    bios = bio_records(cat, artists, cfg)
    _write_jsonl(out.join("artist_bios.jsonl"), bios)
    log.info("audio features, lyrics and biographies written")

    albums = np.unique(cat.track_album[songs])
    plans = cover_plans(cat, albums, cfg)
    chunks = [c for c in np.array_split(np.arange(len(plans)), COVER_TASKS) if len(c)]
    cover_tasks = [_write_covers.remote(cat_ref, cfg, out.uri, [plans[i] for i in chunk]) for chunk in chunks]
    index = []
    for n, part in enumerate(cover_tasks, 1):
        index.extend(ray.get(part))
        log.info("album covers %d/%d task(s) done", n, len(cover_tasks))
    _write_jsonl(out.join("album_art", "index.jsonl"), index)

    hidden = pa.table(
        {
            "track_uri": [cat.track_uri(i) for i in songs],
            "genre": cat.track_genre[songs],
            "genre_name": [cat.genres[g].name for g in cat.track_genre[songs]],
            "scene": cat.track_scene[songs],
            "content_genre": cat.track_content_genre[songs],
        }
    )
    with artifacts.atomic_output(out.join("hidden", "song_genres.csv")) as f:
        pacsv.write_csv(hidden, f)

    states = [p.state for p in plans]
    manifest = artifacts.card(
        settings=settings,
        playlists=n_playlists,
        slices=len(bounds),
        entries=n_entries,
        songs=int((counts > 0).sum()),
        songs_played_once=int((counts == 1).sum()),
        challenge_playlists=cfg.challenge_playlists,
        artists=int(len(artists)),
        albums=int(len(albums)),
        genres=[g.name for g in cat.genres],
        coverage={
            "audio": 1.0,
            "lyrics": round(len(lyrics) / len(songs), 4),  # over corpus and challenge songs
            "artist_bio": round(len(bios) / len(artists), 4),
            "album_art_file": round(sum(s != "missing" for s in states) / len(albums), 4),
            "album_art_readable": round(sum(s == "ok" for s in states) / len(albums), 4),
        },
        seconds=round(time.time() - started, 1),
    )
    artifacts.write_json(manifest_loc, manifest)
    log.info("demo corpus complete at %s in %.0f s", out, manifest["seconds"])
    return _outputs(out)


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    """Key figures of the corpus, for the pipeline's closing table."""
    m = artifacts.read_json(corpus_location(config).join("manifest.json"))
    return [
        ("playlists", f"{m['playlists']:,} in {m['slices']} slices"),
        ("entries", f"{m['entries']:,}"),
        ("songs", f"{m['songs']:,} ({m['songs_played_once'] / m['songs']:.0%} played once)"),
        ("artists / albums", f"{m['artists']:,} / {m['albums']:,}"),
        ("coverage", ", ".join(f"{k} {v:.0%}" for k, v in m["coverage"].items())),
    ]


@ray.remote(num_cpus=1)
def _write_slice(cat: Catalogue, cfg: DemoDataConfig, out_uri: str, first: int, last: int):
    data, entries = make_slice(cat, cfg, first, last)
    artifacts.write_bytes(artifacts.resolve(out_uri).join("data", slice_file_name(first, last)), data)
    songs, song_counts = np.unique(entries, return_counts=True)
    return songs, song_counts, last - first + 1


@ray.remote(num_cpus=1)
def _write_covers(cat: Catalogue, cfg: DemoDataConfig, out_uri: str, plans: list) -> list[dict]:
    folder = artifacts.resolve(out_uri).join("album_art")
    content = genre_content(cfg)
    index = []
    for plan in plans:
        if plan.state == "missing":
            continue
        genre = int(cat.artist_content_genre[cat.album_artist[plan.album]])
        image = album_cover(content, genre, plan, cfg)
        path = f"images/{cat.album_id[plan.album]}.{plan.format}"
        artifacts.write_bytes(folder.join(path), encode_cover(image, plan))
        index.append({"album_uri": cat.album_uri(plan.album), "path": path})
    return index


def _settings(cfg: DemoDataConfig) -> dict:
    """The settings that decide the corpus's content (not where it goes or whether to redo it)."""
    return cfg.model_dump(exclude={"output", "overwrite"})


def _write_jsonl(loc: Location, records: list[dict]) -> None:
    buffer = io.StringIO()
    for record in records:
        buffer.write(json.dumps(record, default=_plain) + "\n")
    artifacts.write_text(loc, buffer.getvalue())


def _plain(value):
    return value.item() if isinstance(value, np.generic) else str(value)


def _remove_stale_slices(folder: Location, keep: set[str]) -> None:
    for loc in artifacts.list_files(folder, suffix=".json"):
        if loc.name.startswith("mpd.slice.") and loc.name not in keep:
            folder.fs.delete_file(loc.path)


def _outputs(out: Location) -> dict[str, str]:
    return {
        "corpus": out.uri,
        "slices": out.join("data").uri,
        "audio_features": out.join("audio_features.csv").uri,
        "lyrics": out.join("lyrics.jsonl").uri,
        "album_art_index": out.join("album_art", "index.jsonl").uri,
        "artist_bios": out.join("artist_bios.jsonl").uri,
        "challenge_set": out.join("challenge_set.json").uri,
        "manifest": out.join("manifest.json").uri,
    }
