"""The training core, free of Ray: build the model from settings and content, run an epoch, validate.

The Ray Train wrapper (train/run.py) only shards the windows, wraps the model in DDP, reports and checkpoints.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch

from mmrec.evaluate.metrics import MetricTotals, evaluate_offsets
from mmrec.models.bert4rec import BERT4Rec, BERT4RecConfig
from mmrec.models.sasrec import build
from mmrec.train.config import TrainConfig
from mmrec.train.sequences import cloze_batch, next_song_batch, sliding_windows, training_windows


def model_config(cfg: TrainConfig, num_items: int, content_dims: dict[str, int]) -> BERT4RecConfig:
    return BERT4RecConfig(
        num_items=num_items, architecture=cfg.architecture, hidden=cfg.hidden, layers=cfg.layers, heads=cfg.heads, max_length=cfg.max_length,
        dropout=cfg.model_dropout, fusion=cfg.fusion, modalities=tuple(cfg.modalities),
        content_dims=tuple(content_dims[m] for m in cfg.modalities), projection=cfg.projection,
        id_embedding=cfg.id_embedding or not cfg.modalities, content_trainable=cfg.model_content_trainable,
        item_norm=cfg.model_item_norm, loss=cfg.loss, negatives=cfg.negatives,
        logit_adjustment=cfg.logit_adjustment, id_dropout=cfg.model_id_dropout,
    )


def build_model(config: BERT4RecConfig, contents: dict[str, np.ndarray], seed: int,
                train_counts: np.ndarray | None = None, negative_sampling: str = "uniform",
                artists: np.ndarray | None = None) -> BERT4Rec:
    """The model with its content tables (N + 1, D) in place and its popularity prior's plays (scored with the
    logit adjustment's weight until validation adds its own; songs without plays take their artist's term when
    `artists` is given); sampled-softmax negatives follow training plays when asked (counts smoothed by +1 so every
    song can be drawn)."""
    torch.manual_seed(seed)
    model = build(config, {name: torch.from_numpy(table) for name, table in contents.items()})
    if train_counts is not None:
        model.set_popularity(train_counts, artists)
    if negative_sampling == "popularity" and train_counts is not None:
        counts = torch.as_tensor(train_counts, dtype=torch.float32) + 1.0
        model.sampling_probabilities.copy_(counts / counts.sum())
    return model


def torch_seed(*keys: int) -> int:
    """A seed for torch's generator from (seed, epoch, rank): every worker and epoch its own dropout stream, the
    same again when a run resumes at that epoch."""
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def optimizer_for(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters at the resolved learning rate (train.learning_rate or the
    architecture's default)."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.model_learning_rate,
                             weight_decay=cfg.weight_decay)


class WeightAverage:
    """An exponential moving average of a model's weights, updated after every optimizer step (Polyak averaging):
    validation, checkpoints and the registered model use the average, whose curve is smoother and higher than the
    raw weights' (SASRec + all four on the full demo: docs/benchmarks.md, "Popularity in the training logits, and
    averaged weights"). The average is bias-corrected as Adam's moments are: after t steps it weighs only the t
    weights seen, never the initial ones."""

    def __init__(self, model: torch.nn.Module, decay: float, steps: int = 0):
        self.decay, self.steps = decay, steps
        # Frozen parameters never move, so the average shares them instead of holding a second copy on the device
        # (a frozen content table is millions of rows on the full MPD). Buffers (the popularity prior) are its own.
        frozen = {id(p): p for p in model.parameters() if not p.requires_grad}
        self.frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
        self.model = copy.deepcopy(model, memo=frozen)
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards `model`'s trainable parameters (`model` may be DDP-wrapped)."""
        self.steps += 1
        share = (1.0 - self.decay) / (1.0 - self.decay ** self.steps)  # 1 at the first step: the average starts there
        trained = getattr(model, "module", model).parameters()
        for average, parameter in zip(self.model.parameters(), trained, strict=True):
            if parameter.requires_grad:
                average.lerp_(parameter, share)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights a checkpoint keeps: all but the shared frozen ones, which the model's own file has."""
        return {name: value for name, value in self.model.state_dict().items() if name not in self.frozen}

    def load_state_dict(self, weights: dict[str, torch.Tensor]) -> None:
        """Back from `state_dict` (or from a checkpoint that kept the frozen weights too: they load as they are)."""
        missing, unexpected = self.model.load_state_dict(weights, strict=False)
        if unexpected or set(missing) - self.frozen:
            raise ValueError(f"averaged weights do not fit the model: missing {sorted(set(missing) - self.frozen)}, "
                             f"unexpected {sorted(unexpected)}")


