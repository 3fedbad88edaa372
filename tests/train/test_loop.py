"""The training core: early-stopping bookkeeping (a diverged epoch never becomes the best checkpoint), the
workers' random streams, the average of the weights and the held-out songs' rows."""

import math

import numpy as np
import pytest
import torch

from mmrec.models.bert4rec import BERT4RecConfig
from mmrec.train.config import TrainConfig
from mmrec.train.loop import (WeightAverage, build_model, freeze_song_rows, optimizer_for, record_epoch, torch_seed,
                              train_epoch)


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
    again = WeightAverage(model, decay=0.9, steps=5)
    again.load_state_dict(average.state_dict())  # as a resumed run restores it from its checkpoint ...
    again.update(model)  # ... it continues from its step count
    share = 0.1 / (1 - 0.9 ** 6)
    assert torch.allclose(again.model.items[0].ids.weight, averaged + share * (trained - averaged), atol=1e-6)


def multimodal(content_trainable: bool, num_items: int = 12):
    table = np.random.default_rng(0).normal(size=(num_items + 1, 5)).astype(np.float32)
    table[0] = 0
    config = BERT4RecConfig(num_items=num_items, architecture="sasrec", hidden=16, layers=1, heads=2, max_length=8,
                            dropout=0.0, modalities=("audio",), content_dims=(5,), content_trainable=content_trainable)
    return build_model(config, {"audio": table}, seed=0), table


def test_the_average_shares_a_frozen_content_table_and_its_checkpoint_leaves_it_out():
    model, _ = multimodal(content_trainable=False)
    average = WeightAverage(model, decay=0.9)
    content = model.items[0].content
    assert average.model.items[0].content is content  # one table on the device, not two
    assert average.model.items[0].ids.weight is not model.items[0].ids.weight
    kept = average.state_dict()
    assert "items.0.content" not in kept and "items.0.ids.weight" in kept and "popularity_log" in kept
    with torch.no_grad():
        average.model.items[0].ids.weight.add_(1.0)
    again = WeightAverage(model, decay=0.9)
    again.load_state_dict(kept)  # what a resumed run reads back
    assert torch.equal(again.model.items[0].ids.weight, kept["items.0.ids.weight"])
    again.load_state_dict(average.model.state_dict())  # a checkpoint that kept the frozen table loads too
    with pytest.raises(ValueError, match="items.0.ids.weight"):
        again.load_state_dict({k: v for k, v in kept.items() if k != "items.0.ids.weight"})


def test_held_out_songs_keep_their_rows_through_adamws_weight_decay():
    """Their gradients are zero, but AdamW's decoupled weight decay shrinks every row it steps; the rows of songs
    held out of training must stay as embed made them (content) and zero (IDs)."""
    model, table = multimodal(content_trainable=True)
    cfg = TrainConfig(architecture="sasrec", modalities=("audio",), batch_size=4, max_length=8, hidden=16, heads=2,
                      weight_decay=0.5, learning_rate=0.05)
    optimizer = optimizer_for(model, cfg)
    cold = np.array([3, 7])
    freeze_song_rows(model, cold, optimizer)
    rng = np.random.default_rng(0)
    warm = np.array([s for s in range(1, 13) if s not in cold])
    batches = [[rng.choice(warm, size=8) for _ in range(4)] for _ in range(10)]
    train_epoch(model, optimizer, batches, cfg, 13, rng, torch.device("cpu"))
    items = model.items[0]
    assert torch.equal(items.content[cold].detach(), torch.from_numpy(table[cold]))
    assert not bool(items.ids.weight[cold].any())
    assert not torch.allclose(items.content[warm].detach(), torch.from_numpy(table[warm]), atol=1e-3)  # warm rows moved
