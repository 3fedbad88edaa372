"""The training core: early-stopping bookkeeping (a diverged epoch never becomes the best checkpoint) and the
workers' random streams."""

import math

import torch

from mmrec.train.loop import record_epoch, torch_seed


def fresh_state() -> dict:
    return {"epoch": -1, "best": None, "best_epoch": -1, "epochs_without_gain": 0, "stopped": False}


def test_the_best_epoch_is_the_highest_metric_and_patience_stops_training():
    state = fresh_state()
    assert [record_epoch(state, value, 1.0, patience=2) for value in (0.1, 0.3, 0.2)] == [True, True, False]
    assert (state["best"], state["best_epoch"], state["epoch"], state["stopped"]) == (0.3, 1, 2, False)
    assert not record_epoch(state, 0.25, 1.0, patience=2)
    assert state["stopped"] and state["best_epoch"] == 1


def test_a_nan_loss_or_metric_never_becomes_the_best_and_stops_training():
    for value, loss in ((0.9, math.nan), (math.nan, 1.0), (0.9, math.inf)):
        state = fresh_state()
        assert record_epoch(state, 0.2, 1.0, patience=5)
        assert not record_epoch(state, value, loss, patience=5)  # 0.9 > 0.2, but the epoch diverged
        assert (state["best"], state["best_epoch"]) == (0.2, 0)
        assert state["stopped"] and state["diverged"]


def test_a_first_epoch_that_diverged_leaves_no_best():
    # `value > None` must not be reached, and NaN must not be stored as the best (NaN > x is always false, so a
    # NaN best would never be replaced).
    state = fresh_state()
    assert not record_epoch(state, math.nan, math.nan, patience=5)
    assert state["best"] is None and state["best_epoch"] == -1 and state["stopped"]


def test_every_worker_and_epoch_draws_its_own_dropout_stream_and_a_resume_draws_it_again():
    seeds = {(epoch, rank): torch_seed(7, epoch, rank) for epoch in range(3) for rank in range(4)}
    assert len(set(seeds.values())) == len(seeds)  # no two workers, no two epochs alike
    assert torch_seed(7, 2, 1) == seeds[2, 1]  # a resumed epoch draws as the first run did

    def masks(seed):
        torch.manual_seed(seed)
        return torch.nn.functional.dropout(torch.ones(64), 0.5)

    assert torch.equal(masks(seeds[0, 0]), masks(seeds[0, 0]))
    assert not torch.equal(masks(seeds[0, 0]), masks(seeds[0, 1]))
