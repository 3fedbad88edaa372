"""Missing modalities, reduction to a common size, and fusion into one content vector per song.

Pure numpy and scikit-learn. Every modality is a (n_songs, d) matrix aligned on the same song order, with a
`present` mask; nothing here reads files or knows about Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class FusedSongs:
    """Every song embed knows (catalogue first, then songs only a source describes, i.e. cold songs), aligned."""

    uris: list[str]
    item_idx: list[int | None]  # the catalogue id, None for a cold song
    reduced: dict[str, np.ndarray]  # modality -> (S, <= dim) filled and reduced
    present: dict[str, np.ndarray]  # modality -> (S,) bool: the source had the song
    fused: np.ndarray  # (S, F) the standardised modalities concatenated (reduced again with fused_dim)
    modality_notes: dict[str, dict]  # modality -> dim, variance kept, coverage (the card's entries)
    fused_variance: float  # share of the concatenation's variance fused_dim kept (1.0 without it)

    @property
    def any_present(self) -> np.ndarray:
        return np.column_stack(list(self.present.values())).any(axis=1)


def fuse_songs(item_uris: list[str], item_idx: list[int], tables: dict[str, tuple[list[str], np.ndarray]],
               fill: str, dim: int, fused_dim: int = 0, seed: int = 0) -> FusedSongs:
    """Align each modality's (track URIs, vectors) on one song order, fill the songs a modality misses (mean, or
    a regression from the modalities they have), reduce each to `dim` by PCA, standardise and concatenate."""
    uris = list(dict.fromkeys(list(item_uris) + [u for keys, _ in tables.values() for u in keys]))
    position = {u: i for i, u in enumerate(uris)}
    item_of = dict(zip(item_uris, item_idx))
    raw, present = {}, {}
    for name, (keys, vectors) in tables.items():
        matrix = np.zeros((len(uris), vectors.shape[1]), np.float32)
        mask = np.zeros(len(uris), bool)
        rows = np.array([position[k] for k in keys], dtype=np.int64)
        matrix[rows], mask[rows] = vectors, True
        raw[name], present[name] = matrix, mask
    in_items = np.array([u in item_of for u in uris])
    reduced, notes = {}, {}
    for name in tables:
        others = [(raw[o], present[o]) for o in tables if o != name]
        filled = (fill_missing_regression(raw[name], present[name], others) if fill == "regressor"
                  else fill_missing_mean(raw[name], present[name]))
        reduced[name], kept = reduce_dimension(filled, dim, seed)
        notes[name] = {"dim": int(reduced[name].shape[1]), "variance_kept": round(kept, 4),
                       "coverage_items": round(float(present[name][in_items].mean()), 4),
                       "coverage_all_songs": round(float(present[name].mean()), 4)}
    fused = np.concatenate([standardise(reduced[name]) for name in tables], axis=1)
    fused_variance = 1.0
    if fused_dim:
        fused, fused_variance = reduce_dimension(fused, fused_dim, seed)
    return FusedSongs(uris, [item_of.get(u) for u in uris], reduced, present, fused, notes, fused_variance)
