"""Ray Data wrapper of `mmrec prepare`: MPD slices -> filtered item table and leave-one-out splits.

Reads slices (a folder, a glob or an s3:// prefix); writes under <artifact_root>/data/:
    items.parquet                 item_idx, URIs, names, duration, count, train_count
    train.parquet, valid.parquet, test.parquet    pid, history list<int32>, target int32
    challenge.parquet             (when prepare.challenge_set is set) the challenge playlists' known songs
    card.json                     counts, thresholds, filter order, policies, inputs and their content hash

It streams: slices are parsed once, in parallel, into a staging parquet dataset of one row per playlist;
every later pass reads only the columns it needs, block by block, and sends back counts. The driver holds
per-song arrays (the catalogue), never the playlists. Staging lives under <artifact_root>/data/.staging-*
(so every node of a cluster sees it) and is removed at the end; artifacts are written atomically, last.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import ray

from mmrec import artifacts, layout
from mmrec.artifacts import CHALLENGE_SCHEMA, ITEMS_SCHEMA, SPLIT_SCHEMA, Location
from mmrec.config import MMRecConfig
from mmrec.data.config import PrepareConfig
from mmrec.data.mpd import (
    SLICE_NAME,
    TRACK_FIELDS,
    MPDFormatError,
    find_slice_files,
    parse_challenge_set,
    parse_slice,
    uri_hashes,
)
from mmrec.data.split import (
    Block,
    assign_item_ids,
    count_plays,
    filter_block,
    filter_songs_and_playlists,
    leave_one_out_split,
)
from mmrec.data.summary import (
    COUNT_ON_REASON,
    SliceSummaries,
    first_per_song,
    format_card,
    summarize_slice,
    summary_rows,
)
from mmrec.ray_runtime import init_ray

log = logging.getLogger("mmrec.prepare")
SPLITS = ("train", "valid", "test")
FILES_PER_BLOCK = 3


def data_location(config: MMRecConfig) -> Location:
    return layout.data_dir(config.artifact_root)


def input_uri(config: MMRecConfig) -> str:
    """prepare.input, or the demo corpus's slices."""
    if config.prepare.input:
        return config.prepare.input
    return layout.demo_corpus(config.artifact_root, config.demo_data.output).join("data").uri


def challenge_uri(config: MMRecConfig) -> str:
    """The configured challenge set; with the demo corpus as input, the demo's own challenge set."""
    if config.prepare.challenge_set or config.prepare.input:
        return config.prepare.challenge_set
    demo = layout.demo_corpus(config.artifact_root, config.demo_data.output).join("challenge_set.json")
    return demo.uri if demo.exists() else ""


def run(config: MMRecConfig) -> dict[str, str]:
    cfg = config.prepare
    started = time.time()
    out = data_location(config)
    source = input_uri(config)
    folder, slice_paths, other_files = find_slice_files(source)
    problems: Counter[str] = Counter()
    if other_files:
        if cfg.on_bad_record == "raise":
            raise MPDFormatError(
                f"{other_files[0]}: not an MPD slice (expected mpd.slice.START-END.json); "
                "move it away or set prepare.on_bad_record=skip"
            )
        problems["not_a_slice"] += len(other_files)
        log.warning("skipping %d file(s) that are not MPD slices, e.g. %s", len(other_files), other_files[0])
    if not slice_paths:
        raise MPDFormatError(f"{folder.uri}: no MPD slices found (mpd.slice.START-END.json)")
    log.info("reading %d slice(s) from %s", len(slice_paths), folder.uri)

    init_ray()
    context = ray.data.DataContext.get_current()
    # Blocks keep slice order, so the same slices always give byte-identical tables.
    context.execution_options.preserve_order = True
    # Ray Data reserves part of the CPUs for each operator; on a small node that left one of two cores idle
    # while slices waited to be parsed (14 s against 5 s for 20 half-second tasks on 2 cores).
    context.op_resource_reservation_enabled = False
    if out.join("card.json").exists():  # until the new card lands, the data folder reads as incomplete
        out.fs.delete_file(out.join("card.json").path)
    staging = out.join(f".staging-{uuid.uuid4().hex[:8]}")
    try:
        result = _prepare(cfg, folder, slice_paths, staging, out, problems, challenge_uri(config))
    finally:
        if staging.exists():
            staging.fs.delete_dir(staging.path)
    card = artifacts.card(
        input={"uri": source, "folder": folder.uri, "slices": len(slice_paths), "content_hash": result.pop("content_hash")},
        **result,
        seconds=round(time.time() - started, 1),
    )
    artifacts.write_json(out.join("card.json"), card)
    print(format_card(card), flush=True)
    return _outputs(out, with_challenge="challenge_set" in card)


