"""Where a model wins and loses by the target song's popularity: test NDCG@20 by the target's training plays, for
a registered model under several scoring priors, EASE, kept peer ranks, and a blend of the model with EASE.

    .venv/bin/python benchmarks/popularity_bands.py --root /tmp/peerdemo --model <registered run name> \
        --peer /tmp/peerdemo/reports/peer/recbole-seed0.json --priors 0 0.5 1 1.3 --blend 0 0.1 0.15 0.2 0.3

- Bands: the target's plays in the training histories (items.parquet's train_count), lower edges --bands. Songs
  held out of training (train.cold_share > 0) would count their plays there too: the peer runs hold none out.
- Priors: the model's whole scoring prior (trained logit adjustment + validated weight) set to each value in turn;
  the model's own validated value is always scored too. Nothing is chosen on test.
- EASE (lambda --ease-l2) fitted on the training histories and scored on the same split.
- --peer: any kept result with per-playlist test ranks (peer.py's recbole-seed<N>.json) shown beside.
- --blend: (1 - b) x the model's z-scored scores (its own prior) + b x EASE's, b chosen on validation from the
  values given; test reported at the chosen b (an ensemble's gain: content's value is judged model for model).
Prints one markdown table (NDCG@20 overall and per band); seconds on the demo.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

K = 20


def ndcg_of_ranks(ranks) -> np.ndarray:
    """Per-playlist NDCG@K (float64) of 0-based target ranks, by mmrec's own metric code."""
    from mmrec.evaluate.metrics import ndcg_at_k

    return ndcg_at_k(torch.as_tensor(np.asarray(ranks), dtype=torch.int64), K).double().numpy()


def by_band(values: np.ndarray, plays: np.ndarray, edges: list[float]) -> list[float]:
    """Means of `values` over the playlists whose target has [edges[i], edges[i + 1]) training plays (NaN if none)."""
    masks = [(plays >= lo) & (plays < hi) for lo, hi in zip(edges, edges[1:])]
    return [float(values[mask].mean()) if mask.any() else float("nan") for mask in masks]


def zscored(scores: torch.Tensor, histories: torch.Tensor | None = None) -> torch.Tensor:
    """Scores (B, N + 1) standardised per row over the songs a ranking can return: songs 1..N less the row's
    history (left-padded ids, 0 = padding), which is excluded from the ranking anyway and, scored high by a
    co-occurrence model, would make the scale depend on the history's length. Excluded columns come back -inf."""
    candidates = torch.isfinite(scores)
    if histories is not None:
        candidates.scatter_(1, histories, False)
    candidates[:, 0] = False  # padding: the column, and the histories' padding ids
    masked = scores.masked_fill(~candidates, float("nan"))
    mean = masked.nanmean(1, keepdim=True)
    spread = ((masked - mean) ** 2).nanmean(1, keepdim=True).sqrt().nan_to_num(0.0)
    return ((scores - mean) / spread.clamp_min(1e-12)).masked_fill(~candidates, float("-inf"))


def blend(first, second, weight: float):
    """A scorer: (1 - weight) x first's z-scored scores + weight x second's (over each row's candidate songs);
    column 0 and the history stay -inf."""
    def score(histories: torch.Tensor) -> torch.Tensor:
        a, b = zscored(first(histories), histories), zscored(second(histories), histories)
        both = torch.isfinite(a) & torch.isfinite(b)  # elsewhere 0 x -inf is NaN at weights 0 and 1: -inf instead
        return torch.where(both, (1 - weight) * a + weight * b, torch.full_like(a, float("-inf")))
    return score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="artifact root holding data/ and models/")
    parser.add_argument("--model", required=True, help="registered model (a folder name under models/)")
    parser.add_argument("--peer", action="append", default=[], help="a kept result JSON with test_ranks")
    parser.add_argument("--priors", type=float, nargs="*", default=[0.0, 0.5, 1.0])
    parser.add_argument("--blend", type=float, nargs="*", default=[], help="EASE weights to choose from on validation")
    parser.add_argument("--ease-l2", type=float, default=100.0)
    parser.add_argument("--bands", type=float, nargs="+", default=[0, 10, 15, 20, 30, 50, 100],
                        help="lower edges of the bands of training plays (whole numbers; the last band is open)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from mmrec import artifacts
    from mmrec.evaluate.metrics import MetricTotals, evaluate_scorer
    from mmrec.layout import read_items, read_split, train_counts
    from mmrec.models import registry
    from mmrec.models.ease import EASE

    items = read_items(args.root)
    plays = np.concatenate([[0], train_counts(items)])  # by item id
    test, valid = read_split(args.root, "test"), read_split(args.root, "valid")
    target_plays = plays[test.targets]

    def ndcg(scorer, split) -> np.ndarray:
        totals = evaluate_scorer(scorer, split.histories, split.targets, (K,),
                                 totals=MetricTotals((K,), keep_ranks=True))
        return ndcg_of_ranks(totals.ranks())

    rows = []
    for path in args.peer:
        kept = json.loads(Path(path).read_text())
        if len(kept["test_ranks"]) != len(test.targets):  # ranks are in the split's order: another split misaligns
            raise SystemExit(f"{path}: {len(kept['test_ranks']):,} test ranks, but {args.root} has "
                             f"{len(test.targets):,} test playlists: not a result of this split")
        rows.append((kept.get("model", path), ndcg_of_ranks(np.array(kept["test_ranks"]))))
    model = registry.load_model(artifacts.resolve(f"{args.root}/models/{args.model}")).model
    own = round(float(model.prior_weight()), 6)  # float32: 1.3 reads 1.29999995 and would be scored twice
    tau = model.config.logit_adjustment
    ease = EASE(read_split(args.root, "train").histories, len(plays) - 1, plays[1:], args.ease_l2)
    rows.append((f"EASE (lambda {args.ease_l2:g})", ndcg(ease.score, test)))
    scorer = model.scorer()  # the item tables once: the prior is read at each call, so one scorer serves them all
    for prior in sorted({*args.priors, own}):
        model.popularity_weight.fill_(prior - tau)
        label = f"model, prior {prior:g}" + (" (its validated one)" if prior == own else "")
        rows.append((label, ndcg(scorer, test)))
    model.popularity_weight.fill_(own - tau)
    if args.blend:
        on_valid = {b: float(ndcg(blend(scorer, ease.score, b), valid).mean()) for b in args.blend}
        chosen = max(on_valid, key=on_valid.get)
        print("blend with EASE, validation NDCG@20 by weight: "
              + ", ".join(f"{b:g}: {v:.4f}" for b, v in on_valid.items()), flush=True)
        rows.append((f"model + EASE, weight {chosen:g} (chosen on validation)", ndcg(blend(scorer, ease.score, chosen), test)))

    edges = [*args.bands, float("inf")]
    names = [f"{lo:g}-{hi - 1:g}" if hi < float("inf") else f"{lo:g}+" for lo, hi in zip(edges, edges[1:])]
    counts = [int(((target_plays >= lo) & (target_plays < hi)).sum()) for lo, hi in zip(edges, edges[1:])]
    print(f"\nTest NDCG@{K} by the target's training plays ({args.model}, {len(test.targets):,} test playlists):\n")
    print("| model | all | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    print("| test playlists | " + f"{len(test.targets):,} | " + " | ".join(f"{c:,}" for c in counts) + " |")
    for label, values in rows:
        print(f"| {label} | {values.mean():.4f} | " + " | ".join(f"{v:.3f}" for v in by_band(values, target_plays, edges))
              + " |")


if __name__ == "__main__":
    main()
