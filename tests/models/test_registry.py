"""A registered model folder round-trips: same scores, cold songs scorable, incomplete folders refused."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from mmrec import artifacts
from mmrec.artifacts import ITEMS_SCHEMA, ArtifactError
from mmrec.models import registry
from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig

N = 12


def items_table() -> pa.Table:
    return pa.table({
        "item_idx": pa.array(range(1, N + 1), pa.int32()), "track_uri": [f"spotify:track:{i}" for i in range(1, N + 1)],
        "track_name": ["t"] * N, "artist_uri": ["a"] * N, "artist_name": ["a"] * N, "album_uri": ["b"] * N,
        "album_name": ["b"] * N, "duration_ms": [1] * N, "count": [5] * N, "train_count": [4] * N,
    }, schema=ITEMS_SCHEMA)


@pytest.mark.parametrize("fusion", ["concat", "per_modality"])
def test_round_trip_gives_the_same_scores_and_scores_cold_songs(tmp_path, fusion):
    rng = np.random.default_rng(0)
    songs = N + 3  # three cold songs
    vectors = {"audio": rng.normal(size=(songs, 4)).astype(np.float32),
               "lyrics": rng.normal(size=(songs, 5)).astype(np.float32)}
    item_idx = np.array(list(range(1, N + 1)) + [-1, -1, -1])
    config = BERT4RecConfig(num_items=N, hidden=8, layers=1, heads=2, max_length=6, fusion=fusion,
                            modalities=("audio", "lyrics"), content_dims=(4, 5))
    tables = {m: torch.from_numpy(np.vstack([np.zeros((1, v.shape[1]), np.float32), v[:N]])) for m, v in vectors.items()}
    torch.manual_seed(0)
    model = BERT4Rec(config, tables).eval()
    loc = artifacts.resolve(str(tmp_path / "models" / "m"))
    uris = [f"spotify:track:{i}" for i in range(1, songs + 1)]
    registry.write_model(loc, config, registry.weights_to_bytes(model.state_dict()), items_table(),
                         registry.songs_table(uris, item_idx, vectors), {"valid": {}}, {"name": "m"})
    loaded = registry.load_model(loc)
    history = torch.tensor([[1, 2, 3]])
    assert torch.allclose(loaded.model.score(history), model.score(history))
    cold = loaded.cold_songs
    assert cold["track_uri"].to_pylist() == uris[N:]
    scores = loaded.model.score(history, cold_contents=loaded.stream_contents(cold))
    assert scores.shape == (1, N + 1 + 3) and torch.isfinite(scores[0, 1:]).all()
    assert set(loaded.card) >= {"name", "mmrec_version", "written_at"}


def test_a_folder_without_its_card_is_refused(tmp_path):
    with pytest.raises(ArtifactError, match="not a registered model"):
        registry.load_model(artifacts.resolve(str(tmp_path)))
