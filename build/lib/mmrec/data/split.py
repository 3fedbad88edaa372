"""The filters, item ids and the leave-one-out split, as pure functions on integer sequences.

A block of playlists is a CSR pair (offsets, songs): playlist i is songs[offsets[i]:offsets[i+1]] in `pos` order,
songs being indices into the table of every song read. The Ray wrapper runs these per block and sums the
counts; the tests run them on one hand-written block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa


@dataclass(frozen=True)
class Block:
    """Playlists of one block: pids (n,), offsets (n + 1,) into songs (entries,), songs in pos order."""

    pids: np.ndarray
    offsets: np.ndarray
    songs: np.ndarray

    @classmethod
    def from_lists(cls, pids, sequences: list[list[int]]) -> "Block":
        lengths = np.array([len(s) for s in sequences], dtype=np.int64)
        songs = np.concatenate([np.asarray(s, dtype=np.int64) for s in sequences]) if sequences else np.zeros(0, np.int64)
        return cls(np.asarray(pids, dtype=np.int64), np.r_[0, np.cumsum(lengths)], songs)

    @classmethod
    def from_arrow(cls, pids: pa.Array, sequences: pa.Array) -> "Block":
        sequences = sequences.combine_chunks() if isinstance(sequences, pa.ChunkedArray) else sequences
        offsets = sequences.offsets.to_numpy().astype(np.int64)
        songs = sequences.values.to_numpy(zero_copy_only=False)[offsets[0] : offsets[-1]]
        return cls(np.asarray(pids, dtype=np.int64), offsets - offsets[0], songs)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def playlist_of_entry(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.pids)), self.lengths)

    def sequences(self) -> list[np.ndarray]:
        return [self.songs[a:b] for a, b in zip(self.offsets[:-1], self.offsets[1:])]


def filter_block(block: Block, keep_song: np.ndarray, min_length: int) -> Block:
    """Drop songs not in keep_song, then playlists left shorter than min_length."""
    kept_entry = keep_song[block.songs]
    owner = block.playlist_of_entry()[kept_entry]
    lengths = np.bincount(owner, minlength=len(block.pids))
    keep_playlist = lengths >= min_length
    entry_mask = keep_playlist[owner]
    kept_lengths = lengths[keep_playlist]
    return Block(block.pids[keep_playlist], np.r_[0, np.cumsum(kept_lengths)], block.songs[kept_entry][entry_mask])


def count_plays(block: Block, n_songs: int) -> tuple[np.ndarray, np.ndarray]:
    """Plays per song over whole playlists and over training histories (all but each playlist's last two)."""
    everywhere = np.bincount(block.songs, minlength=n_songs)
    position_from_end = np.repeat(block.offsets[1:], block.lengths) - np.arange(len(block.songs))  # 1 = last
    in_training = np.bincount(block.songs[position_from_end > 2], minlength=n_songs)
    return everywhere, in_training


@dataclass(frozen=True)
class FilterResult:
    keep_song: np.ndarray  # (n_songs,) bool
    plays: np.ndarray  # (n_songs,) plays in the kept playlists
    train_plays: np.ndarray  # (n_songs,) plays in the kept playlists' training histories
    passes: int  # song-filter passes run


def filter_songs_and_playlists(
    count_pass: Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]],
    n_songs: int,
    min_song_count: int,
    min_playlist_length: int,
    count_on: str,
    fixed_point: bool,
    initial: tuple[np.ndarray, np.ndarray] | None = None,
) -> FilterResult:
    """Songs with fewer than min_song_count plays go, then playlists left too short; with fixed_point, again
    until nothing changes (dropping a playlist can push a song below the threshold).

    count_pass(keep_song, min_length) returns (plays, train_plays) summed over every block after filter_block;
    `initial` are those counts before any filter, when the caller has them already.
    """
    keep = np.ones(n_songs, dtype=bool)
    plays, train_plays = initial if initial is not None else count_pass(keep, 0)
    passes = 0
    while True:
        basis = train_plays if count_on == "train" else plays
        new_keep = keep & (basis >= min_song_count)
        if passes and (new_keep == keep).all():
            break
        keep = new_keep
        plays, train_plays = count_pass(keep, min_playlist_length)
        passes += 1
        if not fixed_point:
            break
    return FilterResult(keep, plays, train_plays, passes)


def assign_item_ids(track_uris: np.ndarray, keep_song: np.ndarray, plays: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """item_idx per song: 0 for dropped songs (0 is also padding), else 1..N by descending basis count, then URI.

    Only songs that still appear (plays > 0) get an id.
    """
    candidates = np.flatnonzero(keep_song & (plays > 0))
    order = np.lexsort((track_uris[candidates], -basis[candidates]))  # last key sorts first
    item_of_song = np.zeros(len(keep_song), dtype=np.int32)
    item_of_song[candidates[order]] = np.arange(1, len(candidates) + 1, dtype=np.int32)
    return item_of_song


def leave_one_out_split(block: Block, item_of_song: np.ndarray, min_length: int) -> dict[str, pa.Table]:
    """Map songs to item ids and split each playlist: the last song is the test target, the second-last the
    validation target, the rest the training history. Test histories include the validation song."""
    items = Block(block.pids, block.offsets, item_of_song[block.songs].astype(np.int64))
    items = filter_block(items, item_of_song_mask(items.songs), min_length)
    ends = items.offsets[1:]
    starts = items.offsets[:-1]
    pids = pa.array(items.pids, pa.int64())
    values = items.songs.astype(np.int32)

    def histories(cut: int) -> pa.Array:
        # histories are each playlist without its last `cut` songs: per-playlist slices of the same values
        lengths = ends - starts - cut
        offsets = np.r_[0, np.cumsum(lengths)].astype(np.int32)
        keep = np.ones(len(values), dtype=bool)
        for k in range(1, cut + 1):
            keep[ends - k] = False
        return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values[keep], pa.int32()))

    null_targets = pa.nulls(len(pids), pa.int32())
    return {
        "train": pa.table({"pid": pids, "history": histories(2), "target": null_targets}),
        "valid": pa.table({"pid": pids, "history": histories(2), "target": pa.array(values[ends - 2], pa.int32())}),
        "test": pa.table({"pid": pids, "history": histories(1), "target": pa.array(values[ends - 1], pa.int32())}),
    }


def item_of_song_mask(item_ids: np.ndarray) -> np.ndarray:
    """A keep mask over item ids (index 0, the dropped-song id, is False)."""
    mask = np.ones(int(item_ids.max(initial=0)) + 1, dtype=bool)
    mask[0] = False
    return mask
