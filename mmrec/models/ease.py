"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a closed-form item-item model.

With X the (playlists x songs) 0/1 matrix of training histories, G = X^T X + lambda I, P = G^-1, the weights are
B = I - P diag(1 / diag(P)), with a zero diagonal; a playlist's scores are x B.

G is dense (songs x songs). The solve here holds one such matrix and nothing else of that size: G is built in
column blocks straight into a float32 array, inverted in place by Cholesky (LAPACK potrf + potri) and turned into
B in place, so a dense solve over n songs needs 4 n^2 bytes: 5,400 songs (the demo) 117 MB, 20,000 songs 1.6 GB,
MPD-Large's 70,229 songs 19.7 GB (a 32 GB machine), the whole MPD's 2.26M songs 20 TB (never). Where n songs do
not fit in memory (`max_dense_songs`, 0 = what fits in the memory available now), EASE is fitted on the most played
songs that fit and every other song is scored below them by popularity; `mode` says which ("dense" or
"top_songs") and the experiment report prints it.
"""

from __future__ import annotations

import math

import numpy as np
import torch

BYTES_PER_ENTRY = 4  # float32
MEMORY_SHARE = 0.6  # of the memory available, for the one songs x songs matrix (the rest: X, scoring, Python)


def dense_songs_that_fit(available_bytes: int | None = None) -> int:
    """The most songs whose dense solve fits in `available_bytes` (default: the memory available now)."""
    if available_bytes is None:
        import psutil

        available_bytes = psutil.virtual_memory().available
    return max(10, int(math.sqrt(MEMORY_SHARE * available_bytes / BYTES_PER_ENTRY)))


def dense_solve_bytes(songs: int) -> int:
    """What a dense solve over `songs` songs holds at its peak: one songs x songs float32 matrix."""
    return BYTES_PER_ENTRY * songs * songs


class EASE:
    def __init__(self, histories: list[np.ndarray], num_items: int, train_counts: np.ndarray, l2: float = 100.0,
                 max_dense_songs: int = 0):
        self.num_items, self.l2 = num_items, l2
        limit = max_dense_songs or dense_songs_that_fit()
        kept = np.argsort(-train_counts, kind="stable")[:limit] + 1  # item ids, most played first
        self.mode = "dense" if num_items <= limit else "top_songs"
        self.column_of = np.full(num_items + 1, -1, np.int64)  # item id -> column of B, or -1
        self.column_of[kept] = np.arange(len(kept))
        self.items = torch.from_numpy(kept)
        self.weights = torch.from_numpy(ease_weights(playlist_matrix(histories, self.column_of, len(kept)), l2))
        self.fallback = _fallback(train_counts)

    @classmethod
    def restore(cls, items: torch.Tensor, weights: torch.Tensor, num_items: int, train_counts: np.ndarray,
                l2: float, mode: str) -> "EASE":
        """A fitted EASE from its saved parts: the fitted songs' item ids (K,) and weights B (K, K)."""
        if weights.shape != (len(items), len(items)) or len(items) and int(items.max()) > num_items:
            raise ValueError(f"EASE weights {tuple(weights.shape)} do not fit {len(items)} songs of {num_items}")
        ease = cls.__new__(cls)
        ease.num_items, ease.l2, ease.mode = num_items, l2, mode
        ease.items, ease.weights = items.to(torch.int64), weights.to(torch.float32)
        ease.column_of = np.full(num_items + 1, -1, np.int64)
        ease.column_of[ease.items.numpy()] = np.arange(len(items))
        ease.fallback = _fallback(train_counts)
        return ease

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, T) left-padded item ids -> (B, N + 1) scores."""
        columns = torch.from_numpy(self.column_of)[histories]  # (B, T), -1 for padding and unfitted songs
        x = torch.zeros(len(histories), len(self.items) + 1)
        x.scatter_(1, torch.where(columns >= 0, columns, len(self.items)), 1.0)
        fitted = x[:, :-1] @ self.weights  # (B, K)
        scores = self.fallback[None, :].repeat(len(histories), 1)
        scores[:, self.items] = fitted
        return scores


def _fallback(train_counts: np.ndarray) -> torch.Tensor:
    """Scores (N + 1,) of songs outside the fitted set: below all fitted ones, by popularity (column 0: -inf)."""
    fallback = np.concatenate([[-np.inf], train_counts.astype(np.float64)])
    return torch.from_numpy((fallback / (fallback[1:].max() + 1.0) - 1e6).astype(np.float32))


def playlist_matrix(histories: list[np.ndarray], column_of: np.ndarray, songs: int):
    """X, the sparse (playlists x songs) 0/1 matrix over the fitted songs' columns (float32 CSC)."""
    from scipy import sparse

    rows, cols = [], []
    for row, history in enumerate(histories):
        columns = column_of[np.unique(history)]
        columns = columns[columns >= 0]
        rows.append(np.full(len(columns), row))
        cols.append(columns)
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    return sparse.csc_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(histories), songs))


def ease_weights(x, l2: float, block: int = 2048) -> np.ndarray:
    """B (K, K) float32 from X (playlists x K, sparse), with one K x K matrix in memory: G = X^T X + l2 I is built
    in column blocks, inverted in place and scaled in place."""
    songs = x.shape[1]
    matrix = np.empty((songs, songs), np.float32)
    xt = x.T.tocsr()
    for start in range(0, songs, block):
        matrix[:, start:start + block] = (xt @ x[:, start:start + block]).toarray()
    matrix[np.diag_indices(songs)] += l2
    precision = _invert_in_place(matrix)  # P
    diagonal = np.diag(precision).copy()
    precision /= -diagonal[None, :]  # B = -P / diag(P), column by column
    precision[np.diag_indices(songs)] = 0.0
    return precision


def _invert_in_place(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a symmetric positive definite C-ordered matrix, written over it (LAPACK potrf + potri)."""
    from scipy.linalg import lapack

    fortran = matrix.T  # the same memory, Fortran-ordered (the matrix is symmetric), so LAPACK works in place
    potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (fortran,))
    factor, info = potrf(fortran, lower=True, overwrite_a=True, clean=False)
    if info:
        raise np.linalg.LinAlgError(f"EASE: the Gram matrix is not positive definite (potrf info {info}); raise l2")
    inverse, info = potri(factor, lower=True, overwrite_c=True)
    if info:
        raise np.linalg.LinAlgError(f"EASE: the Gram matrix is singular (potri info {info}); raise l2")
    assert np.shares_memory(inverse, matrix), "LAPACK copied the matrix: the in-place solve needs float32 C order"
    _mirror_upper_triangle(matrix)  # potri wrote the Fortran lower triangle = the C upper triangle
    return matrix


def _mirror_upper_triangle(matrix: np.ndarray, block: int = 2048) -> None:
    """Copy the upper triangle onto the lower one, a block of rows at a time (no full-size temporary)."""
    songs = len(matrix)
    for start in range(0, songs, block):
        end = min(start + block, songs)
        square = matrix[start:end, start:end]
        square[...] = np.triu(square) + np.triu(square, 1).T
        matrix[end:, start:end] = matrix[start:end, end:].T
