"""Training examples for the cloze task, and left-padded batches, from playlist histories (numpy, no torch).

The model is evaluated on the most recent max_length - 1 songs of a history followed by [MASK]. Training shows it
the same windows: the most recent one of each playlist (and optionally earlier, non-overlapping ones), and in a
share of examples only the last position is masked, which is exactly the inference condition.
"""

from __future__ import annotations

import numpy as np


def training_windows(histories: list[np.ndarray], max_length: int, windows_per_playlist: int = 1) -> list[np.ndarray]:
    """Windows of at most max_length songs, newest first: the last max_length songs of each history, then the
    max_length before them, ... up to windows_per_playlist each; windows of fewer than 2 songs are skipped."""
    windows = []
    for history in histories:
        end = len(history)
        for _ in range(windows_per_playlist):
            window = history[max(0, end - max_length):end]
            if len(window) < 2:
                break
            windows.append(window)
            end -= max_length
            if end <= 0:
                break
    return windows


def left_pad(sequences: list[np.ndarray], length: int, padding: int = 0) -> np.ndarray:
    """(B, length) int64: each sequence's last `length` entries, right-aligned, padding on the left."""
    out = np.full((len(sequences), length), padding, dtype=np.int64)
    for row, sequence in enumerate(sequences):
        tail = sequence[-length:] if length else sequence[:0]
        if len(tail):
            out[row, length - len(tail):] = tail
    return out


def cloze_batch(windows: list[np.ndarray], max_length: int, mask_token: int, mask_probability: float,
                last_only_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, labels), both (B, max_length) int64. A share `last_only_share` of the windows has only its last
    song masked; the others each song with probability `mask_probability` (at least one per window).
    labels hold the masked song at masked positions and 0 elsewhere."""
    tokens = left_pad(windows, max_length)
    real = tokens > 0
    last_only = rng.random(len(windows)) < last_only_share
    masked = (rng.random(tokens.shape) < mask_probability) & real
    masked[last_only] = False
    masked[last_only, -1] = True
    # A window with nothing drawn gets one random song masked, so every example teaches something.
    empty = ~masked.any(axis=1)
    if empty.any():
        lengths = real[empty].sum(axis=1)
        chosen = max_length - 1 - (rng.random(len(lengths)) * lengths).astype(np.int64)
        masked[np.flatnonzero(empty), chosen] = True
    labels = np.where(masked, tokens, 0)
    tokens = np.where(masked, mask_token, tokens)
    return tokens, labels
