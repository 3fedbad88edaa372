"""Training windows and cloze batches."""

import numpy as np
import pytest

from mmrec.models.bert4rec import left_pad
from mmrec.train.sequences import cloze_batch, epoch_batches, training_windows


def test_windows_are_the_most_recent_first_and_do_not_overlap():
    history = np.arange(1, 121)
    windows = training_windows([history], max_length=50, windows_per_playlist=3)
    assert [(w[0], w[-1]) for w in windows] == [(71, 120), (21, 70), (1, 20)]
    assert [len(w) for w in training_windows([history], 50, 1)] == [50]
    assert training_windows([np.array([7])], 50, 2) == []  # nothing to predict from one song


def test_left_pad_keeps_the_latest_songs_right_aligned():
    padded = left_pad([np.array([1, 2, 3]), np.array([4, 5, 6, 7, 8])], 4)
    assert padded.tolist() == [[0, 1, 2, 3], [5, 6, 7, 8]]


def test_cloze_batches_mask_real_songs_only_and_label_them():
    rng = np.random.default_rng(0)
    windows = [np.arange(1, rng.integers(2, 40)) for _ in range(200)]
    mask_token = 99
    tokens, labels = cloze_batch(windows, 50, mask_token, 0.2, 0.25, rng)
    assert tokens.shape == (200, max(len(w) for w in windows))  # trimmed to the longest window
    original = left_pad(windows, tokens.shape[1])
    masked = tokens == mask_token
    assert (masked == (labels > 0)).all()
    assert (labels[masked] == original[masked]).all()
    assert (tokens[~masked] == original[~masked]).all()
    assert not (masked & (original == 0)).any()  # padding is never masked
    assert masked.any(axis=1).all()  # every example teaches something
    last_only = masked[:, -1] & (masked.sum(axis=1) == 1)
    assert 0.15 < last_only.mean() < 0.45  # the 25% inference-like examples (plus chance)
    share = masked[original > 0].mean()
    assert 0.15 < share < 0.35


def test_epoch_batches_give_every_worker_the_same_steps_of_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 51, size=1003)
    steps = epoch_batches(lengths, batch_size=16, rng=np.random.default_rng(1), workers=2, chunk_batches=10)
    assert all(len(step) == 2 and len(step[0]) >= 1 and len(step[1]) >= 1 for step in steps)
    used = np.concatenate([np.concatenate(step) for step in steps])
    assert len(used) == len(set(used.tolist())) and len(used) >= 1003 - 1  # every window once (a last one may go)
    spread = np.mean([np.ptp(lengths[np.concatenate(step)]) for step in steps])
    assert spread < 10  # sorted within chunks: far below the ~48 of random batches
    again = epoch_batches(lengths, 16, np.random.default_rng(1), 2, 10)
    assert all((a[0] == b[0]).all() for a, b in zip(steps, again))  # the same on every worker


def test_sliding_windows_label_every_target_once_with_enough_context():
    from mmrec.train.sequences import next_song_batch, sliding_windows

    rng = np.random.default_rng(0)
    histories = [rng.permutation(np.arange(1, n + 1)) for n in (1, 2, 5, 7, 12, 31)]
    windows, label_from = sliding_windows(histories, max_length=6, stride=2)
    tokens, labels = next_song_batch(windows, 6, label_from)
    # Every song but each history's first is a target exactly once (songs are unique within a history here).
    expected = sorted(int(song) for h in histories for song in h[1:])
    assert sorted(labels[labels > 0].tolist()) == expected
    # Each labelled target follows at least max_length - stride songs, or all of its history.
    for row in range(len(windows)):
        for position in np.flatnonzero(labels[row]):
            context = tokens[row, : position + 1]
            history = next(h for h in histories if labels[row, position] in h)
            assert (context > 0).sum() >= min(4, int(np.flatnonzero(history == labels[row, position])[0]))
    assert all(len(w) <= 6 for w in windows) and all(len(w) >= 2 for w in windows)


def test_sliding_windows_reject_a_stride_that_would_skip_targets():
    from mmrec.train.sequences import sliding_windows

    with pytest.raises(ValueError, match="stride"):
        sliding_windows([np.arange(1, 10)], max_length=5, stride=5)
