"""Where every artifact lives under the artifact root, and how one stage reads another's.

Stages meet only here: each writes its folder, and any later stage finds and reads it through these functions,
which take plain values (the root, a name, a setting), never a whole config. The tree (docs/artifacts.md):

    <root>/demo-corpus/         demo-data: MPD slices (data/), challenge_set.json, modality sources, hidden/
    <root>/data/                prepare: items.parquet, train|valid|test.parquet, challenge.parquet, card.json
    <root>/embeddings/          embed: <modality>.parquet, fused.parquet, plots/, card.json
    <root>/runs/<run name>/     train: Ray Train checkpoints, training_curve.png
    <root>/models/<run name>/   train (and tune): the registered model, evaluation.json (models/registry.py)
    <root>/reports/<name>/      experiment, tune, serve and benchmark reports

Content tables are joined to items on item_idx (written by embed from track URIs), never on row order. Each
modality is standardised per dimension over every song it covers (catalogue and cold songs alike), so the scale
of one modality does not drown another and cold songs go through the same transform.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from mmrec import __version__, artifacts
from mmrec.artifacts import ITEMS_SCHEMA, SPLIT_SCHEMA, ArtifactError, Location
from mmrec.config_base import RUNTIME, SCORING, marked_fields
from mmrec.train.config import TrainConfig

# The modality sources the demo corpus ships, by embed setting (a real corpus names its own in embed.*).
DEMO_SOURCES = {
    "audio_features": "audio_features.csv",
    "lyrics": "lyrics.jsonl",
    "album_art_index": "album_art/index.jsonl",
    "artist_bios": "artist_bios.jsonl",
}
VOLATILE_CARD_FIELDS = ("written_at", "seconds")  # a rerun that writes the same artifacts changes only these


# --- locations ----------------------------------------------------------------------------------------------

def demo_corpus(root: str, output: str = "") -> Location:
    """The demo corpus: demo_data.output, or <root>/demo-corpus."""
    return artifacts.resolve(output or f"{root.rstrip('/')}/demo-corpus")


def modality_source(root: str, name: str, configured: str = "", demo_output: str = "") -> Location:
    """A modality source file (an embed setting such as `lyrics`): the configured one, else the demo corpus's."""
    if configured:
        return artifacts.resolve(configured)
    return demo_corpus(root, demo_output).join(DEMO_SOURCES[name])


def data_dir(root: str) -> Location:
    return artifacts.resolve(root).join("data")


def embeddings_dir(root: str) -> Location:
    return artifacts.resolve(root).join("embeddings")


def run_dir(root: str, name: str) -> Location:
    return artifacts.resolve(root).join("runs", name)


def model_dir(root: str, name: str) -> Location:
    return artifacts.resolve(root).join("models", name)


def report_dir(root: str, name: str) -> Location:
    return artifacts.resolve(root).join("reports", name)


def registered_models(root: str) -> list[str]:
    """Names of the complete registered models under <root>/models (those with a card.json)."""
    models = artifacts.resolve(root).join("models")
    return [name for name in models.folders() if models.join(name, "card.json").exists()]


def registered_model(root: str, name: str) -> Location:
    """models/<name>, which must be a complete registered model; if not, the error lists the ones there are."""
    loc = model_dir(root, name)
    if not loc.join("card.json").exists():
        names = registered_models(root)
        there = f"registered models: {', '.join(names)}" if names else "no model is registered there yet; train or tune one first"
        raise ArtifactError(f"{loc.uri}: no registered model named {name!r} ({there})")
    return loc


def card_hash(loc: Location) -> str | None:
    """sha256 of a stage card without its timestamps, so a model names the exact data and embeddings it was
    trained on, and rerunning a stage that produces the same artifacts does not start training afresh."""
    if not loc.exists():
        return None
    card = {k: v for k, v in artifacts.read_json(loc).items() if k not in VOLATILE_CARD_FIELDS}
    return hashlib.sha256(json.dumps(card, sort_keys=True).encode()).hexdigest()


# --- run names ----------------------------------------------------------------------------------------------

