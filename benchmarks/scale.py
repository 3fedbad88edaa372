"""Each stage's time, peak memory and artifact size at two corpus sizes, the linear fit between them, and the
extrapolation to the full MPD that docs/cluster.md turns into a plan.

    .venv/bin/python benchmarks/scale.py [--sizes 10000 100000] [--root /tmp/mmrec-scale] [--config configs/demo.yaml]

For each size the demo corpus is generated with that many playlists (the demo's settings otherwise: songs drawn
from its pool of 150,000, songs with >= 10 plays kept), then demo-data, prepare, embed, train (1 epoch,
sampled softmax, as configs/mpd-full.yaml trains) and evaluate each run in a fresh process on a fresh local Ray
with every core, while benchmarks/memory.py samples the PSS of every Ray process and the driver.
Each stage's cost is fitted as fixed + rate x work, where work is what the stage loops over:
  demo-data, prepare: playlists;  embed: songs;  train: training windows (one epoch);
  evaluate: test playlists x songs (every song is scored for every playlist).
Writes benchmarks/results/scale.json and prints the tables for docs/cluster.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from memory import PeakMemory  # benchmarks/memory.py (the script's folder is on sys.path)

STAGES = ("demo-data", "prepare", "embed", "train", "evaluate")
# The full MPD: 1,000,000 playlists, 66.3M entries, 2.26M songs; leave-one-out leaves a test target for every one.
MPD = {"playlists": 1_000_000, "songs": 2_262_292, "windows": 1_000_000}


def settings(size: int, root: Path) -> dict:
    return {"artifact_root": str(root / f"mpd-{size}"), "demo_data.playlists": size,
            "train.epochs": 1, "train.patience": 1, "train.loss": "sampled", "train.negatives": 1024,
            "train.run_name": "scale", "evaluate.model": "scale"}


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def measure(stage: str, config_path: str, overrides: dict) -> dict:
    """One stage in this process, on a fresh local Ray: seconds, peak MB, and what it wrote."""
    import ray

    from mmrec.config import load_config
    from mmrec.stages import command

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    config = load_config(config_path, overrides)
    ray.init(log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with PeakMemory() as memory:
            started = time.time()
            command(stage).run(config)
            seconds = time.time() - started
    finally:
        ray.shutdown()
    root = Path(config.artifact_root)
    written = {"demo-data": [root / "demo-corpus"], "prepare": [root / "data"], "embed": [root / "embeddings"],
               "train": [root / "runs" / "scale", root / "models" / "scale"],
               "evaluate": [root / "models" / "scale" / "evaluation.json"]}[stage]
    size = sum(folder_bytes(p) if p.is_dir() else (p.stat().st_size if p.exists() else 0) for p in written)
    return {"seconds": seconds, "peak_mb": memory.peak / 2**20, "artifact_mb": size / 2**20}


def work(root: Path) -> dict:
    """What each stage loops over, read from the artifacts."""
    import pyarrow.parquet as pq

    card = json.loads((root / "data" / "card.json").read_text())
    songs = pq.read_metadata(root / "data" / "items.parquet").num_rows
    train_rows = pq.read_metadata(root / "data" / "train.parquet").num_rows
    test_rows = pq.read_metadata(root / "data" / "test.parquet").num_rows
    playlists = json.loads((root / "demo-corpus" / "manifest.json").read_text())["playlists"]
    return {"demo-data": playlists, "prepare": playlists, "embed": songs, "train": train_rows,
            "evaluate": test_rows * songs, "songs": songs, "kept_playlists": card["playlists"]}


def fit(small: tuple[float, float], large: tuple[float, float]) -> tuple[float, float]:
    """(fixed, rate) of cost = fixed + rate * work through two (work, cost) points."""
    (w1, c1), (w2, c2) = small, large
    rate = (c2 - c1) / (w2 - w1) if w2 != w1 else c2 / w2
    return max(0.0, c1 - rate * w1), max(rate, 0.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--root", type=Path, default=Path("/tmp/mmrec-scale"))
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--stages", nargs="+", choices=STAGES, default=list(STAGES),
                        help="stages to (re)measure; the others are taken from the last results file")
    parser.add_argument("--measure", nargs=2, metavar=("STAGE", "OVERRIDES_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        stage, overrides = args.measure
        print(json.dumps(measure(stage, args.config, json.loads(overrides))))
        return

    out = Path(__file__).parent / "results" / "scale.json"
    earlier = {int(k): v for k, v in json.loads(out.read_text())["results"].items()} if out.exists() else {}
    results: dict[int, dict] = {}
    for size in args.sizes:
        overrides = settings(size, args.root)
        results[size] = dict(earlier.get(size, {}))
        for stage in args.stages:
            run = subprocess.run([sys.executable, __file__, "--config", args.config, "--measure", stage,
                                  json.dumps(overrides)], capture_output=True, text=True)
            if run.returncode:
                raise RuntimeError(f"{stage} at {size}: {run.stderr[-4000:]}")
            results[size][stage] = json.loads(run.stdout.strip().splitlines()[-1])
            print(f"{size:,} playlists, {stage}: {results[size][stage]}", flush=True)
        results[size]["work"] = work(Path(overrides["artifact_root"]))

    small, large = args.sizes
    print(f"\n{os.cpu_count()} cores; songs: {results[small]['work']['songs']:,} at {small:,} playlists, "
          f"{results[large]['work']['songs']:,} at {large:,}")
    print(f"| stage | work | seconds @ {small:,} | seconds @ {large:,} | peak MB @ {small:,} | peak MB @ {large:,} | "
          f"artifacts MB @ {small:,} | artifacts MB @ {large:,} | time ratio | work ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    fits = {}
    units = {"demo-data": "playlists", "prepare": "playlists", "embed": "songs", "train": "windows",
             "evaluate": "playlists x songs"}
    for stage in STAGES:
        a, b = results[small][stage], results[large][stage]
        wa, wb = results[small]["work"][stage], results[large]["work"][stage]
        fits[stage] = fit((wa, a["seconds"]), (wb, b["seconds"]))
        print(f"| {stage} | {units[stage]} | {a['seconds']:.0f} | {b['seconds']:.0f} | {a['peak_mb']:,.0f} | "
              f"{b['peak_mb']:,.0f} | {a['artifact_mb']:,.1f} | {b['artifact_mb']:,.1f} | "
              f"{b['seconds'] / a['seconds']:.2f}x | {wb / wa:.2f}x |")
    full = {"demo-data": MPD["playlists"], "prepare": MPD["playlists"], "embed": MPD["songs"],
            "train": MPD["windows"], "evaluate": MPD["playlists"] * MPD["songs"]}
    print(f"\nFull MPD on this machine ({os.cpu_count()} cores), from the fit (fixed s + rate per unit of work):")
    print("| stage | fixed s | rate (s per unit) | full-MPD work | full-MPD hours here |")
    print("|---|---|---|---|---|")
    for stage in STAGES:
        fixed, rate = fits[stage]
        print(f"| {stage} | {fixed:.0f} | {rate:.3g} | {full[stage]:.3g} | {(fixed + rate * full[stage]) / 3600:,.1f} |")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cores": os.cpu_count(), "sizes": args.sizes, "results": results,
                               "fits": fits, "full_mpd_work": full}, indent=2))
    print(f"\nwritten {out}")


if __name__ == "__main__":
    main()
