"""Ranking metrics against hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from mmrec.evaluate.metrics import (
    UNREACHABLE,
    MetricTotals,
    evaluate_by_popularity,
    evaluate_scorer,
    evaluate_offsets,
    exclude_history,
    ndcg_at_k,
    popular_songs,
    recall_at_k,
    target_ranks,
)


def ranks_for(scores, history, targets):
    scores = torch.tensor(scores, dtype=torch.float32)
    history = torch.tensor(history, dtype=torch.long)
    return target_ranks(exclude_history(scores, history), torch.tensor(targets))


def test_hand_computed_rank_recall_and_ndcg():
    # Items 1..4 score .9 .5 .7 .1; the target 3 (.7) is beaten only by item 1: rank 1 (0-based).
    ranks = ranks_for([[0.0, 0.9, 0.5, 0.7, 0.1]], [[0]], [3])
    assert ranks.tolist() == [1]
    assert recall_at_k(ranks, 1).tolist() == [0.0]
    assert recall_at_k(ranks, 2).tolist() == [1.0]
    assert ndcg_at_k(ranks, 2).item() == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k(ranks, 1).item() == 0.0


def test_history_songs_are_excluded_so_the_target_moves_up():
    ranks = ranks_for([[0.0, 0.9, 0.5, 0.7, 0.1]], [[0, 1]], [3])
    assert ranks.tolist() == [0]
    assert ndcg_at_k(ranks, 20).item() == pytest.approx(1.0)


def test_ties_count_against_the_target():
    ranks = ranks_for([[0.0, 0.5, 0.5, 0.5, 0.5]], [[0]], [2])
    assert ranks.tolist() == [3]  # every other eligible song ties with it
    assert recall_at_k(ranks, 3).item() == 0.0
    assert recall_at_k(ranks, 4).item() == 1.0


def test_a_target_inside_the_history_is_a_miss_at_any_k():
    ranks = ranks_for([[0.0, 0.9, 0.5, 0.7, 0.1]], [[3, 1]], [3])
    assert ranks.tolist() == [UNREACHABLE]
    assert recall_at_k(ranks, 1000).item() == 0.0
    assert ndcg_at_k(ranks, 1000).item() == 0.0


@pytest.mark.parametrize("broken", [float("nan"), float("inf")])
def test_a_target_with_a_nan_or_infinite_score_is_a_miss(broken):
    # (scores >= NaN) is all false, so a naive count gives rank -1: recall 1 and an infinite NDCG.
    ranks = ranks_for([[0.0, 0.9, broken, 0.7, 0.1]], [[0]], [2])
    assert ranks.tolist() == [UNREACHABLE]
    assert recall_at_k(ranks, 500).item() == 0.0
    assert ndcg_at_k(ranks, 500).item() == 0.0


def test_songs_with_nan_scores_count_against_the_target():
    ranks = ranks_for([[0.0, float("nan"), 0.5, float("nan"), 0.1]], [[0]], [2])
    assert ranks.tolist() == [2]


def test_a_model_scoring_everything_nan_earns_nothing():
    scores = torch.full((3, 6), float("nan"))
    totals = evaluate_scorer(lambda histories: scores[: len(histories)], [np.array([1]), np.array([2]),
                             np.array([3])], np.array([4, 5, 1]), ks=(1, 5))
    assert all(value == 0.0 for value in totals.means().values())


def test_k_larger_than_the_catalogue_recalls_every_reachable_target():
    ranks = ranks_for([[0.0, 0.1, 0.2, 0.3, 0.4]], [[0]], [1])  # the worst eligible song
    assert ranks.tolist() == [3]
    assert recall_at_k(ranks, 500).item() == 1.0
    assert ndcg_at_k(ranks, 500).item() == pytest.approx(1 / math.log2(5))


def test_padding_is_never_recommended():
    ranks = ranks_for([[9.0, 0.1, 0.2]], [[0]], [2])
    assert ranks.tolist() == [0]


def test_batched_evaluation_matches_a_per_playlist_loop():
    rng = np.random.default_rng(0)
    num_items = 30
    weights = torch.from_numpy(rng.normal(size=(num_items + 1,)).astype(np.float32))
    histories = [rng.choice(np.arange(1, num_items + 1), size=rng.integers(1, 8), replace=False) for _ in range(37)]
    targets = rng.integers(1, num_items + 1, size=37)

    def score(padded):  # popularity-like scores plus a per-history shift
        return weights[None, :].repeat(len(padded), 1) + padded.sum(1, keepdim=True).float() * 0

    totals = evaluate_scorer(score, histories, targets, (5, 10), batch_size=8,
                             totals=MetricTotals((5, 10), keep_ranks=True))
    expected = MetricTotals((5, 10))
    recall5, ranks = [], []
    for history, target in zip(histories, targets):
        s = weights.numpy().copy()
        s[0] = -np.inf
        s[history] = -np.inf
        rank = UNREACHABLE if np.isneginf(s[target]) else int((s >= s[target]).sum() - 1)
        recall5.append(rank < 5)
        ranks.append(rank)
        expected.add(torch.tensor([rank]))
    assert totals.ranks().tolist() == ranks  # every playlist's rank, in input order across the batches
    assert totals.count == 37
    assert totals.means() == pytest.approx(expected.means())
    assert totals.means()["recall@5"] == pytest.approx(np.mean(recall5))


def test_ranks_are_only_kept_when_asked():
    totals = MetricTotals((20,))
    totals.add(torch.tensor([0, 30]))
    with pytest.raises(ValueError, match="keep_ranks"):
        totals.ranks()


def test_totals_merge_through_a_vector():
    a, b = MetricTotals((20,)), MetricTotals((20,))
    a.add(torch.tensor([0, 30]))
    b.load_vector(a.as_vector() * 2)
    assert b.count == 4 and b.means() == pytest.approx(a.means())


def test_evaluation_leaves_gradients_on_for_whatever_trains_next():
    evaluate_scorer(lambda padded: torch.zeros(len(padded), 5), [np.array([1])], np.array([2]), (1,))
    assert torch.is_grad_enabled()


def test_popular_songs_are_the_most_played_fifth_ties_broken_by_item():
    counts = np.array([5, 0, 9, 9, 1, 0, 2, 3, 4, 7])
    assert np.flatnonzero(popular_songs(counts)).tolist() == [2, 3]  # items 3 and 4: 9 plays each


def test_scoring_by_popularity_splits_targets_into_bands_that_add_up_to_the_whole():
    counts = np.array([50, 40, 3, 2, 1, 1, 1, 0, 0, 0])  # items 1 and 2 are the popular fifth
    rng = np.random.default_rng(0)
    histories = [rng.choice(np.arange(3, 11), size=3, replace=False) for _ in range(40)]
    targets = np.array([1, 2, 5, 9] * 10)

    def popularity(padded):  # a popularity scorer finds popular targets and misses the tail
        return torch.from_numpy(np.concatenate([[-np.inf], counts]).astype(np.float32)).repeat(len(padded), 1)

    overall, bands = evaluate_by_popularity(popularity, histories, targets, counts, (2,))
    assert bands["popular"]["playlists"] == 20 and bands["long_tail"]["playlists"] == 20
    assert bands["popular"]["metrics"]["recall@2"] == 1.0 and bands["long_tail"]["metrics"]["recall@2"] == 0.0
    whole = evaluate_scorer(popularity, histories, targets, (2,))
    assert overall.count == 40 and overall.means() == pytest.approx(whole.means())


def test_offsets_rank_as_if_each_was_added_to_the_scores_with_one_call_per_batch():
    rng = np.random.default_rng(1)
    num_items = 25
    base = torch.from_numpy(rng.normal(size=(num_items + 1,)).astype(np.float32))
    prior = torch.from_numpy(rng.normal(size=(num_items + 1,)).astype(np.float32))
    histories = [rng.choice(np.arange(1, num_items + 1), size=rng.integers(1, 6), replace=False) for _ in range(20)]
    targets = rng.integers(1, num_items + 1, size=20)
    calls = []

    def score(padded):
        calls.append(len(padded))
        return base[None, :].repeat(len(padded), 1)

    offsets = [0.0 * prior, 0.5 * prior, 2.0 * prior]
    by_offset = evaluate_offsets(score, offsets, histories, targets, (5,), batch_size=8)
    assert calls == [8, 8, 4]  # the model ran once per batch, not once per offset
    for offset, totals in zip(offsets, by_offset):
        alone = evaluate_scorer(lambda p, o=offset: base[None, :].repeat(len(p), 1) + o, histories, targets, (5,),
                                batch_size=8)
        assert totals.means() == pytest.approx(alone.means())
    assert by_offset[0].means() != pytest.approx(by_offset[2].means())  # the offsets do move targets
    with pytest.raises(ValueError, match="2 variants but 1 totals"):
        evaluate_offsets(score, offsets[:2], histories, targets, (5,), totals=[MetricTotals((5,))])
