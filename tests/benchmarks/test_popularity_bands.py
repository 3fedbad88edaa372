"""benchmarks/popularity_bands.py: per-playlist NDCG from ranks, and means by band of plays (the blend
it reports is mmrec's hybrid: tests/models/test_hybrid.py)."""

import numpy as np
import pytest

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
