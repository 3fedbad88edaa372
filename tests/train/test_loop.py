"""The training core: early-stopping bookkeeping (a diverged epoch never becomes the best checkpoint), the
workers' random streams and the average of the weights."""

import math

import numpy as np
import pytest
import torch

from mmrec.models.bert4rec import BERT4RecConfig
from mmrec.train.config import TrainConfig
from mmrec.train.loop import WeightAverage, build_model, optimizer_for, record_epoch, torch_seed, train_epoch


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


def test_the_weight_average_is_the_bias_corrected_exponential_mean_of_the_steps_weights():
    model = torch.nn.Linear(1, 1, bias=False)
    model.weight.data.fill_(100.0)  # the initial weights never count
    average = WeightAverage(model, decay=0.5)
    for value in (1.0, 2.0, 3.0):
        model.weight.data.fill_(value)
        average.update(model)
    # (1 - d) (d^2 x 1 + d x 2 + 3) / (1 - d^3), d = 0.5
    assert average.model.weight.item() == pytest.approx(0.5 * (0.25 + 1.0 + 3.0) / 0.875)
    assert average.steps == 3 and not average.model.weight.requires_grad
    wrapped = torch.nn.Module()
    wrapped.module = model  # as DDP holds the model it trains
    model.weight.data.fill_(5.0)
    last = WeightAverage(model, decay=0.0)
    last.update(wrapped)
    assert last.model.weight.item() == 5.0  # decay 0: the raw weights


def test_an_epoch_moves_the_average_once_per_step_and_leaves_the_trained_weights_alone():
    cfg = TrainConfig(architecture="sasrec", modalities=(), batch_size=4, max_length=8, hidden=16, heads=2)
    model = build_model(BERT4RecConfig(num_items=12, architecture="sasrec", hidden=16, layers=1, heads=2,
                                       max_length=8, dropout=0.0), {}, seed=0)
    optimizer = optimizer_for(model, cfg)
    average = WeightAverage(model, decay=0.9)
    rng = np.random.default_rng(0)
    batches = [[rng.integers(1, 13, size=8) for _ in range(4)] for _ in range(5)]
    train_epoch(model, optimizer, batches, cfg, 13, rng, torch.device("cpu"), average=average)
    assert average.steps == 5
    trained, averaged = model.items[0].ids.weight, average.model.items[0].ids.weight
    assert not torch.allclose(trained, averaged)  # the average lags the weights it follows ...
    again = WeightAverage(average.model, decay=0.9, steps=5)
    again.update(model)  # ... and a restored one continues from its step count
    share = 0.1 / (1 - 0.9 ** 6)
    assert torch.allclose(again.model.items[0].ids.weight, averaged + share * (trained - averaged), atol=1e-6)