def _prepare(cfg: PrepareConfig, folder: Location, slice_paths: list[str], staging: Location, out: Location,
             problems: Counter, challenge: str) -> dict:
    # Pass 1: every slice read and parsed once, in parallel, into staging parquet: playlists as lists of URI
    # hashes, and each slice's distinct songs with their names. Tasks send back only a summary of their slice.
    clock = time.time()
    summary = SliceSummaries()
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = False  # summaries merge in any order; waiting cost 45% here
    paths = ray.data.from_items([{"path": p} for p in slice_paths], override_num_blocks=len(slice_paths))
    for batch in paths.map_batches(
        _read_parse_and_stage, batch_size=1, batch_format="pyarrow",
        fn_kwargs={"fs": folder.fs, "repeats": cfg.repeats, "staging_uri": staging.uri},
    ).iter_batches(batch_size=None, batch_format="pyarrow"):
        summary.add(batch)
    context.execution_options.preserve_order = True
    log.info("pass 1, parse %d slices: %.1f s%s", len(slice_paths), time.time() - clock, _rss())
    problems.update(summary.problems)
    if summary.first_problem and cfg.on_bad_record == "raise":
        others = sum(summary.problems.values()) - 1
        raise MPDFormatError(
            summary.first_problem
            + (f" (and {others} more problem(s))" if others > 0 else "")
            + "; set prepare.on_bad_record=skip to skip bad records and count them in the card"
        )
    duplicates = summary.duplicate_pids()
    if duplicates:
        pid, files = min(duplicates.items())
        if cfg.on_bad_record == "raise":
            more = f" (and {len(duplicates) - 1} more duplicate pid(s))" if len(duplicates) > 1 else ""
            raise MPDFormatError(f"pid {pid} appears in {files[0]} and {files[1]}{more}")
        problems["duplicate_pid"] += sum(len(f) - 1 for f in duplicates.values())
    if summary.playlists == 0:
        raise MPDFormatError(f"{folder.uri}: no readable playlists in {len(slice_paths)} slice(s)")
    hashes, plays, train_plays = summary.song_plays()  # every song read, by hash; its position is its index
    n_songs = len(hashes)
    log.info("read %d playlists, %d entries, %d songs", summary.playlists, summary.entries, n_songs)

    # Pass 2: playlists as song-index lists (4 bytes an entry, kept in the object store), duplicates of
    # earlier slices dropped. Every later pass reads these.
    clock = time.time()
    drop = {pid: files[1:] for pid, files in duplicates.items()}
    encoded = _read(staging.join("playlists"), ["file", "pid", "valid", "songs"]).map_batches(
        _encode, batch_size=None, batch_format="pyarrow", fn_kwargs={"hashes": ray.put(hashes), "drop": drop},
    ).materialize()
    log.info("pass 2, encode: %.1f s%s", time.time() - clock, _rss())

    # Passes 3..: the song and playlist filters, to a fixed point.
    def count_pass(keep_song: np.ndarray, min_length: int) -> tuple[np.ndarray, np.ndarray]:
        clock = time.time()
        totals = np.zeros(n_songs, np.int64), np.zeros(n_songs, np.int64)
        counts = encoded.map_batches(
            _count, batch_size=None, batch_format="pyarrow", fn_kwargs={"keep": ray.put(keep_song), "min_length": min_length}
        )
        for batch in counts.iter_batches(batch_size=None, batch_format="pyarrow"):
            for ids, a, t in zip(*(batch[c].to_numpy(zero_copy_only=False) for c in ("ids", "plays", "train_plays"))):
                totals[0][ids] += a
                totals[1][ids] += t
        log.info("filter pass: %.1f s%s", time.time() - clock, _rss())
        return totals

    threshold = cfg.song_threshold
    initial = None if duplicates else (plays, train_plays)  # pass 1 counted exactly these playlists
    filtered = filter_songs_and_playlists(
        count_pass, n_songs, threshold, cfg.min_playlist_length, cfg.count_on, cfg.fixed_point, initial
    )
    candidates = np.flatnonzero(filtered.keep_song & (filtered.plays > 0))
    if len(candidates) == 0:
        raise MPDFormatError(
            f"no song has {threshold}+ plays in playlists of {cfg.min_playlist_length}+ songs; lower the thresholds"
        )

    # Names and URIs of the kept songs, from the staged song tables (the lowest pid's spelling wins).
    clock = time.time()
    metadata = _kept_song_metadata(staging.join("songs"), hashes[candidates])
    track_uris = np.full(n_songs, "", dtype=object)
    track_uris[candidates] = np.asarray(metadata["track_uri"].to_pylist(), dtype=object)
    basis = filtered.train_plays if cfg.count_on == "train" else filtered.plays
    item_of_song = assign_item_ids(track_uris, filtered.keep_song, filtered.plays, basis)
    n_items = len(candidates)
    items = (
        metadata.append_column("item_idx", pa.array(item_of_song[candidates], pa.int32()))
        .append_column("count", pa.array(filtered.plays[candidates], pa.int64()))
        .append_column("train_count", pa.array(filtered.train_plays[candidates], pa.int64()))
        .sort_by("item_idx")
    )
    artifacts.write_table(out.join("items.parquet"), items, ITEMS_SCHEMA)
    log.info("kept %d songs after %d filter pass(es); item table: %.1f s%s", n_items, filtered.passes, time.time() - clock, _rss())

    # Final pass: the splits, streamed into single parquet files.
    clock = time.time()
    split_counts = _write_splits(encoded, out, ray.put(item_of_song), cfg.min_playlist_length)
    log.info("split pass: %.1f s%s", time.time() - clock, _rss())

    card = {
        "preset": cfg.preset,
        "thresholds": {"min_song_count": threshold, "min_playlist_length": cfg.min_playlist_length},
        "filter_order": [
            f"in-playlist repeats: {cfg.repeats}" + (" (keep the first occurrence)" if cfg.repeats == "drop" else ""),
            f"drop songs with fewer than {threshold} plays (counted over "
            f"{'training histories' if cfg.count_on == 'train' else 'whole playlists'})",
            f"drop playlists left with fewer than {cfg.min_playlist_length} songs",
            "repeat the two filters until neither removes anything (fixed point)" if cfg.fixed_point
            else "one pass of each filter (no fixed point: a kept song may end below the threshold)",
        ],
        "fixed_point": cfg.fixed_point,
        "filter_passes": filtered.passes,
        "repeats": cfg.repeats,
        "count_on": cfg.count_on,
        "count_on_reason": COUNT_ON_REASON[cfg.count_on],
        "item_ids": f"1..N by descending {'train_count' if cfg.count_on == 'train' else 'count'}, then track URI; "
        "0 is padding",
        "read": {"playlists": summary.playlists, "entries": summary.entries, "songs": n_songs,
                 "repeats_dropped": summary.repeats_dropped},
        "playlists": split_counts["playlists"],
        "songs": n_items,
        "interactions": split_counts["interactions"],
        "sparsity": round(1 - split_counts["interactions"] / (split_counts["playlists"] * n_items), 8),
        "dropped": {"playlists": summary.playlists - split_counts["playlists"] - problems.get("duplicate_pid", 0),
                    "songs": n_songs - n_items},
        "targets_in_history": split_counts["targets_in_history"],
        "on_bad_record": cfg.on_bad_record,
        "skipped": dict(sorted(problems.items())),
        "content_hash": summary.content_hash(),
    }
    if challenge:
        card["challenge_set"] = _write_challenge(challenge, out, hashes, item_of_song)
    return card


