"""`mmrec prepare` against a single-process plain-Python reader of the same slices, at two corpus sizes.

    .venv/bin/python benchmarks/prepare.py [--sizes 10000 100000] [--corpora /tmp/mmrec-bench]

For each size: generate the corpus's slices once (cached under --corpora), then in the same run
  * baseline: one Python process reads every slice with json.load and does prepare's work the plain way
    (pos order, repeats dropped, play counts, filters to a fixed point, item ids and names, leave-one-out
    splits) down to the same parquet files;
  * mmrec: `prepare.run` on a fresh local Ray using every core, while a sampler sums the proportional set size
    (PSS: shared memory counted once) of every Ray process and the driver, twice a second.
Each side runs in a fresh process, so neither inherits the other's memory.
Prints playlists/s for both and their ratio, and peak memory at each size and their ratio.
Goals: >= 1.6x the baseline on 2 cores; peak memory at the large size < 1.3x that at the small one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from multiprocessing import Pool
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from memory import PeakMemory  # benchmarks/memory.py (the script's folder is on sys.path)

from mmrec.config import load_config
from mmrec.demo.config import DemoDataConfig
from mmrec.demo.corpus import make_catalogue, make_slice, slice_bounds, slice_file_name

THRESHOLD, MIN_LENGTH = 5, 3


def _write_slice(args) -> None:
    cfg, folder, first, last = args
    path = folder / slice_file_name(first, last)
    if not path.exists():
        data, _ = make_slice(make_catalogue(cfg), cfg, first, last)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.rename(path)


def generate(size: int, root: Path) -> Path:
    folder = root / f"mpd-{size}" / "data"
    folder.mkdir(parents=True, exist_ok=True)
    cfg = DemoDataConfig(playlists=size)
    with Pool(os.cpu_count()) as pool:
        pool.map(_write_slice, [(cfg, folder, a, b) for a, b in slice_bounds(cfg)])
    return folder


def baseline(folder: Path, out: Path) -> dict:
    """Prepare the obvious way, in one process, down to the same output files."""
    started = time.time()
    playlists, songs = {}, {}
    for path in sorted(folder.glob("mpd.slice.*.json")):
        with open(path) as f:
            for p in json.load(f)["playlists"]:
                tracks = sorted(p["tracks"], key=lambda t: t["pos"])
                for t in tracks:
                    songs.setdefault(t["track_uri"], t)
                playlists[p["pid"]] = list(dict.fromkeys(t["track_uri"] for t in tracks))
    while True:
        counts = Counter(u for s in playlists.values() for u in s)
        kept = {pid: [u for u in s if counts[u] >= THRESHOLD] for pid, s in playlists.items()}
        kept = {pid: s for pid, s in kept.items() if len(s) >= MIN_LENGTH}
        if len(kept) == len(playlists) and all(len(kept[p]) == len(playlists[p]) for p in kept):
            break
        playlists = kept
    ids = {u: i for i, u in enumerate(sorted(counts, key=lambda u: (-counts[u], u)), start=1)}
    out.mkdir(parents=True, exist_ok=True)
    items = [{"item_idx": i, **{f: songs[u][f] for f in ("track_uri", "track_name", "artist_uri", "artist_name",
             "album_uri", "album_name", "duration_ms")}, "count": counts[u]} for u, i in ids.items()]
    pq.write_table(pa.Table.from_pylist(items), out / "items.parquet")
    sequences = {pid: [ids[u] for u in s] for pid, s in playlists.items()}
    for name, cut, target in (("train", 2, None), ("valid", 2, -2), ("test", 1, -1)):
        rows = [{"pid": pid, "history": s[:-cut], "target": s[target] if target else None} for pid, s in sequences.items()]
        pq.write_table(pa.Table.from_pylist(rows), out / f"{name}.parquet")
    return {"seconds": time.time() - started, "playlists": len(sequences)}


def mmrec_prepare(folder: Path, root: Path) -> dict:
    import ray

    from mmrec.data import run as prepare

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    config = load_config(overrides={
        "artifact_root": str(root / "artifacts"), "prepare.input": str(folder),
        "prepare.min_song_count": THRESHOLD, "prepare.challenge_set": "",
    })
    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    try:
        with PeakMemory() as memory:
            started = time.time()
            outputs = prepare.run(config)
            seconds = time.time() - started
    finally:
        ray.shutdown()
    card = json.loads(Path(outputs["card"]).read_text())
    return {"seconds": seconds, "playlists": card["playlists"], "peak_mb": memory.peak / 2**20}


def measure(kind: str, folder: Path, out: Path) -> dict:
    """One measurement in a fresh process, so neither side inherits the other's memory."""
    result = subprocess.run(
        [sys.executable, __file__, "--measure", kind, str(folder), str(out)], capture_output=True, text=True
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    print("\n".join(line for line in result.stderr.splitlines() if "mmrec.prepare:" in line), flush=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs=2, default=[10_000, 100_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--corpora", type=Path, default=Path("/tmp/mmrec-bench"))
    parser.add_argument("--measure", nargs=3, metavar=("KIND", "FOLDER", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        kind, folder, out = args.measure
        run = baseline if kind == "baseline" else mmrec_prepare
        print(json.dumps(run(Path(folder), Path(out))))
        return
    rows = []
    for size in args.sizes:
        folder = generate(size, args.corpora)
        print(f"{size:,} playlists generated at {folder}", flush=True)
        plain = measure("baseline", folder, args.corpora / f"baseline-{size}")
        ours = measure("mmrec", folder, args.corpora / f"run-{size}")
        assert plain["playlists"] == ours["playlists"], (plain, ours)
        rows.append((size, plain, ours))
        print(f"{size:,}: baseline {plain['seconds']:.1f} s, mmrec {ours['seconds']:.1f} s", flush=True)
    print(f"\n{os.cpu_count()} cores")
    print("| playlists | baseline playlists/s | mmrec prepare playlists/s | speed-up | peak memory (all Ray processes) |")
    print("|---|---|---|---|---|")
    for size, plain, ours in rows:
        print(f"| {size:,} | {size / plain['seconds']:,.0f} | {size / ours['seconds']:,.0f} "
              f"| {plain['seconds'] / ours['seconds']:.2f}x | {ours['peak_mb']:,.0f} MB |")
    (small, _, a), (large, _, b) = rows
    print(f"\npeak memory {large:,} / {small:,} playlists: {b['peak_mb'] / a['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
