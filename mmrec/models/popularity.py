"""MostPop: every playlist gets the songs played most often in the training histories."""

from __future__ import annotations

import numpy as np
import torch


class MostPopular:
    """score(histories (B, T)) -> (B, N + 1): each song's training plays (column 0, padding, is -inf)."""

    def __init__(self, train_counts: np.ndarray):  # (N,) plays of items 1..N
        self.scores = torch.from_numpy(np.concatenate([[-np.inf], train_counts.astype(np.float32)]))

    def score(self, histories: torch.Tensor) -> torch.Tensor:
        return self.scores.to(histories.device)[None, :].expand(len(histories), -1).clone()
