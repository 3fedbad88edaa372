"""A small registered model written straight through the registry (no training): 30 songs in 3 'genres' whose
audio content carries the genre, 2 cold songs, a cover index with a good, a truncated and a missing cover."""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import torch
from PIL import Image

from mmrec import artifacts
from mmrec.artifacts import ITEMS_SCHEMA
from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmrec.models.registry import songs_table, weights_to_bytes, write_model

N = 30
NAMES = ["Blue Harbor", "Red Canyon", "Green Valley"]  # genre g's songs are "<name> <i>"
ARTISTS = ["The Tides", "Dust Riders", "Moss Choir"]
COLD_URIS = ["spotify:track:cold0", "spotify:track:cold1"]


def uri(item: int) -> str:
    return f"spotify:track:song{item:02d}"


def genre(item: int) -> int:
    return (item - 1) % 3


def write_registered_model(root: str, name: str = "small", id_embedding: bool = False) -> str:
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 4)).astype(np.float32) * 3
    audio = np.zeros((N + 1, 4), np.float32)
    for i in range(1, N + 1):
        audio[i] = centres[genre(i)] + 0.1 * rng.normal(size=4)
    cold = np.stack([audio[4], audio[5]])  # cold0 has item 4's content, cold1 item 5's
    config = BERT4RecConfig(num_items=N, hidden=16, layers=1, heads=2, max_length=8, dropout=0.0,
                            modalities=("audio",), content_dims=(4,), id_embedding=id_embedding)
    torch.manual_seed(0)
    model = BERT4Rec(config, {"audio": torch.from_numpy(audio)})
    items = pa.table({
        "item_idx": pa.array(range(1, N + 1), pa.int32()),
        "track_uri": [uri(i) for i in range(1, N + 1)],
        "track_name": [f"{NAMES[genre(i)]} {i}" for i in range(1, N + 1)],
        "artist_uri": [f"spotify:artist:a{genre(i)}" for i in range(1, N + 1)],
        "artist_name": [ARTISTS[genre(i)] for i in range(1, N + 1)],
        "album_uri": [f"spotify:album:al{i % 4}" for i in range(1, N + 1)],
        "album_name": [f"Album {i % 4}" for i in range(1, N + 1)],
        "duration_ms": pa.array([200_000] * N, pa.int64()),
        "count": pa.array([100 - i for i in range(1, N + 1)], pa.int64()),
        "train_count": pa.array([90 - i for i in range(1, N + 1)], pa.int64()),
    }, schema=ITEMS_SCHEMA)
    songs = songs_table([uri(i) for i in range(1, N + 1)] + COLD_URIS,
                        np.concatenate([np.arange(1, N + 1), [-1, -1]]),
                        {"audio": np.concatenate([audio[1:], cold])})
    loc = artifacts.resolve(root).join("models", name)
    write_model(loc, config, weights_to_bytes(model.state_dict()), items, songs,
                metrics={"valid": {"ndcg@20": 0.5}, "best_epoch": 0, "history": []},
                card={"model": name, "data_card_sha256": "test"})
    artifacts.write_json(loc.join("evaluation.json"), {"test": {"metrics": {"ndcg@20": 0.25}, "playlists": 10}})
    artifacts.write_json(artifacts.resolve(root).join("data", "card.json"), artifacts.card(playlists_kept=123))
    return loc.uri


def write_covers(root: str) -> str:
    """album_art/index.jsonl: al0 a good PNG, al1 a truncated JPEG, al2 listed but missing; al3 not listed."""
    folder = artifacts.resolve(root).join("covers")
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 30, 30)).save(buffer, format="PNG")
    artifacts.write_bytes(folder.join("images", "al0.png"), buffer.getvalue())
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (30, 30, 200)).save(buffer, format="JPEG")
    artifacts.write_bytes(folder.join("images", "al1.jpg"), buffer.getvalue()[:100])
    lines = [f'{{"album_uri": "spotify:album:al{i}", "path": "images/al{i}.{ext}"}}'
             for i, ext in ((0, "png"), (1, "jpg"), (2, "png"))]
    artifacts.write_text(folder.join("index.jsonl"), "\n".join(lines) + "\n")
    return folder.join("index.jsonl").uri