def run_name(train: TrainConfig, root: str) -> str:
    """train.run_name, or a name derived from the model settings and the data and embedding cards, so the same
    settings on the same artifacts resume one run and anything else starts a new one. It names both runs/<name>
    (checkpoints) and models/<name> (the registered model that evaluate and serve load by default)."""
    if train.run_name:
        return train.run_name
    kind = "+".join(train.modalities) if train.modalities else "id-only"
    return f"{train.architecture}-{kind}-{train.fusion if train.modalities else 'ids'}-{fingerprint(train, root)[:8]}"


def fingerprint(train: TrainConfig, root: str) -> str:
    """A hash of everything that shapes the weights: the training settings but those marked runtime (where and
    how fast they run: TrainConfig's `runtime` fields) or scoring (applied at registration), as resolved, and the
    cards of the data and embeddings."""
    settings = train.model_dump(mode="json", exclude=marked_fields(TrainConfig, RUNTIME) | marked_fields(TrainConfig, SCORING))
    # Settings left empty count as what they resolve to: a value set equal to the default's is the same run, and a
    # default that changes makes a new one instead of resuming an old model under the same name.
    settings.update(train.resolved())
    cards = [__version__, card_hash(data_dir(root).join("card.json"))]
    if train.modalities:
        cards.append(card_hash(embeddings_dir(root).join("card.json")))
    return hashlib.sha256(json.dumps([settings, cards], sort_keys=True).encode()).hexdigest()


# --- readers ------------------------------------------------------------------------------------------------

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


def read_items(root: str) -> pa.Table:
    """data/items.parquet: the catalogue, item_idx 1..N with song metadata and training plays."""
    return artifacts.read_table(data_dir(root).join("items.parquet"), ITEMS_SCHEMA)


def train_counts(items: pa.Table) -> np.ndarray:
    """(N,) training plays of items 1..N, from an items table (items.parquet, or a registered model's copy)."""
    counts = np.zeros(items.num_rows, np.int64)
    counts[items["item_idx"].to_numpy() - 1] = items["train_count"].to_numpy()
    return counts


def artist_indices(items: pa.Table) -> np.ndarray:
    """(N,) an index per song's artist (items 1..N), -1 where the artist is unknown."""
    artists = np.full(items.num_rows, -1, np.int64)
    uris = items["artist_uri"].to_pylist()
    index = {uri: i for i, uri in enumerate(dict.fromkeys(u for u in uris if u))}
    artists[items["item_idx"].to_numpy() - 1] = [index[u] if u else -1 for u in uris]
    return artists


def read_split(root: str, name: str) -> Split:
    """data/<name>.parquet (train, valid or test) as histories and targets."""
    table = artifacts.read_table(data_dir(root).join(f"{name}.parquet"), SPLIT_SCHEMA)
    history = table["history"].combine_chunks()
    offsets = history.offsets.to_numpy()
    values = history.values.to_numpy().astype(np.int64)
    histories = [values[offsets[i]:offsets[i + 1]] for i in range(len(table))]
    targets = table["target"].fill_null(-1).to_numpy().astype(np.int64)
    return Split(table["pid"].to_numpy().astype(np.int64), histories, targets)


def read_content(root: str, modality: str) -> ContentTable:
    """embeddings/<modality>.parquet, standardised per dimension."""
    loc = embeddings_dir(root).join(f"{modality}.parquet")
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


# --- selections every stage must agree on -------------------------------------------------------------------

def sample_rows(count: int, limit: int, seed: int) -> np.ndarray:
    """A fixed, sorted sample of `limit` row numbers out of `count` (all rows when limit is 0 or larger)."""
    if not limit or limit >= count:
        return np.arange(count)
    return np.sort(np.random.default_rng(seed).choice(count, size=limit, replace=False))


COLD_SEED = 20261125  # one cold set per share and catalogue, the same for every seed and model of a grid


def cold_items(num_items: int, share: float) -> np.ndarray:
    """The item ids (sorted) held out of training for `train.cold_share` (evaluate scores them from content)."""
    count = int(round(share * num_items))
    return np.sort(np.random.default_rng(COLD_SEED).choice(np.arange(1, num_items + 1), size=count, replace=False))


def without_items(histories: list[np.ndarray], items: np.ndarray) -> list[np.ndarray]:
    """Histories with these items removed (the rest keep their order)."""
    if not len(items):
        return histories
    return [h[~np.isin(h, items)] for h in histories]
