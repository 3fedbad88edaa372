"""Content-only kNN: songs ranked by how close their content is to the playlist's songs, with no training.

A song's content vector is the concatenation of its modality vectors (each standardised, as training reads them),
L2-normalised; a playlist's score for song s is the sum of cosine similarities between s and the history's songs
(equivalently, s against the sum of the history's unit vectors). It is the row that shows what content alone
knows: on real playlists it loses to co-occurrence on popular songs and wins on the long tail and on songs nobody
has played.
"""

from __future__ import annotations

import numpy as np
import torch


class ContentKNN:
    """score(histories (B, T)) -> (B, N + 1) cosine sums; column 0 (padding) is -inf."""

    def __init__(self, contents: list[np.ndarray]):  # each (N + 1, D_m), row 0 = padding
        table = np.concatenate(contents, axis=1).astype(np.float32)
        norms = np.linalg.norm(table, axis=1, keepdims=True)
        table = np.divide(table, norms, out=np.zeros_like(table), where=norms > 0)
        table[0] = 0.0  # padding adds nothing to a profile
        self.table = torch.from_numpy(table)  # (N + 1, D)

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        profile = self.table[histories].sum(dim=1)  # (B, D): padding rows are zero
        scores = profile @ self.table.T  # (B, N + 1)
        scores[:, 0] = float("-inf")
        return scores
