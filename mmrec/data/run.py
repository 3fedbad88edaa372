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

from mmrec import artifacts
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
)
from mmrec.data.split import Block, assign_item_ids, count_plays, filter_block, filter_songs_and_playlists, leave_one_out_split
from mmrec.ray_runtime import init_ray

log = logging.getLogger("mmrec.prepare")
SPLITS = ("train", "valid", "test")
COUNT_ON_REASON = {
    "all": "the paper's definition (MPD-freq, MPD-Large count every play), so corpus sizes compare with it; a "
    "held-out song's own plays count towards its filter, a small leak that decides only whether it stays",
    "train": "no held-out play counts towards any filter or id: a song must be played in training histories",
}


def data_location(config: MMRecConfig) -> Location:
    return artifacts.resolve(config.artifact_root).join("data")


def input_uri(config: MMRecConfig) -> str:
    if config.prepare.input:
        return config.prepare.input
    from mmrec.demo.run import corpus_location

    return corpus_location(config).join("data").uri


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
    # Blocks keep slice order, so the same slices always give byte-identical tables.
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    if out.join("card.json").exists():  # until the new card lands, the data folder reads as incomplete
        out.fs.delete_file(out.join("card.json").path)
    staging = out.join(f".staging-{uuid.uuid4().hex[:8]}")
    try:
        result = _prepare(cfg, folder, slice_paths, staging, out, problems)
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
    return _outputs(out, with_challenge=bool(cfg.challenge_set))


