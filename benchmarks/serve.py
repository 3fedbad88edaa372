"""Serving: latency and throughput of the Ray Serve endpoint against the in-process scoring floor, 1 vs 2 model
replicas, and a model replica killed under load.

    .venv/bin/python benchmarks/serve.py [--artifact-root artifacts] [--requests 300] [--clients 1 8 32]

Needs the model `make demo` registers. Every request continues a real test playlist (its newest songs), k = 20.
- floor: the same requests scored in this process by `Recommender.recommend` (the core the model replicas run),
  one request per call, from as many threads as there are clients: what the model costs with no HTTP, no
  proxy, no batching.
- serve: the same requests over HTTP on 127.0.0.1 (keep-alive sessions), through Serve's proxy, the ingress
  and the batched model deployment, from `clients` threads.
Goal: p99 at 8 clients <= 3x the floor's p99 at 8. Then throughput at the largest client count with 1 and
with 2 model replicas, and 8 clients for 10 s while one of 2 model replicas is killed after 3 s.
Both Serve data planes are measured, each on its own fresh local Ray (`--data-plane` picks one): `proxy`, Serve's
Python HTTP proxy and actor calls (the default), and `high_throughput`, Serve's HAProxy ingress and gRPC between
replicas (serve.high_throughput; HIGH_THROUGHPUT_ENV on a cluster's nodes).
Every phase is bounded by its request count and a time limit; only 127.0.0.1 is contacted (HAProxy listens on
every interface while the high_throughput phase runs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np


def percentiles(latencies: list[float]) -> tuple[float, float]:
    return float(np.percentile(latencies, 50) * 1000), float(np.percentile(latencies, 99) * 1000)


def run_load(call, bodies: list[dict], clients: int, limit_s: float = 120.0) -> dict:
    """`clients` threads share the bodies; latency of each call, overall throughput."""
    latencies, failures, lock = [], [], threading.Lock()
    deadline = time.time() + limit_s

    def worker(chunk):
        for body in chunk:
            if time.time() > deadline:
                return
            started = time.perf_counter()
            ok = call(body)
            elapsed = time.perf_counter() - started
            with lock:
                (latencies if ok else failures).append(elapsed)

    chunks = [bodies[i::clients] for i in range(clients)]
    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, chunks))
    seconds = time.perf_counter() - started
    p50, p99 = percentiles(latencies) if latencies else (float("nan"), float("nan"))
    return {"clients": clients, "requests": len(latencies), "failed": len(failures), "p50_ms": p50, "p99_ms": p99,
            "per_second": len(latencies) / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--artifact-root", default="artifacts")
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--data-plane", choices=["proxy", "high_throughput", "both"], default="both")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.data_plane == "both":  # each data plane is a property of the Ray it starts: one process each
        for plane in ("proxy", "high_throughput"):
            command = [sys.executable, __file__, "--artifact-root", args.artifact_root, "--config", args.config,
                       "--requests", str(args.requests), "--clients", *map(str, args.clients), "--data-plane", plane]
            subprocess.run(command, check=True)
        return
    if args.data_plane == "high_throughput":
        from mmrec.serve.config import HIGH_THROUGHPUT_ENV

        os.environ.update(HIGH_THROUGHPUT_ENV)
        os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "1")  # no 30 s drain at the end

    import ray
    import requests
    import torch
    from ray import serve

    from mmrec import artifacts
    from mmrec.config import load_config
    from mmrec.layout import read_items, read_split
    from mmrec.models import registry
    from mmrec.serve.app import build_app
    from mmrec.serve.recommender import Recommender, Request
    from mmrec.serve.run import application_args

    config = load_config(args.config, {"artifact_root": args.artifact_root})
    app_args = application_args(config, {})
    items = read_items(config.artifact_root)
    uris = dict(zip(items["item_idx"].to_pylist(), items["track_uri"].to_pylist()))
    histories = read_split(config.artifact_root, "test").histories
    rng = np.random.default_rng(0)
    bodies = [{"tracks": [uris[int(i)] for i in histories[p][-30:]], "k": 20, "exclude_seen": True}
              for p in rng.choice(len(histories), size=args.requests, replace=True)]

    # The floor: the replica's core, in this process.
    torch.set_num_threads(os.cpu_count() or 1)
    core = Recommender(registry.load_model(artifacts.resolve(app_args["artifact_root"]).join("models", app_args["model"])))
    floor = {c: run_load(lambda b: bool(core.recommend([Request(tuple(b["tracks"]), b["k"])])), bodies, c)
             for c in args.clients}
    print(f"model {app_args['model']}: {len(core.catalogue)} songs; torch threads {torch.get_num_threads()}")

    ray.init(include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    serve.start(http_options={"host": "127.0.0.1", "port": 8123})
    url = "http://127.0.0.1:8123"
    sessions = threading.local()

    def http_call(body: dict) -> bool:
        if not hasattr(sessions, "s"):
            sessions.s = requests.Session()
        try:
            return sessions.s.post(f"{url}/recommend", json=body, timeout=30).status_code == 200
        except requests.RequestException:
            return False

    def deploy(replicas: int) -> None:
        deployments = {"Recommender": {"num_replicas": replicas, "max_ongoing_requests": 64,
                                       "user_config": {"max_batch_size": 16, "batch_wait_timeout_s": 0.005}},
                       "Ingress": {"num_replicas": 1, "max_ongoing_requests": 256}}
        serve.run(build_app({**app_args, "model_cpus": 0.5, "ingress_cpus": 0.25}, deployments), name="mmrec",
                  route_prefix="/")
        for body in bodies[:10]:  # warm-up
            http_call(body)

    deploy(1)
    served = {c: run_load(http_call, bodies, c) for c in args.clients}
    rows = ["| clients | floor p50 ms | floor p99 ms | floor req/s | serve p50 ms | serve p99 ms | serve req/s | failed | "
            "serve p99 / floor p99 |", "|---|---|---|---|---|---|---|---|---|"]
    for c in args.clients:
        f, s = floor[c], served[c]
        rows.append(f"| {c} | {f['p50_ms']:.1f} | {f['p99_ms']:.1f} | {f['per_second']:.0f} | {s['p50_ms']:.1f} | "
                    f"{s['p99_ms']:.1f} | {s['per_second']:.0f} | {s['failed']} | {s['p99_ms'] / f['p99_ms']:.2f}x |")
    most = max(args.clients)
    deploy(2)
    two = run_load(http_call, bodies, most)
    rows += ["", f"{most} clients, 1 model replica: {served[most]['per_second']:.0f} req/s; 2 replicas: "
             f"{two['per_second']:.0f} req/s ({two['per_second'] / served[most]['per_second']:.2f}x)"]

    # 8 clients for 10 s; one of the 2 model replicas killed after 3 s.
    stop, statuses, lock = time.time() + 10, [], threading.Lock()

    def client(i):
        while time.time() < stop:
            ok = http_call(bodies[(i * 37 + len(statuses)) % len(bodies)])
            with lock:
                statuses.append(ok)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    time.sleep(3)
    victim = next(a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                  if a["namespace"] == "serve" and "#Recommender#" in a["name"])
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    for t in threads:
        t.join(timeout=60)
    logs = os.path.join(ray._private.worker._global_node.get_logs_dir_path(), "serve")
    retries = sum(Path(os.path.join(logs, f)).read_text().count("model replica lost")
                  for f in os.listdir(logs) if f.startswith("replica_mmrec_Ingress"))
    rows.append(f"replica killed under load (8 clients, 10 s): {len(statuses)} requests, "
                f"{statuses.count(False)} failed, {retries} model call(s) retried by the ingress on the other replica")
    serve.shutdown()
    ray.shutdown()
    print(f"\n## data plane: {args.data_plane}\n", flush=True)
    print("\n".join(rows), flush=True)


if __name__ == "__main__":
    main()
