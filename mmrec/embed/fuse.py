"""Missing modalities, reduction to a common size, and fusion into one content vector per song.

Pure numpy and scikit-learn. Every modality is a (n_songs, d) matrix aligned on the same song order, with a
`present` mask; nothing here reads files or knows about Ray.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge


def fill_missing_mean(vectors: np.ndarray, present: np.ndarray) -> np.ndarray:
    """The paper's rule: a missing song gets the mean vector of the songs that have the modality."""
    filled = vectors.astype(np.float32, copy=True)
    mean = vectors[present].mean(axis=0) if present.any() else np.zeros(vectors.shape[1], np.float32)
    filled[~present] = mean
    return filled


def fill_missing_regression(target: np.ndarray, present: np.ndarray, others: list[tuple[np.ndarray, np.ndarray]],
                            alpha: float = 1.0) -> np.ndarray:
    """A missing song's vector predicted (ridge regression) from the other modalities it has; the mean where
    it has none of them either. `others` are (vectors, present) pairs of the other modalities."""
    filled = fill_missing_mean(target, present)
    if not others or present.all():
        return filled
    features = np.column_stack([fill_missing_mean(v, p) for v, p in others] + [np.column_stack([p for _, p in others])])
    informative = np.column_stack([p for _, p in others]).any(axis=1)
    train = present & informative
    if train.sum() < 2:
        return filled
    model = Ridge(alpha=alpha).fit(features[train], target[train])
    predict = ~present & informative
    if predict.any():
        filled[predict] = model.predict(features[predict]).reshape(int(predict.sum()), -1).astype(np.float32)
    return filled


def reduce_dimension(vectors: np.ndarray, dim: int, seed: int = 0) -> tuple[np.ndarray, float]:
    """PCA to `dim` components (or fewer when the data has fewer): (reduced float32, share of variance kept)."""
    dim = min(dim, vectors.shape[1], max(len(vectors) - 1, 1))
    pca = PCA(n_components=dim, random_state=seed).fit(vectors)
    return pca.transform(vectors).astype(np.float32), float(pca.explained_variance_ratio_.sum())


def standardise(vectors: np.ndarray) -> np.ndarray:
    """Zero mean, unit average norm: modalities of different scales weigh alike when concatenated."""
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    scale = np.sqrt((centred ** 2).sum(axis=1).mean()) or 1.0
    return (centred / scale).astype(np.float32)