def _prepare(cfg: PrepareConfig, folder: Location, slice_paths: list[str], staging: Location, out: Location,
             problems: Counter) -> dict:
    # Pass 1: parse every slice once, in parallel, into staging parquet (one row per playlist); each task
    # sends back only a summary of its slice: problems, digest, pids and the songs with their plays.
    playlists_dir = staging.join("playlists")
    summary = _Summary()
    for batch in (
        ray.data.read_binary_files(slice_paths, filesystem=folder.fs, include_paths=True)
        .map_batches(_parse_and_stage, batch_size=1, batch_format="pyarrow",
                     fn_kwargs={"repeats": cfg.repeats, "staging_uri": playlists_dir.uri})
        .iter_batches(batch_size=None, batch_format="pyarrow")
    ):
        summary.add(batch)
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
        pid, files = next(iter(sorted(duplicates.items())))
        if cfg.on_bad_record == "raise":
            raise MPDFormatError(f"pid {pid} appears in {files[0]} and {files[1]} (and {len(duplicates) - 1} more duplicate pid(s))")
        problems["duplicate_pid"] += sum(len(f) - 1 for f in duplicates.values())
    if summary.playlists == 0:
        raise MPDFormatError(f"{folder.uri}: no readable playlists in {len(slice_paths)} slice(s)")
    vocabulary = summary.vocabulary()  # every song read, sorted by URI; its position is the song index
    n_songs = len(vocabulary)
    log.info("read %d playlists, %d entries, %d songs", summary.playlists, summary.entries, n_songs)

    # Pass 2: playlists as song-index sequences (compact ints, kept in the object store), duplicates of earlier
    # slices dropped. Every later pass reads these.
    drop = {pid: files[1:] for pid, files in duplicates.items()}
    encoded = _read(playlists_dir, ["file", "pid", "valid", "track_uri"]).map_batches(
        _encode, batch_size=None, batch_format="pyarrow",
        fn_kwargs={"vocabulary": ray.put(vocabulary), "drop": ray.put(drop)},
    ).materialize()

    # Passes 3..: the song and playlist filters, to a fixed point.
    def count_pass(keep_song: np.ndarray, min_length: int) -> tuple[np.ndarray, np.ndarray]:
        plays, train_plays = np.zeros(n_songs, np.int64), np.zeros(n_songs, np.int64)
        counts = encoded.map_batches(
            _count, batch_size=None, batch_format="pyarrow", fn_kwargs={"keep": ray.put(keep_song), "min_length": min_length}
        )
        for batch in counts.iter_batches(batch_size=None, batch_format="pyarrow"):
            for ids, a, t in zip(*(batch[c].to_numpy(zero_copy_only=False) for c in ("ids", "plays", "train_plays"))):
                plays[ids] += a
                train_plays[ids] += t
        return plays, train_plays

    threshold = cfg.song_threshold
    filtered = filter_songs_and_playlists(count_pass, n_songs, threshold, cfg.min_playlist_length, cfg.count_on, cfg.fixed_point)
    basis = filtered.train_plays if cfg.count_on == "train" else filtered.plays
    item_of_song = assign_item_ids(np.asarray(vocabulary.to_pylist(), dtype=object), filtered.keep_song, filtered.plays, basis)
    n_items = int(item_of_song.max())
    if n_items == 0:
        raise MPDFormatError(
            f"no song has {threshold}+ plays in playlists of {cfg.min_playlist_length}+ songs; lower the thresholds"
        )
    log.info("filters kept %d songs after %d pass(es)", n_items, filtered.passes)

    # Final pass: splits, streamed to single parquet files.
    split_counts = _write_splits(encoded, out, ray.put(item_of_song), cfg.min_playlist_length)

    # Items: names and URIs of the kept songs (the lowest pid's spelling wins, deterministically).
    song_of_item = np.zeros(n_items + 1, dtype=np.int64)
    song_of_item[item_of_song[item_of_song > 0]] = np.flatnonzero(item_of_song)
    items = _items_table(playlists_dir, vocabulary, item_of_song, song_of_item, filtered)
    artifacts.write_table(out.join("items.parquet"), items, ITEMS_SCHEMA)

    card = {
        "preset": cfg.preset,
        "thresholds": {"min_song_count": threshold, "min_playlist_length": cfg.min_playlist_length},
        "filter_order": [
            f"in-playlist repeats: {cfg.repeats}" + (" (keep the first occurrence)" if cfg.repeats == "drop" else ""),
            f"drop songs with fewer than {threshold} plays (counted over {'training histories' if cfg.count_on == 'train' else 'whole playlists'})",
            f"drop playlists left with fewer than {cfg.min_playlist_length} songs",
            "repeat the two filters until neither removes anything (fixed point)" if cfg.fixed_point
            else "one pass of each filter (no fixed point: a kept song may end below the threshold)",
        ],
        "fixed_point": cfg.fixed_point,
        "filter_passes": filtered.passes,
        "repeats": cfg.repeats,
        "count_on": cfg.count_on,
        "count_on_reason": COUNT_ON_REASON[cfg.count_on],
        "item_ids": f"1..N by descending {'train_count' if cfg.count_on == 'train' else 'count'}, then track URI; 0 is padding",
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
    if cfg.challenge_set:
        card["challenge_set"] = _write_challenge(cfg.challenge_set, out, vocabulary, item_of_song)
    return card


def _read(location: Location, columns: list[str]) -> ray.data.Dataset:
    return ray.data.read_parquet(location.path, filesystem=location.fs, columns=columns)


# --- per-block functions (run in Ray Data tasks) -----------------------------------------------------------


def _parse_and_stage(batch: pa.Table, repeats: str, staging_uri: str) -> pa.Table:
    """Parse slice files, write each as a staging parquet file named by its first pid, return their summaries."""
    summaries = []
    for data, path in zip(batch["bytes"].to_pylist(), batch["path"].to_pylist()):
        name = path.rsplit("/", 1)[-1]
        table = parse_slice(data, name, repeats)
        staged = artifacts.resolve(staging_uri).join(f"{SLICE_NAME.match(name).group(1).zfill(12)}.parquet")
        artifacts.write_table(staged, table)
        summaries.append(_summarize(table))
    return pa.concat_tables(summaries)


def _summarize(batch: pa.Table) -> pa.Table:
    """One row per block: its problems, digests, (pid, file) pairs and the plays of each song in it."""
    valid = batch["valid"].to_numpy(zero_copy_only=False)
    good = batch.filter(pa.array(valid))
    flat = pc.list_flatten(good["track_uri"])
    counts = pc.value_counts(flat) if len(flat) else pa.StructArray.from_arrays([pa.array([], pa.string()), pa.array([], pa.int64())], ["values", "counts"])
    digests = batch.filter(pc.is_valid(batch["file_digest"]))
    return pa.table({
        "reasons": [pc.list_flatten(batch["problem_reasons"]).to_pylist()],
        "messages": [pc.list_flatten(batch["problem_messages"]).to_pylist()[:1]],
        "digest_files": [digests["file"].to_pylist()],
        "digests": [digests["file_digest"].to_pylist()],
        "pids": [good["pid"].to_pylist()],
        "pid_files": [good["file"].to_pylist()],
        "entries": [len(flat)],
        "repeats_dropped": [int(pc.sum(good["repeats_dropped"]).as_py() or 0)],
        "song_uris": [counts.field("values").to_pylist()],
        "song_plays": [counts.field("counts").to_pylist()],
    })


def _encode(batch: pa.Table, vocabulary, drop) -> pa.Table:
    vocabulary, drop = ray.get(vocabulary), ray.get(drop)
    batch = batch.filter(batch["valid"])
    if drop:
        keep = [not (pid in drop and file in drop[pid]) for pid, file in zip(batch["pid"].to_pylist(), batch["file"].to_pylist())]
        batch = batch.filter(pa.array(keep))
    lists = batch["track_uri"].combine_chunks()
    songs = pc.index_in(lists.values, value_set=vocabulary).cast(pa.int32())
    return pa.table({"pid": batch["pid"], "songs": pa.ListArray.from_arrays(lists.offsets, songs)})


def _count(batch: pa.Table, keep, min_length: int) -> pa.Table:
    keep = ray.get(keep)
    block = filter_block(Block.from_arrow(batch["pid"], batch["songs"]), keep, min_length)
    plays, train_plays = count_plays(block, len(keep))
    ids = np.flatnonzero(plays)
    return pa.table({"ids": [ids], "plays": [plays[ids]], "train_plays": [train_plays[ids]]})


def _split(batch: pa.Table, item_of_song, min_length: int) -> pa.Table:
    item_of_song = ray.get(item_of_song)
    tables = leave_one_out_split(Block.from_arrow(batch["pid"], batch["songs"]), item_of_song, min_length)
    return pa.concat_tables([t.append_column("split", pa.array([name] * t.num_rows, pa.string())) for name, t in tables.items()])


def _first_metadata(batch: pa.Table, item_of_song, vocabulary) -> pa.Table:
    """For the kept songs of a block: the metadata of their lowest-pid occurrence."""
    item_of_song, vocabulary = ray.get(item_of_song), ray.get(vocabulary)
    batch = batch.filter(batch["valid"])
    uris = batch["track_uri"].combine_chunks()
    song = pc.index_in(uris.values, value_set=vocabulary).to_numpy(zero_copy_only=False)
    item = item_of_song[song]
    pid = np.repeat(batch["pid"].to_numpy(), np.diff(uris.offsets.to_numpy()))
    kept = np.flatnonzero(item > 0)
    order = kept[np.lexsort((pid[kept], item[kept]))]
    first = order[np.r_[True, item[order][1:] != item[order][:-1]]] if len(order) else order
    columns = {"item_idx": pa.array(item[first], pa.int32()), "pid": pa.array(pid[first], pa.int64())}
    for field in (*TRACK_FIELDS, "duration_ms"):
        columns[field] = pc.take(pc.list_flatten(batch[field]), pa.array(first, pa.int64()))
    return pa.table(columns)


# --- driver-side helpers -----------------------------------------------------------------------------------


class _Summary:
    """Accumulates pass-2 block summaries; song plays are merged by URI as they stream in."""

    def __init__(self):
        self.problems: Counter[str] = Counter()
        self.first_problem = ""
        self.digests: dict[str, str] = {}
        self.pid_files: dict[int, list[str]] = {}
        self.playlists = self.entries = self.repeats_dropped = 0
        self._songs: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, batch: pa.Table) -> None:
        for row in batch.to_pylist():
            self.problems.update(row["reasons"])
            if row["messages"] and (not self.first_problem or row["messages"][0] < self.first_problem):
                self.first_problem = row["messages"][0]
            self.digests.update(zip(row["digest_files"], row["digests"]))
            for pid, file in zip(row["pids"], row["pid_files"]):
                self.pid_files.setdefault(pid, []).append(file)
            self.playlists += len(row["pids"])
            self.entries += row["entries"]
            self.repeats_dropped += row["repeats_dropped"]
            self._songs.append(pa.table({"track_uri": pa.array(row["song_uris"], pa.string()), "plays": pa.array(row["song_plays"], pa.int64())}))
            self._pending_rows += len(row["song_uris"])
            if self._pending_rows > 2_000_000:  # merge as we go: memory follows the catalogue, not the corpus
                self._songs = [self._merged()]
                self._pending_rows = self._songs[0].num_rows

    def _merged(self) -> pa.Table:
        table = pa.concat_tables(self._songs) if self._songs else pa.table({"track_uri": pa.array([], pa.string()), "plays": pa.array([], pa.int64())})
        return table.group_by("track_uri").aggregate([("plays", "sum")]).rename_columns(["track_uri", "plays"])

    def vocabulary(self) -> pa.Array:
        return self._merged().sort_by("track_uri")["track_uri"].combine_chunks()

    def duplicate_pids(self) -> dict[int, list[str]]:
        return {pid: sorted(files, key=_slice_order) for pid, files in self.pid_files.items() if len(files) > 1}

    def content_hash(self) -> str:
        import hashlib

        h = hashlib.sha256()
        for file in sorted(self.digests, key=_slice_order):
            h.update(f"{file}\t{self.digests[file]}\n".encode())
        return h.hexdigest()


