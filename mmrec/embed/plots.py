"""embed's figures: the VAEs' ELBO terms, album-art reconstructions, and the fused vectors' map by genre."""

from __future__ import annotations

import numpy as np

from mmrec import figures
from mmrec.artifacts import Location
from mmrec.embed.fuse import reduce_dimension


def loss_plot(history: list[dict], loc: Location, title: str) -> str:
    """A VAE's loss, reconstruction and KL terms per epoch."""
    figure, axis = figures.subplots(figsize=(5, 3.2))
    epochs = [h["epoch"] + 1 for h in history]
    for key in ("loss", "reconstruction", "kl"):
        axis.plot(epochs, [h[key] for h in history], marker="o", label=key)
    axis.set(xlabel="epoch", ylabel="per example", title=f"{title}: ELBO terms")
    axis.legend()
    return figures.save(figure, loc)


def reconstruction_grid(model, images: np.ndarray, loc: Location) -> str:
    """Covers (B, 3, H, W) in [0, 1] above the album-art VAE's reconstructions of them."""
    import torch

    with torch.no_grad():
        model.eval()
        reconstructions = model.decode(model.encode(torch.from_numpy(images))[0]).numpy()
    figure, axes = figures.subplots(2, len(images), figsize=(1.6 * len(images), 3.4), squeeze=False)
    for j in range(len(images)):
        for row, source_images in enumerate((images, reconstructions)):
            axes[row, j].imshow(source_images[j].transpose(1, 2, 0))
            axes[row, j].axis("off")
    axes[0, 0].set_title("original", fontsize=8, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=8, loc="left")
    return figures.save(figure, loc)


def genre_map(uris: list[str], fused: np.ndarray, genre_of: dict[str, int], loc: Location) -> str | None:
    """A 2-D PCA map of the fused vectors of the songs with a known genre, coloured by it; None with < 3 such."""
    rows = np.array([i for i, u in enumerate(uris) if u in genre_of])
    if len(rows) < 3:
        return None
    points, _ = reduce_dimension(fused[rows], 2)
    colours = np.array([genre_of[uris[i]] for i in rows])
    figure, axis = figures.subplots(figsize=(6, 5))
    axis.scatter(points[:, 0], points[:, 1], c=colours, cmap="tab20", s=3, alpha=0.6)
    axis.set(title="fused content vectors (PCA), coloured by hidden genre", xticks=[], yticks=[])
    return figures.save(figure, loc)
