"""A registered model: one folder that serving and evaluation load without pickles or training code.

    models/<name>/
      config.json        BERT4RecConfig (sizes, fusion, modality order and widths)
      model.safetensors  the weights of the best validation epoch (fine-tuned content tables included)
      items.parquet      the catalogue: item_idx 1..N and the song metadata (data/items.parquet)
      songs.parquet      every song with content (cold songs too): track_uri, item_idx (null if cold), one
                         standardised vector column per modality, so songs outside the catalogue can be scored
      metrics.json       validation metrics and the training history
      ease.safetensors   with hybrid.json, when validation chose to blend the model with EASE (models/hybrid.py)
      hybrid.json
      card.json          written last: sources, the data and embedding cards' hashes, sizes
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from mmrec import artifacts
from mmrec.artifacts import ITEMS_SCHEMA, ArtifactError, Location
from mmrec.layout import train_counts
from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmrec.models.hybrid import EASE_WEIGHTS, HYBRID, Hybrid, scorer_with
from mmrec.models.sasrec import build

WEIGHTS = "model.safetensors"


def weights_to_bytes(state_dict: dict[str, torch.Tensor]) -> bytes:
    return save_safetensors({k: v.detach().cpu().contiguous() for k, v in state_dict.items()})


def songs_table(track_uris: list[str], item_idx: np.ndarray, vectors: dict[str, np.ndarray]) -> pa.Table:
    columns = {"track_uri": pa.array(track_uris, pa.string()),
               "item_idx": pa.array(np.where(item_idx > 0, item_idx, 0), pa.int32(), mask=item_idx <= 0)}
    for name, matrix in vectors.items():
        flat = pa.array(np.ascontiguousarray(matrix, np.float32).ravel(), pa.float32())
        columns[name] = pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])
    return pa.table(columns)


def write_model(loc: Location, config: BERT4RecConfig, weights: bytes, items: pa.Table, songs: pa.Table,
                metrics: dict, card: dict, hybrid: Hybrid | None = None) -> str:
    """Write the folder; the card goes last, so a folder without card.json is incomplete. A hybrid of an earlier
    registration that this one lacks is removed before the card is written."""
    if loc.join("card.json").exists():
        loc.fs.delete_file(loc.join("card.json").path)
    artifacts.write_json(loc.join("config.json"), config.to_dict())
    artifacts.write_bytes(loc.join(WEIGHTS), weights)
    artifacts.write_table(loc.join("items.parquet"), items, ITEMS_SCHEMA)
    artifacts.write_table(loc.join("songs.parquet"), songs)
    artifacts.write_json(loc.join("metrics.json"), metrics)
    if hybrid is not None:
        artifacts.write_bytes(loc.join(EASE_WEIGHTS), hybrid.to_bytes())
        artifacts.write_json(loc.join(HYBRID), hybrid.description())
    else:
        for name in (HYBRID, EASE_WEIGHTS):
            if loc.join(name).exists():
                loc.fs.delete_file(loc.join(name).path)
    artifacts.write_json(loc.join("card.json"), artifacts.card(**card))
    return loc.uri


@dataclass
class RegisteredModel:
    """The loaded folder: the model in eval mode, the catalogue, and content for songs outside it."""

    location: Location
    config: BERT4RecConfig
    model: BERT4Rec
    items: pa.Table
    songs: pa.Table
    card: dict
    hybrid: Hybrid | None = None  # the blend with EASE that validation chose, if it chose one

    def scorer(self):
        """Histories (B, T) -> scores (B, N + 1): the model's, blended with EASE when the folder holds a hybrid
        (what evaluation and experiments score; serving applies the same blend)."""
        return scorer_with(self.hybrid, self.model.scorer())

    @property
    def cold_songs(self) -> pa.Table:
        return self.songs.filter(self.songs["item_idx"].is_null())

    def stream_contents(self, songs: pa.Table) -> list[torch.Tensor]:
        """Content inputs for `songs`, one tensor per model stream: the modality vectors concatenated (concat
        fusion) or one per modality (per_modality)."""
        vectors = [_matrix(songs[name]) for name in self.config.modalities]
        if self.config.fusion == "per_modality":
            return [torch.from_numpy(v) for v in vectors]
        return [torch.from_numpy(np.concatenate(vectors, axis=1))]


def load_model(loc: Location, device: str = "cpu") -> RegisteredModel:
    if not loc.join("card.json").exists():
        raise ArtifactError(f"{loc.uri}: not a registered model (no card.json; was registration interrupted?)")
    config = BERT4RecConfig.from_dict(artifacts.read_json(loc.join("config.json")))
    model = model_from_weights(config, artifacts.read_bytes(loc.join(WEIGHTS)), loc.join(WEIGHTS).uri)
    model.to(device).eval()
    items = artifacts.read_table(loc.join("items.parquet"), ITEMS_SCHEMA)
    songs = artifacts.read_table(loc.join("songs.parquet"))
    missing = [name for name in ("track_uri", "item_idx", *config.modalities) if name not in songs.column_names]
    if missing:
        raise ArtifactError(f"{loc.join('songs.parquet').uri}: missing columns {missing}")
    hybrid = None
    if loc.join(HYBRID).exists():
        try:
            hybrid = Hybrid.from_bytes(artifacts.read_bytes(loc.join(EASE_WEIGHTS)), artifacts.read_json(loc.join(HYBRID)),
                                       train_counts(items), model)
        except (KeyError, ValueError, SafetensorError) as err:
            raise ArtifactError(f"{loc.join(HYBRID).uri}: a broken hybrid ({err}); register the model again") from None
    return RegisteredModel(loc, config, model, items, songs, artifacts.read_json(loc.join("card.json")), hybrid)


def model_from_weights(config: BERT4RecConfig, weights: bytes, source: str = "weights") -> BERT4Rec:
    """The model of `config` holding these safetensors weights (content tables included), on the CPU."""
    contents = {name: torch.zeros(config.num_items + 1, dim) for name, dim in zip(config.modalities,
                                                                                 config.content_dims)}
    model = build(config, contents)
    try:
        model.load_state_dict(load_safetensors(weights))
    except RuntimeError as err:
        raise ArtifactError(f"{source}: weights do not match config.json ({err})") from None
    return model


def _matrix(column: pa.ChunkedArray) -> np.ndarray:
    array = column.combine_chunks()
    return array.values.to_numpy(zero_copy_only=False).astype(np.float32).reshape(len(array), array.type.list_size)


def read_metrics(loc: Location) -> dict:
    return json.loads(artifacts.read_bytes(loc.join("metrics.json")))
