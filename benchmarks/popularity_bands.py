"""Where a model wins and loses by the target song's popularity: test NDCG@20 by the target's training plays, for
a registered model under several scoring priors, alone and as registered (blended with EASE where validation
chose a hybrid), EASE, kept peer ranks, and the model blended with this EASE at weights chosen on validation.

    .venv/bin/python benchmarks/popularity_bands.py --root /tmp/peerdemo --model <registered run name> \
        --peer /tmp/peerdemo/reports/peer/recbole-seed0.json --priors 0 0.5 1 1.3 --blend 0 0.1 0.15 0.2 0.3

- Bands: the target's plays in the training histories (items.parquet's train_count), lower edges --bands. Songs
  held out of training (train.cold_share > 0) would count their plays there too: the peer runs hold none out.
- Priors: the model's whole scoring prior (trained logit adjustment + validated weight) set to each value in turn;
  the model's own validated value is always scored too. Nothing is chosen on test.
- EASE (lambda --ease-l2) fitted on the training histories and scored on the same split.
- --peer: any kept result with per-playlist test ranks (peer.py's recbole-seed<N>.json) shown beside.
- The registered hybrid (models/hybrid.py), when the model has one: its own EASE and weight.
- --blend: the same hybrid with the EASE fitted here (--ease-l2) at a weight chosen on validation from the values
  given (the model's own prior kept); test reported at the chosen weight. With --joint, the prior too: the pair of
  --priors (and the model's own) and weight best on validation, as `mmrec train` chooses it (models/hybrid.py).
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", required=True, help="artifact root holding data/ and models/")
    parser.add_argument("--model", required=True, help="registered model (a folder name under models/)")
    parser.add_argument("--peer", action="append", default=[], help="a kept result JSON with test_ranks")
    parser.add_argument("--priors", type=float, nargs="*", default=[0.0, 0.5, 1.0])
    parser.add_argument("--blend", type=float, nargs="*", default=[], help="EASE weights to choose from on validation")
    parser.add_argument("--joint", action="store_true",
                        help="with --blend: also choose the scoring prior (from --priors and the model's own) with the "
                        "blend weight on validation")
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
    from mmrec.models.hybrid import Hybrid, by_prior, choose_blend, choose_weight, prior_shift, scorer_with

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
    registered = registry.load_model(artifacts.resolve(f"{args.root}/models/{args.model}"))
    model = registered.model
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
    if registered.hybrid is not None:
        hybrid = registered.hybrid
        inside = f", the model's prior {hybrid.model_prior:g}" if hybrid.model_prior is not None else ""
        rows.append((f"as registered: hybrid, EASE weight {hybrid.weight:g} (lambda {hybrid.ease.l2:g}{inside})",
                     ndcg(registered.scorer(), test)))
    if args.blend and args.joint:  # the prior chosen with the blend weight, as `mmrec train` registers a hybrid
        shifts = {prior: prior_shift(model, prior) for prior in sorted({*args.priors, own})}
        (prior, weight), on_valid = choose_blend(scorer, ease, args.blend, valid.histories, valid.targets,
                                                 f"ndcg@{K}", (K,), shifts=shifts)
        print("blend with EASE, validation NDCG@20 by prior and weight: " + "; ".join(
            f"prior {p}: " + ", ".join(f"{w} {v:.4f}" for w, v in by_weight.items())
            for p, by_weight in by_prior(on_valid, f"ndcg@{K}").items()), flush=True)
        rows.append((f"model (prior {prior:g}) + EASE, weight {weight:g} (both chosen on validation)",
                     ndcg(scorer_with(Hybrid(ease, weight, prior, shifts[prior]), scorer), test)))
    if args.blend:
        chosen, on_valid = choose_weight(scorer, ease, args.blend, valid.histories, valid.targets, f"ndcg@{K}", (K,))
        print("blend with EASE, validation NDCG@20 by weight: "
              + ", ".join(f"{b:g}: {m[f'ndcg@{K}']:.4f}" for b, m in on_valid.items()), flush=True)
        rows.append((f"model + EASE (lambda {args.ease_l2:g}), weight {chosen:g} (chosen on validation)",
                     ndcg(scorer_with(Hybrid(ease, chosen), scorer), test)))

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
