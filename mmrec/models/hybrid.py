"""The hybrid scorer: a trained sequence model blended with EASE, the weight chosen on validation.

A sequence model and EASE err differently: SASRec reads the order and the newest songs and ranks popular songs
well, EASE reads every song of the history at once and ranks co-occurring rare songs well. Their scores live on
different scales (logits against linear co-occurrence weights), so each is standardised per playlist over the
songs that playlist can be offered (the catalogue less its history, which no ranking returns and which, scored
high by a co-occurrence model, would make the scale depend on the history's length), and then

    hybrid = (1 - weight) x z(model) + weight x z(EASE)

with `weight` chosen on the validation targets from a grid that holds 0, so a blend that does not help is never
used (docs/benchmarks.md has the measurements). EASE has no opinion on songs it was not fitted on (cold songs, or
songs past its memory limit): their EASE term is 0, the mean song's, and their place is the model's alone.

The model's popularity prior (models/bert4rec.py) was chosen on validation for the model alone, where it buys the
popular songs at the long tail's cost; inside a blend EASE ranks the popular songs well, so a smaller prior can give
the tail back. The prior the model scores with inside the blend is chosen with the weight, on the same validation
targets, and kept in the hybrid (`model_prior`): the registered weights keep the model-alone prior.

A registered model carries the blend in two files beside its weights: `ease.safetensors` (the fitted songs'
item ids and the songs x songs weights B) and `hybrid.json` (the weight, the model's prior inside the blend,
EASE's lambda, mode and size; what validation measured is in metrics.json); `RegisteredModel.scorer` applies it,
so evaluation, experiments and serving score the same hybrid.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from mmrec.evaluate.metrics import evaluate_scorer, evaluate_variants
from mmrec.models.ease import EASE

log = logging.getLogger("mmrec.hybrid")

EASE_WEIGHTS = "ease.safetensors"
HYBRID = "hybrid.json"


def zscored(scores: torch.Tensor, histories: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
    """Scores (B, C) standardised per row over the songs a ranking can return there: finite scores of columns 1..
    (column 0 is padding), less the row's history (left-padded ids, 0 = padding), and only `columns` (C,) bool
    when given. Every column is scaled (history columns too: a caller that keeps seen songs ranks them alike);
    columns outside `columns` come back 0, the mean. A row without spread comes back 0."""
    candidates = torch.isfinite(scores)
    candidates.scatter_(1, histories, False)
    candidates[:, 0] = False
    if columns is not None:
        candidates &= columns[None, :]
    masked = scores.masked_fill(~candidates, float("nan"))
    mean = masked.nanmean(1, keepdim=True).nan_to_num(0.0)  # NaN when a row has no candidate
    spread = ((masked - mean) ** 2).nanmean(1, keepdim=True).sqrt().nan_to_num(0.0)
    standardised = (scores - mean) / spread.clamp_min(1e-12)
    standardised = torch.where(spread > 0, standardised, torch.zeros_like(standardised))
    return standardised if columns is None else standardised.masked_fill(~columns[None, :], 0.0)


def prior_shift(model, prior: float) -> torch.Tensor | None:
    """(N + 1,) what scoring `model` with the whole popularity prior weight `prior` adds to its scores (it scores
    with its own, `model.prior_weight()`); None when that is its own prior."""
    own = float(model.prior_weight())
    return None if math.isclose(prior, own, abs_tol=1e-6) else (prior - own) * model.popularity_log.detach().cpu()


def shifted(scores: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
    """Scores (B, C >= N + 1) plus a per-song shift (N + 1,); cold songs after N get the mean song's, as the
    model's own prior gives them. -inf (excluded) stays -inf."""
    if shift is None:
        return scores
    shift = shift.to(scores.device)
    padded = F.pad(shift, (0, scores.shape[1] - len(shift)), value=float(shift[1:].mean()) if len(shift) > 1 else 0.0)
    return scores + padded[None, :]


