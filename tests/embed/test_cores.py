"""The embed stage's pure cores on tiny inputs: lyrics cleaning, the ELBO, scaling, covers, fill and PCA."""

import io

import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from mmrec.artifacts import ArtifactError
from mmrec.config import ConfigError, load_config
from mmrec.embed.audio import SCALED_DIM, AudioScaler, audio_keys, check_audio
from mmrec.embed.fuse import fill_missing_mean, fill_missing_regression, reduce_dimension
from mmrec.embed.images import decode_cover
from mmrec.embed.text import average_word_vectors, clean_lyrics, drop_common_tokens, read_word_vectors
from mmrec.embed.vae import AlbumArtVAE, AudioVAE, elbo_loss, embed_with_vae, kl_to_standard_normal, train_vae

GENIUS = (
    "12 ContributorsMidnight Drive Lyrics\n[Verse 1]\nWe were singin' through the Neon\n"
    "You might also like\n[Chorus: Both]\nHighway lovin', chrome and you\nNeon tonight123Embed"
)


def test_lyrics_cleaning_removes_genius_artefacts_and_repairs_dropped_gs():
    tokens = clean_lyrics(GENIUS)
    assert tokens == ["singing", "neon", "highway", "loving", "chrome", "neon", "tonight"]
    assert "lyrics" not in tokens and "embed" not in tokens and "chorus" not in tokens and "like" not in tokens


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Title Lyrics\nrunnin' and jumpin'", ["running", "jumping"]),
        ("no title line here\nthe river", ["title", "line", "river"]),
        ("Song Lyrics\nocean waves42Embed", ["ocean", "waves"]),
        ("Song Lyrics\nocean Embed", ["ocean"]),
        ("", []),
    ],
)
def test_lyrics_cleaning_cases(text, expected):
    assert clean_lyrics(text) == expected


def test_low_idf_tokens_are_dropped():
    docs = [["love", "river"], ["love", "fire"], ["love", "river", "stone"]]
    assert drop_common_tokens(docs, max_document_share=0.5) == [[], ["fire"], ["stone"]]


def test_word_vectors_read_and_average():
    vectors = read_word_vectors(["2 3", "river 1 0 0", "fire 0 1 0"])
    averaged, present = average_word_vectors([["river", "fire"], ["unknown"]], vectors, 3)
    assert np.allclose(averaged[0], [0.5, 0.5, 0]) and present.tolist() == [True, False]
    with pytest.raises(ArtifactError, match=r"glove.txt: line 3: 2 numbers, expected 3"):
        read_word_vectors(["river 1 0 0", "fire 0 1 0", "stone 1 1"], "glove.txt")
    with pytest.raises(ConfigError, match="embed.word_vectors: a GloVe/word2vec file is needed"):
        load_config(overrides={"embed.lyrics_encoder": "word_vectors"})


def test_kl_matches_the_closed_form_and_torch():
    mu = torch.tensor([[0.0, 0.0], [1.0, -1.0]])
    logvar = torch.tensor([[0.0, 0.0], [np.log(2.0), 0.0]])
    # per example: 0; and 0.5 * [(2 + 1 - 1 - log 2) + (0 + 1 - 1 - 0)] ... computed by torch.distributions
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1).mean()
    assert kl_to_standard_normal(mu, logvar).item() == pytest.approx(expected.item(), abs=1e-6)
    assert kl_to_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_elbo_is_reconstruction_plus_beta_kl():
    x, reconstruction = torch.ones(2, 3), torch.zeros(2, 3)
    mu, logvar = torch.ones(2, 2), torch.zeros(2, 2)
    loss, reconstruction_term, kl = elbo_loss(x, reconstruction, mu, logvar, beta=0.5)
    assert reconstruction_term.item() == pytest.approx(3.0) and kl.item() == pytest.approx(1.0)
    assert loss.item() == pytest.approx(3.0 + 0.5 * 1.0)


def test_audio_vae_learns_and_exports_deterministic_means():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(4, SCALED_DIM))
    data = (centres[rng.integers(0, 4, 600)] + 0.1 * rng.normal(size=(600, SCALED_DIM))).astype(np.float32)
    model = AudioVAE(SCALED_DIM, latent_dim=4)
    history = train_vae(model, data, epochs=15, batch_size=64, learning_rate=3e-3, beta=1.0, seed=0)
    assert history[-1]["loss"] < 0.6 * history[0]["loss"] and history[-1]["kl"] > 0
    first, second = embed_with_vae(model, data), embed_with_vae(model, data)
    assert first.shape == (600, 4) and np.array_equal(first, second)
    assert not model.training


def test_album_vae_shapes_and_eval_mode_export():
    model = AlbumArtVAE(latent_dim=8, width=4)
    images = np.random.default_rng(0).random((3, 3, 128, 128), dtype=np.float32)
    reconstruction, mu, logvar = model(torch.from_numpy(images))
    assert reconstruction.shape == (3, 3, 128, 128) and mu.shape == (3, 8)
    assert 0 <= reconstruction.min().item() and reconstruction.max().item() <= 1
    one = embed_with_vae(model, images[:1])
    all_three = embed_with_vae(model, images)
    assert np.allclose(one[0], all_three[0], atol=1e-5)  # eval mode: BatchNorm uses running stats, not the batch


