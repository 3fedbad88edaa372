"""`mmrec embed` end to end on a small demo corpus with a real local Ray."""

import json
from pathlib import Path

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from mmrec.config import load_config
from mmrec.embed import run as embed

from tests.conftest import build_corpus

pytestmark = pytest.mark.slow

SMALL = {
    "demo_data.playlists": 400, "demo_data.songs": 3000, "demo_data.challenge_playlists": 0,
    "prepare.min_song_count": 3,
    "embed.songs": "items", "embed.audio_epochs": 5, "embed.art_epochs": 1, "embed.art_width": 4,
    "embed.art_train_sample": 200, "embed.dim": 16, "embed.actors": 1,
}


@pytest.fixture(scope="module")
def embedded(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    return root, build_corpus(root, SMALL)


def test_every_item_has_a_fused_vector_and_the_card_counts_the_gaps(embedded):
    root, outputs = embedded
    items = pq.read_table(root / "data" / "items.parquet")
    fused = pq.read_table(outputs["fused"])
    assert set(fused["track_uri"].to_pylist()) == set(items["track_uri"].to_pylist())
    assert fused.schema.field("vector").type.list_size == 4 * 16
    vectors = np.stack(fused["vector"].to_numpy(zero_copy_only=False))
    assert np.isfinite(vectors).all()
    card = json.loads(Path(outputs["card"]).read_text())
    assert set(card["modalities"]) == {"audio", "lyrics", "album_art", "artist_bio"}
    assert card["modalities"]["audio"]["coverage_items"] == 1.0
    assert 0.8 < card["modalities"]["lyrics"]["coverage_items"] < 0.97  # the demo's ~90%, gaps filled
    art = card["modalities"]["album_art"]  # trained on a sample, every readable cover embedded
    assert art["trained_on"] == SMALL["embed.art_train_sample"] < art["albums"]
    assert 0.8 < art["coverage_items"] < 1.0  # the demo's missing and corrupt covers, filled
    lyrics = pq.read_table(outputs["lyrics"])
    assert 0 < sum(not p for p in lyrics["present"].to_pylist()) < lyrics.num_rows
    assert all((root / "embeddings" / "plots" / name).exists() for name in
               ("audio_vae_loss.png", "album_art_vae_loss.png", "album_art_reconstructions.png", "fused_genre_map.png"))


def test_content_neighbours_share_the_hidden_genre_far_above_chance(embedded):
    root, outputs = embedded
    genres = pacsv.read_csv(root / "demo-corpus" / "hidden" / "song_genres.csv")
    genre_of = dict(zip(genres["track_uri"].to_pylist(), genres["genre"].to_pylist()))
    fused = pq.read_table(outputs["fused"])
    uris = fused["track_uri"].to_pylist()
    x = np.stack(fused["vector"].to_numpy(zero_copy_only=False))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    labels = np.array([genre_of[u] for u in uris])
    similarity = x @ x.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argpartition(-similarity, 10, axis=1)[:, :10]
    purity = (labels[neighbours] == labels[:, None]).mean()
    chance = ((np.bincount(labels) / len(labels)) ** 2).sum()
    assert purity > 4 * chance, (purity, chance)


def test_a_vae_trained_on_a_ray_train_worker_matches_in_process_training(ray_local, tmp_path):
    import copy

    import torch

    from mmrec.embed.vae import AudioVAE, embed_with_vae

    data = np.random.default_rng(0).normal(size=(300, 13)).astype(np.float32)
    torch.manual_seed(0)
    on_ray = AudioVAE(13, latent_dim=4)
    in_process = copy.deepcopy(on_ray)
    settings = {"artifact_root": str(tmp_path)}
    ray_history, where = embed._fit_vae(load_config(overrides={**settings, "embed.vae_trainer": "ray_train"}),
                                        "audio", on_ray, data, 3, 64, 3e-3, 0.1)
    local_history, _ = embed._fit_vae(load_config(overrides={**settings, "embed.vae_trainer": "in_process"}),
                                      "audio", in_process, data, 3, 64, 3e-3, 0.1)
    assert where == "ray_train_cpu"
    assert [h["epoch"] for h in ray_history] == [0, 1, 2]
    assert ray_history[-1]["loss"] < ray_history[0]["loss"]
    np.testing.assert_allclose([h["loss"] for h in ray_history], [h["loss"] for h in local_history], rtol=1e-4)
    np.testing.assert_allclose(embed_with_vae(on_ray, data), embed_with_vae(in_process, data), atol=1e-4)
    assert list((tmp_path / "runs").glob("embed-audio-vae-*/checkpoint_*/model.safetensors"))