@dataclass
class Hybrid:
    """EASE fitted on the training histories, the weight of its z-scores in the blend, and the model's popularity
    prior inside the blend: `model_prior` (the whole weight; None = the model's own) applied as `shift`, what that
    prior adds to the model's scores (`prior_shift`)."""

    ease: EASE
    weight: float
    model_prior: float | None = None
    shift: torch.Tensor | None = None

    @cached_property
    def _fitted(self) -> torch.Tensor:
        """(N + 1,) bool: the songs EASE was fitted on (built once, not per scored batch)."""
        fitted = torch.zeros(self.ease.num_items + 1, dtype=torch.bool)
        fitted[self.ease.items] = True
        return fitted

    def fitted_columns(self, columns: int) -> torch.Tensor:
        """(columns,) bool: the score columns EASE was fitted on (columns past N + 1 are cold songs: never)."""
        return F.pad(self._fitted, (0, columns - len(self._fitted)))[:columns]

    def ease_zscores(self, histories: torch.Tensor, columns: int, device) -> torch.Tensor:
        """EASE's standardised scores (B, columns) for histories (B, T): 0 for songs it was not fitted on."""
        ease_scores = self.ease.score(histories.to("cpu")).to(device)
        if columns > ease_scores.shape[1]:
            ease_scores = F.pad(ease_scores, (0, columns - ease_scores.shape[1]))
        return zscored(ease_scores, histories, self.fitted_columns(columns).to(device))

    def blend(self, model_scores: torch.Tensor, histories: torch.Tensor, weight: float | None = None,
              shift: torch.Tensor | None = None, ease_z: torch.Tensor | None = None) -> torch.Tensor:
        """Hybrid scores (B, C) from the model's (B, C >= N + 1; cold songs after N, scored with the model's own
        prior) and the histories (B, T): column 0 stays -inf, and a model score that is not finite stays what it
        was (an excluded or broken song is never rescued by EASE). `weight` and `shift` default to the hybrid's;
        `ease_z` (`ease_zscores` of these histories) saves scoring EASE again for another weight or shift."""
        weight = self.weight if weight is None else weight
        model_scores = shifted(model_scores, self.shift if shift is None else shift)
        if ease_z is None:
            ease_z = self.ease_zscores(histories, model_scores.shape[1], model_scores.device)
        blended = (1 - weight) * zscored(model_scores, histories) + weight * ease_z
        blended = torch.where(torch.isfinite(model_scores), blended, model_scores)
        blended[:, 0] = float("-inf")
        return blended

    def to_bytes(self) -> bytes:
        return save_safetensors({"items": self.ease.items.contiguous(), "weights": self.ease.weights.contiguous()})

    def description(self) -> dict:
        return {"weight": self.weight, "ease_l2": self.ease.l2, "ease_mode": self.ease.mode,
                "ease_songs_fitted": int(len(self.ease.items)),
                **({"model_prior": self.model_prior} if self.model_prior is not None else {})}

    @classmethod
    def from_bytes(cls, data: bytes, description: dict, train_counts: np.ndarray, model=None) -> "Hybrid":
        """The hybrid a registered folder holds; `model` (its BERT4Rec) is needed when the blend scores it with
        another prior than its own (hybrid.json's model_prior)."""
        tensors = load_safetensors(data)
        ease = EASE.restore(tensors["items"], tensors["weights"], len(train_counts), train_counts,
                            description["ease_l2"], description["ease_mode"])
        prior = description.get("model_prior")
        if prior is not None and model is None:
            raise ValueError("model_prior needs the model")
        prior = None if prior is None else float(prior)
        return cls(ease, float(description["weight"]), prior, None if prior is None else prior_shift(model, prior))


def scorer_with(hybrid: Hybrid | None, score):
    """`score` (histories -> model scores), blended when there is a hybrid."""
    if hybrid is None:
        return score
    return lambda histories: hybrid.blend(score(histories), histories)