def freeze_song_rows(model: BERT4Rec, songs: np.ndarray, optimizer: torch.optim.Optimizer) -> None:
    """Keep these songs' content rows as embed made them and their ID rows at zero, whatever the softmax pushes:
    held-out (cold) songs must be scored as a song the model never saw would be. Their gradients are zeroed (so
    Adam's moments stay clean) and the rows are put back after every optimizer step, which AdamW's weight decay
    would otherwise shrink."""
    if not len(songs):
        return
    rows = torch.as_tensor(songs, dtype=torch.long)
    kept = []  # the tables holding rows of these songs
    for items in model.items:
        if items.ids is not None:
            with torch.no_grad():
                items.ids.weight[rows] = 0.0
            kept.append(items.ids.weight)
        if items.content is not None and items.content.requires_grad:
            kept.append(items.content)
    for table in kept:
        table.register_hook(lambda grad: grad.index_fill(0, rows.to(grad.device), 0.0))
    # Each table with its rows' indices and values, on its device once (put back every step, so no copy per step).
    saved = [(table, rows.to(table.device), table.detach()[rows.to(table.device)].clone()) for table in kept]

    @torch.no_grad()
    def put_back(*_) -> None:
        for table, where, values in saved:
            table[where] = values

    optimizer.register_step_post_hook(put_back)


def windows_for_training(histories: list[np.ndarray], cfg: TrainConfig) -> tuple[list[np.ndarray], np.ndarray]:
    """The training windows of these histories (train.windows) and, per window, the position of its first
    next-song target (SASRec; earlier positions are context only)."""
    if cfg.windows == "sliding":
        return sliding_windows(histories, cfg.max_length, cfg.window_stride or cfg.max_length // 2)
    windows = training_windows(histories, cfg.max_length, cfg.windows_per_playlist)
    return windows, np.ones(len(windows), np.int64)


def train_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batches: list[list[np.ndarray]],
                cfg: TrainConfig, mask_token: int, rng: np.random.Generator, device: torch.device,
                progress=None, label_from: list[np.ndarray] | None = None,
                average: WeightAverage | None = None) -> float:
    """One pass over this worker's batches (lists of windows, in this epoch's order); the mean loss. `model` may
    be DDP-wrapped: its forward(tokens, labels) returns the loss. `label_from` (per batch, per window) marks where
    a sliding window's next-song targets start. `average` follows every step. `progress` hears how it goes every
    30 s."""
    model.train()
    total, steps, seen = 0.0, 0, 0
    started = last_said = time.time()
    for number, windows in enumerate(batches):
        if cfg.architecture == "sasrec":
            tokens, labels = next_song_batch(windows, cfg.max_length, None if label_from is None else label_from[number])
        else:
            tokens, labels = cloze_batch(windows, cfg.max_length, mask_token, cfg.mask_probability,
                                         cfg.last_only_share, rng)
        loss = model(torch.from_numpy(tokens).to(device), torch.from_numpy(labels).to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if average is not None:
            average.update(model)
        total += loss.item()
        steps += 1
        seen += len(windows)
        if progress and time.time() - last_said > 30:  # long epochs show progress twice a minute
            last_said = time.time()
            progress(f"step {number + 1}/{len(batches)}, loss {total / steps:.4f}, "
                     f"{seen / (last_said - started):.0f} windows/s")
    return total / max(steps, 1)


def validate(model: BERT4Rec, histories: list[np.ndarray], targets: np.ndarray, ks, batch_size: int,
             device: torch.device, prior_weights=(0.0,), totals: list[MetricTotals] | None = None) -> list[MetricTotals]:
    """Metric sums over these playlists' fixed validation targets (the model unwrapped from DDP), one MetricTotals
    per weight of the popularity prior (the model runs once, with its validated weight off meanwhile: its scores
    keep only the logit adjustment's part), added to `totals`
    when given (ones that keep each playlist's rank, say). `best_prior` picks the weight once workers are summed."""
    model.eval()
    kept = model.popularity_weight.clone()
    model.popularity_weight.zero_()
    try:
        offsets = [weight * model.popularity_log for weight in prior_weights]
        return evaluate_offsets(model.scorer(), offsets, histories, targets, ks, batch_size, device, totals)
    finally:
        model.popularity_weight.copy_(kept)


def best_prior(totals: list[MetricTotals], metric: str) -> int:
    """Index of the prior weight whose validation `metric` is highest (the earliest of equals: list 0 first)."""
    values = [t.means()[metric] for t in totals]
    return int(np.argmax(values))


def adopt_best_prior(model: BERT4Rec, by_prior: list[MetricTotals], prior_weights, metric: str):
    """Give the model the prior weight that validated best (its scores, and a checkpoint taken now, use it);
    returns that weight's totals and the weight. `by_prior` must be summed over workers first, so every worker
    adopts the same one."""
    chosen = best_prior(by_prior, metric)
    model.popularity_weight.fill_(prior_weights[chosen])
    return by_prior[chosen], prior_weights[chosen]


def record_epoch(state: dict, value: float, loss: float, patience: int) -> bool:
    """Update the early-stopping state with an epoch's validation metric and training loss; True when this epoch
    is the best so far (its weights become the best checkpoint). A diverged epoch (loss or metric NaN or
    infinite) is never the best: training stops there, keeping the best epoch before it."""
    diverged = not (math.isfinite(value) and math.isfinite(loss))
    improved = not diverged and (state["best"] is None or value > state["best"])
    if improved:
        state.update(best=value, best_epoch=state["epoch"] + 1, epochs_without_gain=0)
    else:
        state["epochs_without_gain"] += 1
    state["diverged"] = diverged
    state["stopped"] = diverged or state["epochs_without_gain"] >= patience
    state["epoch"] += 1
    return improved