def _slice_order(file: str):
    parts = file.split(".")
    return (int(parts[2].split("-")[0]) if len(parts) > 3 and parts[2].split("-")[0].isdigit() else -1, file)


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
    owner = np.repeat(np.arange(part.num_rows), np.diff(history.offsets.to_numpy()))
    target = part["target"].to_numpy(zero_copy_only=False)
    return int(len(np.unique(owner[history.values.to_numpy() == target[owner]])))


def _items_table(playlists_dir: Location, vocabulary: pa.Array, item_of_song: np.ndarray, song_of_item: np.ndarray,
                 filtered) -> pa.Table:
    parts = []
    for batch in _read(playlists_dir, ["pid", "valid", *TRACK_FIELDS, "duration_ms"]).map_batches(
        _first_metadata, batch_size=None, batch_format="pyarrow",
        fn_kwargs={"item_of_song": ray.put(item_of_song), "vocabulary": ray.put(vocabulary)},
    ).iter_batches(batch_size=None, batch_format="pyarrow"):
        parts.append(pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch)
    table = pa.concat_tables(parts).sort_by([("item_idx", "ascending"), ("pid", "ascending")])
    item = table["item_idx"].to_numpy()
    first = np.r_[True, item[1:] != item[:-1]]
    table = table.filter(pa.array(first)).drop_columns(["pid"])
    songs = song_of_item[table["item_idx"].to_numpy()]
    table = table.append_column("count", pa.array(filtered.plays[songs], pa.int64()))
    return table.append_column("train_count", pa.array(filtered.train_plays[songs], pa.int64()))


