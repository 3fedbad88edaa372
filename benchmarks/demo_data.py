"""Demo corpus generation: time and peak memory as the corpus grows, streaming vs holding it all.

    .venv/bin/python benchmarks/demo_data.py [--sizes 5000 20000]

Each measurement runs in a fresh process that generates the slices one after another and writes them to a
temporary folder, then reports its own peak RSS. `streaming` is what `mmrec demo-data` does per worker (one
slice in memory at a time); `whole corpus` is the baseline that builds every playlist first and writes at the
end, as a naive generator would. Peak memory should stay flat for streaming as the corpus grows.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = r"""
import json, resource, sys, tempfile, time
import numpy as np
from pathlib import Path
from mmrec.demo.config import DemoDataConfig
from mmrec.demo.corpus import make_catalogue, make_playlist, make_slice, slice_bounds, slice_file_name
mode, playlists, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cfg = DemoDataConfig(playlists=playlists)
cat = make_catalogue(cfg)
start = time.time()
if mode == "streaming":
    for first, last in slice_bounds(cfg):
        data, _ = make_slice(cat, cfg, first, last)
        Path(f"{out}/{slice_file_name(first, last)}").write_bytes(data)
else:
    everything = []
    for first, last in slice_bounds(cfg):
        rng = np.random.default_rng([cfg.seed, 1, first])
        everything.append([make_playlist(cat, cfg, pid, rng)[0] for pid in range(first, last + 1)])
    for (first, last), playlists_ in zip(slice_bounds(cfg), everything):
        Path(f"{out}/{slice_file_name(first, last)}").write_text(json.dumps({"playlists": playlists_}, indent=4))
print(json.dumps({"seconds": time.time() - start, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(mode: str, playlists: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-c", CHILD, mode, str(playlists), out], capture_output=True, text=True, check=True
        )
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[5000, 20000], metavar=("SMALL", "LARGE"))
    args = parser.parse_args()
    small, large = args.sizes
    rows = []
    for mode in ("streaming", "whole corpus"):
        a, b = measure(mode, small), measure(mode, large)
        rows.append((mode, a, b))
        print(f"measured {mode}", flush=True)
    print(f"\n| generator | peak MB @ {small:,} | peak MB @ {large:,} | memory ratio | playlists/s @ {large:,} |")
    print("|---|---|---|---|---|")
    for mode, a, b in rows:
        print(
            f"| {mode} | {a['peak_mb']:.0f} | {b['peak_mb']:.0f} | {b['peak_mb'] / a['peak_mb']:.2f}x "
            f"| {large / b['seconds']:.0f} |"
        )
    streaming, whole = rows[0][2], rows[1][2]
    print(f"\npeak memory at {large:,} playlists, streaming / whole corpus: {streaming['peak_mb'] / whole['peak_mb']:.2f}")


if __name__ == "__main__":
    main()
