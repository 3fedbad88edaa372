"""What training reads from the artifact root: the splits as histories and targets, and the content tables.

Content tables are joined to items on item_idx (written by embed from track URIs), never on row order. Each
modality is standardised per dimension over every song it covers (catalogue and cold songs alike), so the
scale of one modality does not drown another and cold songs go through the same transform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mmrec import artifacts
from mmrec.artifacts import ITEMS_SCHEMA, SPLIT_SCHEMA, ArtifactError, Location


@dataclass(frozen=True)
class Split:
    pids: np.ndarray  # (P,) int64
    histories: list[np.ndarray]  # P arrays of item_idx (int64), oldest first
    targets: np.ndarray  # (P,) int64; -1 where there is none (train)


@dataclass(frozen=True)
class ContentTable:
    """One modality's standardised vectors for every song embed described (catalogue and cold songs)."""

    modality: str
    track_uris: list[str]
    item_idx: np.ndarray  # (S,) int64, -1 for songs outside the catalogue
    vectors: np.ndarray  # (S, D) float32

    def for_items(self, num_items: int, where: str) -> np.ndarray:
        """(N + 1, D): row i is item i's vector (row 0, padding, is zeros); every item must have one."""
        table = np.zeros((num_items + 1, self.vectors.shape[1]), np.float32)
        known = self.item_idx > 0
        table[self.item_idx[known]] = self.vectors[known]
        missing = np.setdiff1d(np.arange(1, num_items + 1), self.item_idx[known])
        if len(missing):
            raise ArtifactError(f"{where}: {len(missing)} catalogue songs have no vector (item_idx {missing[:5].tolist()} "
                                "...); rerun embed after prepare")
        return table


def data_location(root: str) -> Location:
    return artifacts.resolve(root).join("data")


def read_items(root: str) -> pa.Table:
    return artifacts.read_table(data_location(root).join("items.parquet"), ITEMS_SCHEMA)


def train_counts(items: pa.Table) -> np.ndarray:
    """(N,) training plays of items 1..N, from an items table (items.parquet, or a registered model's copy)."""
    counts = np.zeros(items.num_rows, np.int64)
    counts[items["item_idx"].to_numpy() - 1] = items["train_count"].to_numpy()
    return counts


def read_split(root: str, name: str) -> Split:
    table = artifacts.read_table(data_location(root).join(f"{name}.parquet"), SPLIT_SCHEMA)
    history = table["history"].combine_chunks()
    offsets = history.offsets.to_numpy()
    values = history.values.to_numpy().astype(np.int64)
    histories = [values[offsets[i]:offsets[i + 1]] for i in range(len(table))]
    targets = table["target"].fill_null(-1).to_numpy().astype(np.int64)
    return Split(table["pid"].to_numpy().astype(np.int64), histories, targets)


def read_content(root: str, modality: str) -> ContentTable:
    loc = artifacts.resolve(root).join("embeddings", f"{modality}.parquet")
    table = artifacts.read_table(loc)
    for column in ("track_uri", "item_idx", "vector"):
        if column not in table.column_names:
            raise ArtifactError(f"{loc.uri}: missing column {column!r} (has: {', '.join(table.column_names)})")
    vector_type = table.schema.field("vector").type
    if not pa.types.is_fixed_size_list(vector_type):
        raise ArtifactError(f"{loc.uri}: column 'vector' has type {vector_type}, expected fixed_size_list<float>")
    vectors = table["vector"].combine_chunks().values.to_numpy(zero_copy_only=False).astype(np.float32)
    vectors = vectors.reshape(len(table), vector_type.list_size)
    if not np.isfinite(vectors).all():
        raise ArtifactError(f"{loc.uri}: column 'vector' holds NaN or infinite values")
    vectors = (vectors - vectors.mean(0)) / (vectors.std(0) + 1e-6)
    item_idx = table["item_idx"].fill_null(-1).to_numpy().astype(np.int64)
    return ContentTable(modality, table["track_uri"].to_pylist(), item_idx, vectors.astype(np.float32))


def sample_rows(count: int, limit: int, seed: int) -> np.ndarray:
    """A fixed, sorted sample of `limit` row numbers out of `count` (all rows when limit is 0 or larger)."""
    if not limit or limit >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


COLD_SEED = 20261125  # one cold set per share and catalogue, the same for every seed and model of a grid


def cold_items(num_items: int, share: float) -> np.ndarray:
    """The item ids (sorted) held out of training for `train.cold_share`."""
    count = int(round(share * num_items))
    return np.sort(np.random.default_rng(COLD_SEED).choice(np.arange(1, num_items + 1), size=count, replace=False))


def without_items(histories: list[np.ndarray], items: np.ndarray) -> list[np.ndarray]:
    """Histories with these items removed (the rest keep their order)."""
    if not len(items):
        return histories
    return [h[~np.isin(h, items)] for h in histories]
