"""Training windows and cloze batches."""

import numpy as np

from mmrec.train.sequences import cloze_batch, left_pad, training_windows


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
    original = left_pad(windows, 50)
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
