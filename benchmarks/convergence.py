"""How fast and how far training settings learn: validation NDCG@20 per epoch, side by side, in one run.

    .venv/bin/python benchmarks/convergence.py '{"windows": "recent"}' '{"windows": "sliding"}'
    .venv/bin/python benchmarks/convergence.py --base '{"architecture": "bert4rec"}' '{"dropout": 0.2}' '{"dropout": 0.5}'
    .venv/bin/python benchmarks/convergence.py --seeds 0 1 2 '{"learning_rate": 1e-3}' '{"learning_rate": 3e-3}'

Each argument is a set of `train` overrides on top of --base (SASRec, ID-only, by default) and the config's train
section; every variant trains mmrec's core in this process (no Ray: one worker, so `batch_size` is the global
batch), on the prepared split under the config's artifact root (run `make demo` first), to early stopping on the
validation targets or --minutes. Prints each epoch and a table of the best validation NDCG@20, the epoch it came
at, the epochs run and the time; writes the curves as a PNG (--plot) and JSON (--json). With --test it also scores
the test targets every epoch, for analysis only (nothing is chosen by them): the table adds test NDCG@20 at the best
validation epoch, the figure peer.py compares with RecBole. Every table also splits the best epoch's validation
NDCG@20 by target popularity (the most played fifth of the songs, and the long tail), as peer.py splits test.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mmrec.config import load_config  # noqa: E402
from mmrec.evaluate.metrics import MetricTotals, ndcg_at_k, popular_songs  # noqa: E402
from mmrec.layout import read_content, read_items, read_split, sample_rows, train_counts  # noqa: E402
from mmrec.train.loop import (WeightAverage, adopt_best_prior, build_model, model_config,  # noqa: E402
                              optimizer_for, record_epoch, torch_seed, train_epoch, validate, windows_for_training)
from mmrec.train.sequences import epoch_batches  # noqa: E402


def train_variant(config, minutes: float, say, with_test: bool = False) -> dict:
    cfg, root = config.train, config.artifact_root
    items = read_items(root)
    num_items = items.num_rows
    contents = {m: read_content(root, m).for_items(num_items, m) for m in cfg.modalities}
    train, valid = read_split(root, "train"), read_split(root, "valid")
    counts = train_counts(items)
    bert_config = model_config(cfg, num_items, {m: t.shape[1] for m, t in contents.items()})
    model = build_model(bert_config, contents, cfg.seed, counts, cfg.negative_sampling)
    optimizer = optimizer_for(model, cfg)
    average = WeightAverage(model, cfg.model_weight_averaging) if cfg.model_weight_averaging else None
    windows, label_from = windows_for_training(train.histories, cfg)
    lengths = np.array([len(w) for w in windows])
    rows = sample_rows(len(valid.pids), cfg.valid_playlists, cfg.seed)
    popular = popular_songs(counts)[valid.targets[rows] - 1]  # per validation playlist: is its target popular
    k = int(cfg.metric.split("@")[1])
    test = read_split(root, "test") if with_test else None
    state = {"epoch": -1, "best": None, "best_epoch": -1, "epochs_without_gain": 0, "stopped": False}
    curve, bands, priors, test_curve, started = [], [], [], [], time.time()
    for epoch in range(cfg.epochs):
        torch.manual_seed(torch_seed(cfg.seed, epoch, 0))  # as Ray Train's rank 0 draws its dropout
        steps = epoch_batches(lengths, cfg.batch_size, np.random.default_rng([cfg.seed, epoch]), 1)
        loss = train_epoch(model, optimizer, [[windows[i] for i in step[0]] for step in steps], cfg,
                           bert_config.mask_token, np.random.default_rng([cfg.seed, epoch, 0]), torch.device("cpu"),
                           label_from=[label_from[step[0]] for step in steps], average=average)
        judged = model if average is None else average.model  # what the Ray worker validates and keeps
        by_prior = validate(judged, [valid.histories[i] for i in rows], valid.targets[rows], cfg.ks,
                            cfg.eval_batch_size, torch.device("cpu"), cfg.popularity_weights,
                            [MetricTotals(cfg.ks, keep_ranks=True) for _ in cfg.popularity_weights])
        totals, prior_weight = adopt_best_prior(judged, by_prior, cfg.popularity_weights, cfg.metric)
        priors.append(prior_weight)
        value = totals.means()[cfg.metric]
        record_epoch(state, value, loss, cfg.patience)
        curve.append(round(value, 4))
        per_playlist = ndcg_at_k(torch.from_numpy(totals.ranks()), k).numpy()
        bands.append([round(float(per_playlist[popular].mean()), 4), round(float(per_playlist[~popular].mean()), 4)])
        if test is not None:  # analysis only: what each epoch's weights score on test, never used to choose
            test_curve.append(round(validate(judged, test.histories, test.targets, cfg.ks, cfg.eval_batch_size,
                                             torch.device("cpu"), [priors[-1]])[0].means()[cfg.metric], 4))
        say(f"epoch {epoch + 1}: {len(steps)} steps, loss {loss:.3f}, valid {cfg.metric} {value:.4f} "
            f"(popular {bands[-1][0]:.4f}, long tail {bands[-1][1]:.4f}; popularity prior {priors[-1]:g})"
            + (f", test {test_curve[-1]:.4f}" if test_curve else "") + f" ({time.time() - started:.0f} s)")
        if state["stopped"] or time.time() - started > minutes * 60:
            break
    return {"best": state["best"], "best_epoch": state["best_epoch"] + 1, "epochs": len(curve),
            "windows": len(windows), "seconds": round(time.time() - started), "curve": curve,
            "popularity_weight": priors[state["best_epoch"]], "priors": priors,
            "popular": bands[state["best_epoch"]][0], "long_tail": bands[state["best_epoch"]][1], "bands": bands,
            **({"test": test_curve[state["best_epoch"]], "test_curve": test_curve} if test_curve else {})}


def mean_spread(values: list[float]) -> str:
    """'0.1234', or '0.1234 +- 0.0056' over several seeds (sample standard deviation)."""
    spread = f" +- {np.std(values, ddof=1):.4f}" if len(values) > 1 else ""
    return f"{np.mean(values):.4f}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", help="JSON train overrides, one variant each")
    parser.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"))
    parser.add_argument("--base", default='{"architecture": "sasrec", "modalities": []}')
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=30.0, help="time cap per variant")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--plot", default="", help="PNG of the validation curves")
    parser.add_argument("--test", action="store_true",
                        help="also score the test targets every epoch (analysis only, never to choose): the table adds "
                        "test NDCG@20 at the best validation epoch, the figure a peer's test compares with")
    parser.add_argument("--json", default="", help="write every run's curves to this JSON file")
    parser.add_argument("--seeds", type=int, nargs="+", default=None, metavar="SEED",
                        help="train every variant once per seed; the table gives the mean, spread and each seed's best "
                        "(default: the config's train.seed)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    base = {"epochs": args.epochs, "patience": args.patience, **json.loads(args.base)}
    results = []
    for text in args.variants:
        variant = json.loads(text)
        runs = []
        for seed in args.seeds or [None]:
            settings = {**base, **variant, **({} if seed is None else {"seed": seed})}
            config = load_config(args.config, {f"train.{k}": json.dumps(v) if isinstance(v, list) else v
                                               for k, v in settings.items()})
            print(f"--- {json.dumps(variant)} seed {config.train.seed}", flush=True)
            runs.append(train_variant(config, args.minutes, lambda m: print(f"  {m}", flush=True), args.test))
        results.append({"variant": json.dumps(variant), "runs": runs})
    print("\n| variant | best valid NDCG@20 | each seed | popular targets | long-tail targets | popularity prior |"
          + (" test NDCG@20 there | each seed |" if args.test else "")
          + " at epoch | epochs run | windows | seconds |\n|---|---|---|---|---|---|" + ("---|---|" if args.test else "")
          + "---|---|---|---|")
    for r in results:
        best = [run["best"] for run in r["runs"]]
        cells = [f"{mean_spread(best)} | {', '.join(f'{v:.4f}' for v in best)}",
                 mean_spread([run["popular"] for run in r["runs"]]), mean_spread([run["long_tail"] for run in r["runs"]]),
                 ", ".join(f"{run['popularity_weight']:g}" for run in r["runs"])]
        if args.test:
            tested = [run["test"] for run in r["runs"]]
            cells.append(f"{mean_spread(tested)} | {', '.join(f'{v:.4f}' for v in tested)}")
        print(f"| `{r['variant']}` | " + " | ".join(cells)
              + f" | {', '.join(str(run['best_epoch']) for run in r['runs'])} | "
              f"{', '.join(str(run['epochs']) for run in r['runs'])} | {r['runs'][0]['windows']:,} | "
              f"{sum(run['seconds'] for run in r['runs'])} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"base": base, "results": results}, indent=1))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        figure, axis = plt.subplots(figsize=(7, 4))
        for number, r in enumerate(results):
            for i, run in enumerate(r["runs"]):  # one colour per variant, one line per seed
                axis.plot(range(1, len(run["curve"]) + 1), run["curve"], marker=".", color=f"C{number}",
                          label=r["variant"] if i == 0 else None)
        axis.set(xlabel="epoch", ylabel="valid NDCG@20", title=f"base {args.base}")
        axis.legend(fontsize=7)
        figure.savefig(args.plot, dpi=110, bbox_inches="tight")
        print(f"curves: {args.plot}")


if __name__ == "__main__":
    main()
