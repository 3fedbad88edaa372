"""Full-catalogue ranking metrics for next-song prediction with one held-out target per playlist.

Every song of the catalogue is ranked; the songs already in the history are excluded before ranking, blind to
the target (a target that repeats a history song is therefore a miss; the prepare stage reports how many).
Ties are broken against the target: its rank counts every other eligible song scoring at least as high, so a
model that scores everything alike earns nothing. With one relevant song, Recall@k is 1 when it ranks in the
top k, and NDCG@k is 1 / log2(rank + 2) there (the ideal DCG is 1).

Everything is vectorised over the batch: one (B, N) comparison, no per-playlist Python loop.
"""

from __future__ import annotations

import numpy as np
import torch

UNREACHABLE = 2**62  # the rank of a target that cannot be recommended (it is in the history)


def exclude_history(scores: torch.Tensor, history: torch.Tensor, padding: int = 0) -> torch.Tensor:
    """Scores (B, N) with each row's history items (B, L; `padding` entries ignored) set to -inf.
    Column j of `scores` is item j; column `padding` is never eligible."""
    scores = scores.clone()
    rows = torch.arange(len(scores), device=scores.device)[:, None].expand_as(history)
    scores[rows, history] = float("-inf")
    scores[:, padding] = float("-inf")
    return scores


