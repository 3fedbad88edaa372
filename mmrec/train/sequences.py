"""Training examples for the cloze task, and left-padded batches, from playlist histories (numpy, no torch).

The model is evaluated on the most recent max_length - 1 songs of a history followed by [MASK]. Training shows it
the same windows: the most recent one of each playlist (and optionally earlier, non-overlapping ones), and in a
share of examples only the last position is masked, which is exactly the inference condition.
"""

from __future__ import annotations

import numpy as np

from mmrec.models.bert4rec import left_pad


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


def sliding_windows(histories: list[np.ndarray], max_length: int, stride: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Windows that together label every song of every history once as a next-song target, each with at least
    max_length - stride songs of context before it (or its whole past, near the start): windows of max_length
    ending at the newest song, then `stride` songs earlier, and so on back to the first song. Returns the windows
    and, per window, the position of its first labelled target (the earlier positions are context a more recent
    window does not have; their targets were labelled by the window before, with more context). RecBole-style
    training on every prefix, at one transformer pass per window instead of one per target."""
    if not 1 <= stride < max_length:
        raise ValueError(f"stride must be in [1, max_length - 1], got {stride} with max_length {max_length}")
    windows, label_from = [], []
    for history in histories:
        end = len(history)
        while end >= 2:
            start = max(0, end - max_length)
            windows.append(history[start:end])
            # Targets in the last `stride` positions are new (the next window back ends `stride` songs earlier);
            # the oldest window labels everything from its second song.
            label_from.append(1 if start == 0 else max(1, end - stride - start))
            if start == 0:
                break
            end -= stride
    return windows, np.array(label_from, dtype=np.int64)


def cloze_batch(windows: list[np.ndarray], max_length: int, mask_token: int, mask_probability: float,
                last_only_share: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(tokens, labels), both (B, T) int64, T = the longest window (at most max_length; positions are
    right-aligned, so trimming the shared left padding changes nothing but the cost). A share `last_only_share` of the windows has only its last
    song masked; the others each song with probability `mask_probability` (at least one per window).
    labels hold the masked song at masked positions and 0 elsewhere."""
    length = min(max_length, max(len(w) for w in windows))
    tokens = left_pad(windows, length)
    real = tokens > 0
    last_only = rng.random(len(windows)) < last_only_share
    masked = (rng.random(tokens.shape) < mask_probability) & real
    masked[last_only] = False
    masked[last_only, -1] = True
    # A window with nothing drawn gets one random song masked, so every example teaches something.
    empty = ~masked.any(axis=1)
    if empty.any():
        lengths = real[empty].sum(axis=1)
        chosen = length - 1 - (rng.random(len(lengths)) * lengths).astype(np.int64)
        masked[np.flatnonzero(empty), chosen] = True
    labels = np.where(masked, tokens, 0)
    tokens = np.where(masked, mask_token, tokens)
    return tokens, labels


def epoch_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, workers: int = 1,
                  chunk_batches: int = 50) -> list[list[np.ndarray]]:
    """This epoch's steps: for each step, one array of window indices per worker. Windows are shuffled, sorted by
    length within chunks of `chunk_batches` global batches (so a batch pads to similar lengths), cut into global
    batches of batch_size * workers, dealt round-robin to the workers, and the steps shuffled. Every worker gets
    the same number of steps (DDP waits on the slowest); a last batch too small to give each worker a window is
    dropped. Call with the same `rng` state on every worker."""
    order = rng.permutation(len(lengths))
    global_size = batch_size * workers
    chunk = global_size * chunk_batches
    steps = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        for batch_start in range(0, len(part), global_size):
            batch = part[batch_start:batch_start + global_size]
            if len(batch) >= workers:
                steps.append([batch[w::workers] for w in range(workers)])
    return [steps[i] for i in rng.permutation(len(steps))]


def next_song_batch(windows: list[np.ndarray], max_length: int,
                    label_from: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """SASRec's (tokens, labels), both (B, T): tokens are each window but its last song, labels the song that
    follows each position (0 under padding); left-padded, trimmed to the longest window. With `label_from` (B,)
    (from sliding_windows), window i's songs before position label_from[i] are context only, not targets."""
    length = min(max_length, max(len(w) for w in windows)) - 1
    targets = [w[1:] for w in windows]
    if label_from is not None:
        targets = [np.concatenate([np.zeros(f - 1, t.dtype), t[f - 1:]]) for t, f in zip(targets, label_from)]
    return left_pad([w[:-1] for w in windows], length), left_pad(targets, length)