def tuned_ease(train_histories: list[np.ndarray], num_items: int, counts: np.ndarray, l2s, max_dense_songs: int,
               valid_histories: list[np.ndarray], valid_targets: np.ndarray, metric: str, ks,
               batch_size: int = 256) -> tuple[EASE, dict[float, float]]:
    """EASE with the lambda of `l2s` whose validation `metric` is best, and every lambda's validation value (empty
    for a single lambda, fitted without validating). One songs x songs matrix is held at a time: each lambda's
    model is dropped before the next is fitted, and the winner refitted."""
    def fit(l2):
        return EASE(train_histories, num_items, counts, l2, max_dense_songs)

    tried = {}
    if len(l2s) > 1:
        for l2 in l2s:
            model = fit(l2)
            tried[l2] = evaluate_scorer(model.score, valid_histories, valid_targets, ks, batch_size).means()[metric]
            log.info("EASE lambda %g: valid %s %.4f", l2, metric, tried[l2])
            del model
    return fit(max(tried, key=tried.get) if tried else l2s[0]), tried


def choose_blend(model_score, ease: EASE, weights, histories: list[np.ndarray], targets: np.ndarray, metric: str,
                 ks, batch_size: int = 256, shifts: dict[float, torch.Tensor | None] | None = None
                 ) -> tuple[tuple[float | None, float], dict[tuple[float | None, float], dict[str, float]]]:
    """The pair (prior, weight) whose validation `metric` is best, and every pair's validation metrics. `shifts`
    maps each whole prior weight to try to its `prior_shift` (None for the model's own); without it only the
    model's own prior (key None) is tried. Weight 0 is the model alone and is scored with its own prior only
    (the prior alone was chosen in training). Ties go to the model's own prior, then to the smaller weight: a
    change that validation does not prefer is never made. The model and EASE score each batch once."""
    shifts = shifts or {None: None}
    own = next(prior for prior, shift in shifts.items() if shift is None)
    weights = sorted(set(float(w) for w in weights))
    pairs = [(prior, w) for prior in shifts for w in weights if w > 0 or prior == own]
    hybrid = Hybrid(ease, 0.0)
    batch = {}  # EASE's z-scores of the batch being scored, for all its variants (every variant sees one `padded`)

    def ease_z(scores, padded):
        if batch.get("padded") is not padded:
            batch.update(padded=padded, z=hybrid.ease_zscores(padded, scores.shape[1], scores.device))
        return batch["z"]

    variants = [lambda scores, padded, p=p, w=w: scores if w == 0 else
                hybrid.blend(scores, padded, w, shifts[p], ease_z(scores, padded)) for p, w in pairs]
    totals = evaluate_variants(model_score, variants, histories, targets, ks, batch_size)
    measured = {pair: t.means() for pair, t in zip(pairs, totals)}
    best = max(pairs, key=lambda pair: (measured[pair][metric], pair[0] == own, -pair[1]))
    return best, measured


def by_prior(measured: dict[tuple[float | None, float], dict[str, float]], metric: str) -> dict[str, dict[str, float]]:
    """`choose_blend`'s measurements as {prior: {weight: metric}} (keys formatted "%g"), for notes and reports."""
    table: dict[str, dict[str, float]] = {}
    for (prior, weight), metrics in measured.items():
        table.setdefault(f"{prior:g}" if prior is not None else "own", {})[f"{weight:g}"] = metrics[metric]
    return table


def choose_weight(model_score, ease: EASE, weights, histories: list[np.ndarray], targets: np.ndarray, metric: str,
                  ks, batch_size: int = 256) -> tuple[float, dict[float, dict[str, float]]]:
    """The blend weight of `weights` whose validation `metric` is best with the model's own prior (the smallest of
    equals: 0, no blend, wins a tie) and every weight's validation metrics."""
    (_, best), measured = choose_blend(model_score, ease, weights, histories, targets, metric, ks, batch_size)
    return best, {w: m for (_, w), m in measured.items()}