def _rss() -> str:
    """The driver's peak memory so far, for the progress log."""
    import resource

    return f" (driver peak {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)"


def _read(folder: Location, columns: list[str]) -> ray.data.Dataset:
    """The staged parquet files of a folder, one block each, in name (slice) order.

    Each task reads its file itself: on small files this is far faster than ray.data.read_parquet, whose
    planning cost dominated here (12 s against 0.7 s for 100 files on 2 cores).
    """
    files = artifacts.list_files(folder, suffix=".parquet")
    # Two blocks per CPU at least, to spread over a cluster, but never more than FILES_PER_BLOCK staged slices
    # in one block, so a task's memory does not grow with the corpus.
    cpus = int(ray.cluster_resources().get("CPU", 1))
    blocks = max(1, min(len(files), max(2 * cpus, -(-len(files) // FILES_PER_BLOCK))))
    paths = ray.data.from_items([{"path": f.path} for f in files], override_num_blocks=blocks)
    return paths.map_batches(_load_parquet, batch_size=None, batch_format="pyarrow",
                             fn_kwargs={"fs": folder.fs, "columns": columns})


def _load_parquet(batch: pa.Table, fs, columns: list[str]) -> pa.Table:
    return pa.concat_tables([pq.read_table(path, filesystem=fs, columns=columns) for path in batch["path"].to_pylist()])


# --- per-block functions (run in Ray Data tasks) -----------------------------------------------------------


def _read_parse_and_stage(batch: pa.Table, fs, repeats: str, staging_uri: str) -> pa.Table:
    """Read and parse slice files; stage their playlists and songs as parquet named by the slice's first pid
    (so staging sorts in slice order); return one summary row per slice."""
    staging = artifacts.resolve(staging_uri)
    summaries = []
    for path in batch["path"].to_pylist():
        with fs.open_input_stream(path) as f:
            data = f.read()
        name = path.rsplit("/", 1)[-1]
        parsed = parse_slice(data, name, repeats)
        staged = f"{SLICE_NAME.match(name).group(1).zfill(12)}.parquet"
        artifacts.write_table(staging.join("playlists", staged), parsed.playlists)
        artifacts.write_table(staging.join("songs", staged), parsed.songs)
        summaries.append(summarize_slice(parsed.playlists))
        del parsed
        pa.default_memory_pool().release_unused()  # give a slice's buffers back before the next one
    return pa.concat_tables(summaries)


def _encode(batch: pa.Table, hashes, drop: dict) -> pa.Table:
    hashes = ray.get(hashes)
    batch = batch.filter(batch["valid"])
    if drop:
        pairs = zip(batch["pid"].to_pylist(), batch["file"].to_pylist())
        batch = batch.filter(pa.array([file not in drop.get(pid, ()) for pid, file in pairs], pa.bool_()))
    block = Block.from_arrow(batch["pid"], batch["songs"])
    songs = pa.array(np.searchsorted(hashes, block.songs).astype(np.int32))
    return pa.table({"pid": batch["pid"], "songs": pa.ListArray.from_arrays(pa.array(block.offsets.astype(np.int32)), songs)})


def _count(batch: pa.Table, keep, min_length: int) -> pa.Table:
    keep = ray.get(keep)
    block = filter_block(Block.from_arrow(batch["pid"], batch["songs"]), keep, min_length)
    plays, train_plays = count_plays(block, len(keep))
    ids = np.flatnonzero(plays)
    return pa.table({"ids": [ids], "plays": [plays[ids]], "train_plays": [train_plays[ids]]})


def _split(batch: pa.Table, item_of_song, min_length: int) -> pa.Table:
    item_of_song = ray.get(item_of_song)
    tables = leave_one_out_split(Block.from_arrow(batch["pid"], batch["songs"]), item_of_song, min_length)
    return pa.concat_tables(
        [t.append_column("split", pa.array([name] * t.num_rows, pa.string())) for name, t in tables.items()]
    )


def _songs_among(batch: pa.Table, kept) -> pa.Table:
    return first_per_song(batch.filter(pc.is_in(batch["song"], value_set=ray.get(kept))))


# --- driver-side helpers -----------------------------------------------------------------------------------


def _kept_song_metadata(songs_dir: Location, kept_hashes: np.ndarray) -> pa.Table:
    """URIs, names and duration of each kept song (its lowest pid's occurrence), in kept_hashes order.

    Blocks are merged as they arrive, so the driver holds about one row per kept song. Also the check that no
    two different URIs share a hash: astronomically rare, but then loud."""
    merged = None
    for batch in (
        _read(songs_dir, ["song", *TRACK_FIELDS, "duration_ms", "pid"])
        .map_batches(_songs_among, batch_size=None, batch_format="pyarrow",
                     fn_kwargs={"kept": ray.put(pa.array(kept_hashes))})
        .iter_batches(batch_size=None, batch_format="pyarrow")
    ):
        batch = batch if isinstance(batch, pa.Table) else pa.Table.from_batches([batch])
        merged = first_per_song(batch if merged is None else pa.concat_tables([merged, batch]))
    if merged.num_rows != len(kept_hashes):
        raise MPDFormatError("two different track URIs share a 64-bit hash; please report this corpus")
    order = np.searchsorted(merged["song"].to_numpy(), kept_hashes)
    return merged.take(pa.array(order)).drop_columns(["song", "pid"])


def _write_splits(encoded: ray.data.Dataset, out: Location, item_of_song_ref, min_length: int) -> dict:
    """Stream the split rows into three single parquet files, each written atomically."""
    stats = {"playlists": 0, "interactions": 0, "targets_in_history": {"valid": 0, "test": 0}}
    rows = encoded.map_batches(
        _split, batch_size=None, batch_format="pyarrow",
        fn_kwargs={"item_of_song": item_of_song_ref, "min_length": min_length},
    )
    with contextlib.ExitStack() as stack:  # an exception discards all three files
        files = {name: stack.enter_context(artifacts.atomic_output(out.join(f"{name}.parquet"))) for name in SPLITS}
        writers = {name: pq.ParquetWriter(files[name], SPLIT_SCHEMA) for name in SPLITS}
        for batch in rows.iter_batches(batch_size=None, batch_format="pyarrow"):
            for name in SPLITS:
                part = batch.filter(pc.equal(batch["split"], name)).select(["pid", "history", "target"])
                writers[name].write_table(part.cast(SPLIT_SCHEMA))
                if name != "train":
                    stats["targets_in_history"][name] += _targets_in_history(part)
                if name == "test":
                    stats["playlists"] += part.num_rows
                    stats["interactions"] += int(pc.sum(pc.list_value_length(part["history"])).as_py() or 0) + part.num_rows
        for writer in writers.values():
            writer.close()
    return stats


def _targets_in_history(part: pa.Table) -> int:
    history = part["history"].combine_chunks()
    offsets = history.offsets.to_numpy()
    owner = np.repeat(np.arange(part.num_rows), np.diff(offsets))
    values = history.values.to_numpy()[offsets[0] : offsets[-1]]
    target = part["target"].to_numpy(zero_copy_only=False)
    return int(len(np.unique(owner[values == target[owner]])))


def _write_challenge(uri: str, out: Location, hashes: np.ndarray, item_of_song: np.ndarray) -> dict:
    """The challenge playlists' given songs as item ids; songs the model does not know are listed apart."""
    loc = artifacts.resolve(uri)
    challenge = parse_challenge_set(artifacts.read_bytes(loc), loc.uri)
    lists = challenge["track_uri"].combine_chunks()
    given = uri_hashes(lists.values.to_pylist())
    song = np.minimum(np.searchsorted(hashes, given), len(hashes) - 1)
    item = np.where(hashes[song] == given, item_of_song[song], 0)
    owner = np.repeat(np.arange(challenge.num_rows), np.diff(lists.offsets.to_numpy()))
    known = item > 0

    def lists_of(mask: np.ndarray, values: pa.Array) -> pa.Array:
        offsets = np.r_[0, np.cumsum(np.bincount(owner[mask], minlength=challenge.num_rows))].astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), values)

    table = challenge.drop_columns(["track_uri"])
    table = table.append_column("history", lists_of(known, pa.array(item[known], pa.int32())))
    table = table.append_column("unknown_tracks", lists_of(~known, lists.values.filter(pa.array(~known))))
    artifacts.write_table(out.join("challenge.parquet"), table, CHALLENGE_SCHEMA)
    return {"uri": loc.uri, "playlists": challenge.num_rows, "given_tracks": len(item), "unknown_given_tracks": int((~known).sum())}


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    return summary_rows(artifacts.read_json(data_location(config).join("card.json")))


def _outputs(out: Location, with_challenge: bool) -> dict[str, str]:
    names = ["items", *SPLITS] + (["challenge"] if with_challenge else [])
    return {**{name: out.join(f"{name}.parquet").uri for name in names}, "card": out.join("card.json").uri}
