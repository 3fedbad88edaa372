"""embed's pure core beyond the encoders: one song order for every modality, filled, reduced, fused; its figures."""

import numpy as np
import pytest

from mmrec import artifacts
from mmrec.embed.fuse import fuse_songs
from mmrec.embed.plots import genre_map, loss_plot

PNG = b"\x89PNG\r\n\x1a\n"


def test_songs_are_aligned_filled_reduced_and_fused():
    rng = np.random.default_rng(0)
    items = ["spotify:track:a", "spotify:track:b", "spotify:track:c", "spotify:track:d"]
    audio = (["spotify:track:b", "spotify:track:a", "spotify:track:d"], rng.normal(size=(3, 5)).astype(np.float32))
    lyrics = (["spotify:track:a", "spotify:track:cold"], rng.normal(size=(2, 3)).astype(np.float32))
    songs = fuse_songs(items, [1, 2, 3, 4], {"audio": audio, "lyrics": lyrics}, fill="mean", dim=2)
    # the catalogue in its order, then the song only a source knows (a cold song)
    assert songs.uris == items + ["spotify:track:cold"] and songs.item_idx == [1, 2, 3, 4, None]
    assert songs.present["audio"].tolist() == [True, True, False, True, False]
    assert songs.present["lyrics"].tolist() == [True, False, False, False, True]
    assert songs.any_present.tolist() == [True, True, False, True, True]
    assert songs.reduced["audio"].shape == (5, 2) and songs.reduced["lyrics"].shape == (5, 2)
    # songs without a modality all get the same (mean) vector before reduction, so the same reduced one
    assert np.allclose(songs.reduced["audio"][2], songs.reduced["audio"][4])
    assert songs.fused.shape == (5, 4) and np.isfinite(songs.fused).all()
    assert songs.modality_notes["audio"]["coverage_items"] == 0.75
    assert songs.modality_notes["lyrics"]["coverage_all_songs"] == 0.4
    assert songs.fused_variance == 1.0
    smaller = fuse_songs(items, [1, 2, 3, 4], {"audio": audio, "lyrics": lyrics}, fill="regressor", dim=2, fused_dim=3)
    assert smaller.fused.shape == (5, 3) and 0 < smaller.fused_variance <= 1.0


def test_figures_are_written_as_png(tmp_path):
    out = artifacts.resolve(str(tmp_path))
    history = [{"epoch": e, "loss": 3.0 - e, "reconstruction": 2.0 - e / 2, "kl": 1.0} for e in range(3)]
    uri = loss_plot(history, out.join("plots", "loss.png"), "audio VAE")
    assert (tmp_path / "plots" / "loss.png").read_bytes().startswith(PNG) and uri.endswith("loss.png")
    fused = np.random.default_rng(1).normal(size=(6, 4)).astype(np.float32)
    uris = [f"u{i}" for i in range(6)]
    assert genre_map(uris, fused, {"u0": 0, "u1": 1}, out.join("map.png")) is None  # too few songs with a genre
    genre_map(uris, fused, {u: i % 2 for i, u in enumerate(uris)}, out.join("map.png"))
    assert (tmp_path / "map.png").read_bytes().startswith(PNG)


@pytest.mark.parametrize("fill", ["mean", "regressor"])
def test_a_modality_that_covers_every_song_is_not_filled(fill):
    vectors = np.arange(12, dtype=np.float32).reshape(4, 3)
    songs = fuse_songs(["a", "b", "c", "d"], [1, 2, 3, 4], {"audio": (["a", "b", "c", "d"], vectors)}, fill=fill, dim=3)
    assert songs.present["audio"].all() and songs.modality_notes["audio"]["coverage_items"] == 1.0