def target_ranks(scores: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """0-based rank (B,) of each target among the eligible songs, ties counted against the target.
    A target whose score is not finite gets UNREACHABLE, beyond every cut-off: -inf is an excluded target, NaN
    or +inf a broken model (a NaN compares false with everything, so it would otherwise rank first). Other songs
    with NaN scores count against the target for the same reason."""
    target_scores = scores.gather(1, targets[:, None])  # (B, 1)
    at_least_as_high = ((scores >= target_scores) | torch.isnan(scores)).sum(dim=1) - 1  # minus the target itself
    unreachable = ~torch.isfinite(target_scores[:, 0])
    return torch.where(unreachable, torch.full_like(at_least_as_high, UNREACHABLE), at_least_as_high)


def recall_at_k(ranks: torch.Tensor, k: int) -> torch.Tensor:
    """Per-playlist Recall@k (B,) for one relevant song: 1 if it ranks in the top k."""
    return (ranks < k).float()


def ndcg_at_k(ranks: torch.Tensor, k: int) -> torch.Tensor:
    """Per-playlist NDCG@k (B,) for one relevant song: 1 / log2(rank + 2) inside the top k, else 0."""
    gain = 1.0 / torch.log2(ranks.double() + 2.0)
    return torch.where(ranks < k, gain, torch.zeros_like(gain)).float()


def ranking_metrics(ranks: torch.Tensor, ks: tuple[int, ...] | list[int]) -> dict[str, torch.Tensor]:
    """{"recall@k": (B,), "ndcg@k": (B,)} for every k."""
    out = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(ranks, k)
        out[f"ndcg@{k}"] = ndcg_at_k(ranks, k)
    return out


class MetricTotals:
    """Sums of per-playlist metrics over batches (and, by `merge`, over workers); `means()` at the end.
    With keep_ranks, `ranks()` also gives every playlist's target rank in the order added (for paired tests of two
    models on the same playlists)."""

    def __init__(self, ks, keep_ranks: bool = False):
        self.ks = tuple(ks)
        self.sums = {name: 0.0 for k in self.ks for name in (f"recall@{k}", f"ndcg@{k}")}
        self.count = 0
        self._ranks: list[np.ndarray] | None = [] if keep_ranks else None

    def add(self, ranks: torch.Tensor) -> None:
        for name, values in ranking_metrics(ranks, self.ks).items():
            self.sums[name] += float(values.sum())
        self.count += len(ranks)
        if self._ranks is not None:
            self._ranks.append(ranks.cpu().numpy().astype(np.int64))

    def ranks(self) -> np.ndarray:
        """(P,) 0-based target ranks in the order the playlists were added (UNREACHABLE for a target that cannot
        be recommended)."""
        if self._ranks is None:
            raise ValueError("these totals were made without keep_ranks=True")
        return np.concatenate(self._ranks) if self._ranks else np.zeros(0, np.int64)

    def as_vector(self) -> np.ndarray:
        return np.array([*self.sums.values(), self.count], dtype=np.float64)

    def load_vector(self, vector: np.ndarray) -> None:
        for name, value in zip(self.sums, vector[:-1]):
            self.sums[name] = float(value)
        self.count = int(vector[-1])

    def means(self) -> dict[str, float]:
        return {name: (total / self.count if self.count else 0.0) for name, total in self.sums.items()}


def evaluate_scorer(score, histories: list[np.ndarray], targets: np.ndarray, ks, batch_size: int = 256,
                    device: str | torch.device = "cpu", totals: MetricTotals | None = None) -> MetricTotals:
    """Rank each target with `score(histories (B, T) left-padded int64 tensor) -> (B, N + 1 [+ C])` scores,
    excluding each full history; returns the metric sums (add more batches, or merge workers, later)."""
    totals = totals or MetricTotals(ks)
    with torch.no_grad():  # scoped: a global switch would leak into whatever trains next in this process
        _score_batches(score, histories, targets, batch_size, device, [totals], [None])
    return totals


def evaluate_offsets(score, offsets: list[torch.Tensor], histories: list[np.ndarray], targets: np.ndarray, ks,
                     batch_size: int = 256, device: str | torch.device = "cpu",
                     totals: list[MetricTotals] | None = None) -> list[MetricTotals]:
    """`evaluate_scorer` for each of several per-song offsets (N + 1,) added to the scores (a popularity prior
    at several weights, say), with one call of `score` per batch: the model runs once, the ranking once per
    offset. Returns one MetricTotals per offset (added to `totals` when given)."""
    shifts = [lambda scores, padded, offset=offset.to(device): scores + offset for offset in offsets]
    return evaluate_variants(score, shifts, histories, targets, ks, batch_size, device, totals)


def evaluate_variants(score, variants, histories: list[np.ndarray], targets: np.ndarray, ks, batch_size: int = 256,
                      device: str | torch.device = "cpu", totals: list[MetricTotals] | None = None) -> list[MetricTotals]:
    """`evaluate_scorer` for each of several variants of the scores, `variant(scores (B, C), histories (B, T)) ->
    scores` (a prior at several weights, a blend at several weights), with one call of `score` per batch. Each
    variant sees the scores with the history already excluded (-inf) and must keep -inf where it finds it.
    Returns one MetricTotals per variant (added to `totals` when given)."""
    totals = totals or [MetricTotals(ks) for _ in variants]
    if len(totals) != len(variants):
        raise ValueError(f"{len(variants)} variants but {len(totals)} totals")
    with torch.no_grad():
        _score_batches(score, histories, targets, batch_size, device, totals, list(variants))
    return totals


POPULAR_SHARE = 0.2  # the head: the most played fifth of the catalogue (training plays)


def popular_songs(train_counts: np.ndarray, share: float = POPULAR_SHARE) -> np.ndarray:
    """(N,) bool over items 1..N: the `share` of songs with the most training plays (ties broken by item)."""
    order = np.argsort(-train_counts, kind="stable")
    popular = np.zeros(len(train_counts), bool)
    popular[order[: int(round(share * len(train_counts)))]] = True
    return popular


def evaluate_by_popularity(score, histories: list[np.ndarray], targets: np.ndarray, train_counts: np.ndarray, ks,
                           batch_size: int = 256, device: str | torch.device = "cpu") -> tuple[MetricTotals, dict]:
    """`evaluate_scorer` in one pass, split by whether the target is a popular song (`popular_songs`) or in the
    long tail: models that learn from plays win on the first, content on the second. Returns the totals over
    all targets and {"popular": {...}, "long_tail": {...}} with each band's playlists and metric means."""
    popular = popular_songs(train_counts)[np.asarray(targets) - 1]
    bands, overall = {}, MetricTotals(ks)
    for band, rows in (("popular", np.flatnonzero(popular)), ("long_tail", np.flatnonzero(~popular))):
        totals = evaluate_scorer(score, [histories[i] for i in rows], np.asarray(targets)[rows], ks, batch_size, device)
        bands[band] = {"playlists": totals.count, "metrics": totals.means()}
        overall.load_vector(overall.as_vector() + totals.as_vector())
    bands["popular_share"] = POPULAR_SHARE
    return overall, bands


def _score_batches(score, histories, targets, batch_size, device, totals: list[MetricTotals], variants: list) -> None:
    from mmrec.models.bert4rec import left_pad

    for start in range(0, len(histories), batch_size):
        chunk = histories[start:start + batch_size]
        padded = torch.from_numpy(left_pad(chunk, max(1, max(len(h) for h in chunk)))).to(device)
        scores = exclude_history(score(padded).float(), padded)  # once a batch, whatever the variants
        batch_targets = torch.from_numpy(targets[start:start + batch_size]).to(device)
        for sums, variant in zip(totals, variants):
            varied = scores if variant is None else variant(scores, padded)  # -inf (excluded) stays -inf
            sums.add(target_ranks(varied, batch_targets).cpu())
