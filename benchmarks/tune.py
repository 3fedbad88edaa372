"""Ray Tune: trials completed per hour and the best validation NDCG@20 reached, with ASHA vs without (FIFO),
on the same space, the same sampled trials and the same epochs per trial, in the same run.

    .venv/bin/python benchmarks/tune.py [--artifact-root artifacts] [--trials 8] [--epochs 4]
                                        [--space tune_spaces/demo.yaml] [--concurrency 2]

Needs a prepared and embedded artifact root (run `make demo` first). Both sweeps use configs/demo.yaml's train
settings, one Train worker per trial, `--concurrency` trials at a time, and the same `tune.seed`, so ASHA and
FIFO see the same trial settings; FIFO runs every trial for `--epochs`, ASHA stops the weak ones at its rungs.
Nothing is registered. Prints a table and writes it to reports/benchmark-tune/ (each sweep's own report,
plots included, is in reports/benchmark-tune-<scheduler>-<time>/).
"""

from __future__ import annotations

import argparse
import json
import os
import time

SCHEDULERS = ("asha", "fifo")


def sweep(root: str, scheduler: str, args: argparse.Namespace, stamp: str) -> dict:
    from mmrec.config import load_config
    from mmrec.tune import run as tune

    name = f"benchmark-tune-{scheduler}-{stamp}"
    config = load_config("configs/demo.yaml", {
        "artifact_root": root, "tune.space": args.space, "tune.name": name, "tune.scheduler": scheduler,
        "tune.num_samples": args.trials, "tune.trial_epochs": args.epochs, "tune.trial_workers": 1,
        "tune.max_concurrent_trials": args.concurrency, "tune.trial_driver_cpus": 0, "tune.seed": 0,
        "tune.register_model": False, "train.patience": args.epochs})
    started = time.time()
    tune.run(config)
    seconds = time.time() - started
    with open(os.path.join(root, "reports", name, "results.json")) as f:
        trials = json.load(f)["trials"]
    return {"scheduler": scheduler, "seconds": seconds, "trials": len(trials),
            "stopped": sum(t["epochs"] < args.epochs for t in trials),
            "epochs": sum(t["epochs"] for t in trials), "best": max(t["best"] for t in trials),
            "trials_per_hour": len(trials) / seconds * 3600}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact-root", default="artifacts")
    parser.add_argument("--space", default="tune_spaces/demo.yaml")
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=4, help="epochs per trial (ASHA's horizon)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once, one Train worker each")
    args = parser.parse_args()
    root = os.path.abspath(args.artifact_root)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    # The dashboard serves the State API, which Ray Train's placement-group cleaner needs between trials.
    ray.init(include_dashboard=True, log_to_driver=False, logging_level="ERROR")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rows = [sweep(root, scheduler, args, stamp) for scheduler in SCHEDULERS]
    ray.shutdown()

    lines = [f"space {args.space}, {args.trials} trials x {args.epochs} epochs, {args.concurrency} at a time",
             "", "| scheduler | wall s | trials | stopped early | epochs run | trials/hour | best valid NDCG@20 |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['scheduler']} | {r['seconds']:.0f} | {r['trials']} | {r['stopped']} | {r['epochs']} | "
              f"{r['trials_per_hour']:.0f} | {r['best']:.4f} |" for r in rows]
    asha, fifo = rows
    lines += ["", f"ASHA / FIFO: trials per hour {asha['trials_per_hour'] / fifo['trials_per_hour']:.2f}x, "
              f"best NDCG@20 {asha['best'] / fifo['best']:.3f}x"]
    print("\n".join(lines))
    out = os.path.join(root, "reports", "benchmark-tune")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, f"results-{stamp}.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
