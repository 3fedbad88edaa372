"""benchmarks/popularity_bands.py: per-playlist NDCG from ranks, means by band of plays, and the EASE blend."""

import numpy as np
import pytest
import torch

from tests.benchmarks import load_benchmark

bands = load_benchmark("popularity_bands")


def test_ndcg_of_ranks_counts_only_the_top_k():
    values = bands.ndcg_of_ranks(np.array([0, 1, 19, 20, 400]))  # K = 20
    assert values == pytest.approx([1.0, 1 / np.log2(3), 1 / np.log2(21), 0.0, 0.0])


def test_by_band_averages_each_band_and_leaves_an_empty_one_nan():
    values = np.array([1.0, 0.0, 0.5, 0.25])
    plays = np.array([3, 7, 12, 150])
    means = bands.by_band(values, plays, [0, 10, 20, 100, 1e12])
    assert means[:2] == [0.5, 0.5] and np.isnan(means[2]) and means[3] == 0.25


def test_a_blend_at_weight_zero_or_one_ranks_as_that_scorer_alone_and_padding_and_history_stay_out():
    torch.manual_seed(0)
    first_scores, second_scores = torch.randn(3, 9), torch.randn(3, 9) * 50 + 7  # scales differ: z-scoring evens them
    first_scores[:, 0] = float("-inf")  # as real scorers give the padding column
    second_scores[:, [3, 5]] = 1e6  # a co-occurrence model scores the history high: it must not set the scale
    first, second = (lambda h: first_scores.clone()), (lambda h: second_scores.clone())
    histories = torch.tensor([[0, 3, 5]] * 3)  # left-padded: songs 3 and 5 are every row's history
    candidates = [1, 2, 4, 6, 7, 8]
    for weight, alone in ((0.0, first_scores), (1.0, second_scores)):
        blended = bands.blend(first, second, weight)(histories)
        assert torch.isinf(blended[:, [0, 3, 5]]).all() and torch.isfinite(blended[:, candidates]).all()
        assert torch.equal(blended[:, candidates].argsort(dim=1), alone[:, candidates].argsort(dim=1))
    standard = bands.zscored(second_scores, histories)[:, candidates]
    assert torch.allclose(standard.mean(1), torch.zeros(3), atol=1e-5)
    assert torch.allclose(standard.std(1, unbiased=False), torch.ones(3))
    half = bands.blend(first, second, 0.5)(histories)[:, candidates]
    assert torch.allclose(half, 0.5 * bands.zscored(first_scores, histories)[:, candidates] + 0.5 * standard)


def test_a_row_of_equal_scores_z_scores_to_zeros_not_nan():
    flat = torch.full((1, 5), 2.0)
    flat[:, 0] = float("-inf")
    assert torch.equal(bands.zscored(flat)[:, 1:], torch.zeros(1, 4))