def _write_challenge(uri: str, out: Location, vocabulary: pa.Array, item_of_song: np.ndarray) -> dict:
    """The challenge playlists' given songs as item ids; songs the model does not know are listed apart."""
    loc = artifacts.resolve(uri)
    challenge = parse_challenge_set(artifacts.read_bytes(loc), loc.uri)
    lists = challenge["track_uri"].combine_chunks()
    song = pc.index_in(lists.values, value_set=vocabulary)
    item = np.where(song.is_valid().to_numpy(zero_copy_only=False),
                    item_of_song[song.fill_null(0).to_numpy(zero_copy_only=False)], 0)
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


def format_card(card: dict) -> str:
    rows = [
        ("input", f"{card['input']['slices']} slice(s) at {card['input']['folder']}"),
        ("read", f"{card['read']['playlists']:,} playlists, {card['read']['entries']:,} entries, {card['read']['songs']:,} songs"),
        ("filters", f"songs >= {card['thresholds']['min_song_count']} plays ({card['count_on']}), playlists >= "
                    f"{card['thresholds']['min_playlist_length']} songs, repeats {card['repeats']}, {card['filter_passes']} pass(es)"),
        ("kept", f"{card['playlists']:,} playlists, {card['songs']:,} songs, {card['interactions']:,} interactions"),
        ("sparsity", f"{card['sparsity']:.6f}"),
        ("skipped", ", ".join(f"{k} {v}" for k, v in card["skipped"].items()) or "nothing"),
        ("time", f"{card['seconds']} s"),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(["", "prepare", "-" * 60, *[f"{k.ljust(width)}  {v}" for k, v in rows], "-" * 60, ""])


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    card = artifacts.read_json(data_location(config).join("card.json"))
    return [
        ("playlists", f"{card['playlists']:,} (of {card['read']['playlists']:,} read)"),
        ("songs", f"{card['songs']:,} (>= {card['thresholds']['min_song_count']} plays, of {card['read']['songs']:,})"),
        ("interactions", f"{card['interactions']:,}, sparsity {card['sparsity']:.5f}"),
    ]


def _outputs(out: Location, with_challenge: bool) -> dict[str, str]:
    names = ["items", *SPLITS] + (["challenge"] if with_challenge else [])
    return {**{name: out.join(f"{name}.parquet").uri for name in names}, "card": out.join("card.json").uri}
