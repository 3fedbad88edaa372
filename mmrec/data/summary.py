"""prepare's bookkeeping, free of Ray: per-slice summaries and their merge, the card's wording and its summary.

Pass 1 of prepare (data/run.py) turns each slice into one summary row (problems, digests, pids, plays per song);
the driver merges them with SliceSummaries, whose memory follows the catalogue, not the corpus.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mmrec.data.mpd import SLICE_NAME
from mmrec.data.split import Block, count_plays

COUNT_ON_REASON = {
    "all": "the paper's definition (MPD-freq, MPD-Large count every play), so corpus sizes compare with it; a "
    "held-out song's own plays count towards its filter, a small leak that decides only whether it stays",
    "train": "no held-out play counts towards any filter or id: a song must be played in training histories",
}


def summarize_slice(playlists: pa.Table) -> pa.Table:
    """One row: the slice's problems, digest, (pid, file) pairs, and plays of each song (by hash)."""
    good = playlists.filter(playlists["valid"])
    block = Block.from_arrow(good["pid"], good["songs"])
    songs, index = np.unique(block.songs, return_inverse=True)
    plays, train_plays = count_plays(Block(block.pids, block.offsets, index), len(songs))
    digests = playlists.filter(pc.is_valid(playlists["file_digest"]))
    return pa.table({
        "reasons": [pc.list_flatten(playlists["problem_reasons"]).to_pylist()],
        "messages": [pc.list_flatten(playlists["problem_messages"]).to_pylist()[:1]],
        "digest_files": [digests["file"].to_pylist()],
        "digests": [digests["file_digest"].to_pylist()],
        "pids": [good["pid"].to_pylist()],
        "pid_files": [good["file"].to_pylist()],
        "entries": [len(block.songs)],
        "repeats_dropped": [int(pc.sum(good["repeats_dropped"]).as_py() or 0)],
        "songs": [songs],
        "plays": [plays],
        "train_plays": [train_plays],
    })


def first_per_song(rows: pa.Table) -> pa.Table:
    """The lowest pid's row of each song (and of each other URI spelling under the same hash, which only a
    hash collision can give: kept so it is caught)."""
    rows = rows.sort_by([("song", "ascending"), ("track_uri", "ascending"), ("pid", "ascending")])
    song, uri = rows["song"].to_numpy(), rows["track_uri"].to_numpy(zero_copy_only=False)
    first = np.r_[True, (song[1:] != song[:-1]) | (uri[1:] != uri[:-1])] if rows.num_rows else np.zeros(0, bool)
    return rows.filter(pa.array(first))


class SliceSummaries:
    """Accumulates the per-slice summaries of pass 1; song plays are merged by hash as they stream in."""

    def __init__(self):
        self.problems: Counter[str] = Counter()
        self.first_problem = ""
        self.digests: dict[str, str] = {}
        self.pid_files: dict[int, list[str]] = {}
        self.playlists = self.entries = self.repeats_dropped = 0
        self._songs: list[pa.Table] = []
        self._pending_rows = 0

    def add(self, batch: pa.Table) -> None:
        scalars = ["reasons", "messages", "digest_files", "digests", "pids", "pid_files", "entries", "repeats_dropped"]
        for row in batch.select(scalars).to_pylist():
            self.problems.update(row["reasons"])
            if row["messages"] and (not self.first_problem or row["messages"][0] < self.first_problem):
                self.first_problem = row["messages"][0]
            self.digests.update(zip(row["digest_files"], row["digests"]))
            for pid, file in zip(row["pids"], row["pid_files"]):
                self.pid_files.setdefault(pid, []).append(file)
            self.playlists += len(row["pids"])
            self.entries += row["entries"]
            self.repeats_dropped += row["repeats_dropped"]
        self._songs.append(batch.select(["songs", "plays", "train_plays"]))
        self._pending_rows += int(pc.sum(pc.list_value_length(batch["songs"])).as_py() or 0)
        if self._pending_rows > 1_000_000:  # merge as we go: memory follows the catalogue, not the corpus
            self._songs = [self._merged_table()]
            self._pending_rows = self._songs[0].num_rows

    def _merged_table(self) -> pa.Table:
        flat = []
        for t in self._songs:
            if "song" in t.column_names:
                flat.append(t)
                continue
            flat.append(pa.table({name: pc.list_flatten(t[col]) for name, col in
                                  (("song", "songs"), ("plays", "plays"), ("train_plays", "train_plays"))}))
        table = pa.concat_tables(flat)
        merged = table.group_by("song").aggregate([("plays", "sum"), ("train_plays", "sum")])
        return merged.rename_columns(["song", "plays", "train_plays"])

    def song_plays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(hashes sorted, plays, training plays) of every song read."""
        table = self._merged_table().sort_by("song")
        return tuple(table[c].to_numpy() for c in ("song", "plays", "train_plays"))

    def duplicate_pids(self) -> dict[int, list[str]]:
        return {pid: sorted(files, key=slice_order) for pid, files in self.pid_files.items() if len(files) > 1}

    def content_hash(self) -> str:
        h = hashlib.sha256()
        for file in sorted(self.digests, key=slice_order):
            h.update(f"{file}\t{self.digests[file]}\n".encode())
        return h.hexdigest()


def slice_order(file: str) -> tuple[int, str]:
    match = SLICE_NAME.match(file)
    return (int(match.group(1)) if match else -1, file)


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


def summary_rows(card: dict) -> list[tuple[str, str]]:
    """What the pipeline summary shows of a data card."""
    return [
        ("playlists", f"{card['playlists']:,} (of {card['read']['playlists']:,} read)"),
        ("songs", f"{card['songs']:,} (>= {card['thresholds']['min_song_count']} plays, of {card['read']['songs']:,})"),
        ("interactions", f"{card['interactions']:,}, sparsity {card['sparsity']:.5f}"),
    ]