def test_audio_ranges_are_checked_and_counted():
    good = {f: [0.5] for f in ("danceability", "energy", "speechiness", "acousticness", "instrumentalness",
                                "liveness", "valence")}
    rows = {**{f: v * 3 for f, v in good.items()}, "key": [5, -1, 2.5], "mode": [1, 0, 1],
            "loudness": [-5.0, float("nan"), -7.0], "tempo": [120.0, 90.0, 400.0], "id": ["a", "b", "c"]}
    table = pa.table(rows)
    values, valid, problems = check_audio(table, "audio.csv")
    assert valid.tolist() == [True, False, False]
    assert problems == {"audio_bad_loudness": 1, "audio_bad_tempo": 1, "audio_bad_key": 1}
    assert audio_keys(table, "audio.csv") == ["spotify:track:a", "spotify:track:b", "spotify:track:c"]
    with pytest.raises(ArtifactError, match="audio.csv: missing audio feature column"):
        check_audio(pa.table({"id": ["a"]}), "audio.csv")


def test_audio_scaling_is_cyclic_for_key_and_standard_for_loudness_and_tempo():
    features = np.zeros((3, 11))
    features[:, 2] = [0, 11, -1]  # key
    features[:, 3] = [-10.0, -5.0, 0.0]  # loudness
    features[:, 10] = [100.0, 120.0, 140.0]  # tempo
    scaled = AudioScaler.fit(features).transform(features)
    key_sin, key_cos = scaled[:, 7], scaled[:, 8]
    assert np.hypot(key_sin[0] - key_sin[1], key_cos[0] - key_cos[1]) < 0.6  # C and B are neighbours
    assert key_sin[2] == 0 and key_cos[2] == 0  # no key
    assert scaled[:, 10].mean() == pytest.approx(0, abs=1e-6) and scaled[:, 10].std() == pytest.approx(1, abs=1e-5)


def encoded(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("mode, fmt", [("RGB", "JPEG"), ("L", "PNG"), ("CMYK", "JPEG"), ("RGBA", "PNG"), ("P", "PNG")])
def test_covers_of_any_mode_decode_to_rgb_squares(mode, fmt):
    image = Image.new(mode, (300, 200), color=(200, 30, 30, 255)[: len(mode)] if mode not in ("L", "P") else 128)
    array, reason = decode_cover(encoded(image, fmt))
    assert reason == "ok" and array.shape == (128, 128, 3) and array.dtype == np.float32
    assert 0 <= array.min() and array.max() <= 1


def test_unreadable_covers_are_missing_not_errors():
    data = encoded(Image.new("RGB", (64, 64)), "JPEG")
    assert decode_cover(b"") == (None, "empty")
    assert decode_cover(data[: len(data) // 3])[0] is None
    assert decode_cover(b"not an image") == (None, "corrupt")


def test_mean_fill_and_regression_fill():
    rng = np.random.default_rng(0)
    other = rng.normal(size=(200, 3)).astype(np.float32)
    target = (other @ np.array([[1.0], [2.0], [-1.0]])).astype(np.float32)
    present = rng.random(200) < 0.7
    mean_filled = fill_missing_mean(target, present)
    assert np.allclose(mean_filled[~present], target[present].mean(axis=0))
    regressed = fill_missing_regression(target, present, [(other, np.ones(200, bool))], alpha=1e-3)
    assert np.abs(regressed[~present] - target[~present]).max() < 0.05
    assert np.array_equal(regressed[present], target[present])


def test_pca_shapes_and_variance():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(100, 20)) @ np.diag(np.r_[np.full(3, 10.0), np.full(17, 0.1)])
    reduced, kept = reduce_dimension(data, 3)
    assert reduced.shape == (100, 3) and reduced.dtype == np.float32 and 0.98 < kept <= 1.0
    assert reduce_dimension(data, 50)[0].shape == (100, 20)  # never more components than features


def test_an_unreadable_source_is_an_error_naming_the_file(tmp_path):
    from mmrec import artifacts
    from mmrec.embed.run import _read_records

    (tmp_path / "audio.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(artifacts.ArtifactError, match=r"audio\.parquet: unreadable"):
        _read_records(artifacts.resolve(str(tmp_path / "audio.parquet")))
    (tmp_path / "lyrics.jsonl").write_text('{"track_uri": "a", "lyrics": "x"}\n{broken\n')
    with pytest.raises(artifacts.ArtifactError, match=r"lyrics\.jsonl: unreadable"):
        _read_records(artifacts.resolve(str(tmp_path / "lyrics.jsonl")))
    with pytest.raises(artifacts.ArtifactError, match=r"missing\.csv: not found"):
        _read_records(artifacts.resolve(str(tmp_path / "missing.csv")))
    (tmp_path / "bios.jsonl").write_text('{"artist_uri": "a"}\n')
    with pytest.raises(artifacts.ArtifactError, match=r"bios\.jsonl: missing column\(s\) bio"):
        _read_records(artifacts.resolve(str(tmp_path / "bios.jsonl")), required=("artist_uri", "bio"))
