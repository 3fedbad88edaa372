"""EASE (Steck, "Embarrassingly Shallow Autoencoders for Sparse Data", WWW 2019): a closed-form item-item model.

With X the (playlists x songs) 0/1 matrix of training histories, G = X^T X + lambda I, P = G^-1, the weights are
B = I - P diag(1 / diag(P)), with a zero diagonal; a playlist's scores are x B.

G is dense (songs x songs): 70k songs need 20 GB in float32, which is where the paper's attempt fell over. When
the catalogue has more songs than `max_dense_songs`, EASE is fitted on the most played `max_dense_songs` songs
and every other song is scored below them by popularity. `mode` says which was used ("dense" or "top_songs"),
and the experiment report prints it.
"""

from __future__ import annotations

import numpy as np
import torch


class EASE:
    def __init__(self, histories: list[np.ndarray], num_items: int, train_counts: np.ndarray, l2: float = 100.0,
                 max_dense_songs: int = 20000):
        self.num_items = num_items
        kept = np.argsort(-train_counts, kind="stable")[:max_dense_songs] + 1  # item ids, most played first
        self.mode = "dense" if num_items <= max_dense_songs else "top_songs"
        self.column_of = np.full(num_items + 1, -1, np.int64)  # item id -> column of B, or -1
        self.column_of[kept] = np.arange(len(kept))
        self.items = torch.from_numpy(kept)
        gram = self._gram(histories, len(kept))
        gram[np.diag_indices_from(gram)] += l2
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)[None, :]
        weights[np.diag_indices_from(weights)] = 0.0
        self.weights = torch.from_numpy(weights.astype(np.float32))  # (K, K)
        # Songs outside the fitted set rank below all fitted ones, by popularity.
        fallback = np.concatenate([[-np.inf], train_counts.astype(np.float64)])
        self.fallback = torch.from_numpy((fallback / (fallback[1:].max() + 1.0) - 1e6).astype(np.float32))

    def _gram(self, histories: list[np.ndarray], songs: int) -> np.ndarray:
        from scipy import sparse

        rows, cols = [], []
        for row, history in enumerate(histories):
            columns = self.column_of[np.unique(history)]
            columns = columns[columns >= 0]
            rows.append(np.full(len(columns), row))
            cols.append(columns)
        x = sparse.csr_matrix((np.ones(sum(len(c) for c in cols), np.float64),
                               (np.concatenate(rows), np.concatenate(cols))), shape=(len(histories), songs))
        return (x.T @ x).toarray()

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        """(B, T) left-padded item ids -> (B, N + 1) scores."""
        columns = torch.from_numpy(self.column_of)[histories]  # (B, T), -1 for padding and unfitted songs
        x = torch.zeros(len(histories), len(self.items) + 1)
        x.scatter_(1, torch.where(columns >= 0, columns, len(self.items)), 1.0)
        fitted = x[:, :-1] @ self.weights  # (B, K)
        scores = self.fallback[None, :].repeat(len(histories), 1)
        scores[:, self.items] = fitted
        return scores
