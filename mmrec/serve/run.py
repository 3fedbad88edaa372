"""`mmrec serve`: start the Serve application of serve/app.py from a Serve config file, for a registered model.

    mmrec serve --config configs/demo.yaml                    # serve until Ctrl-C; open http://127.0.0.1:8000/
    mmrec serve --config configs/demo.yaml --serve.mode=once  # one request, print the answer, shut down
    mmrec serve --config my.yaml --serve.mode=deploy          # deploy onto the cluster, check it, return

The same file works with Ray's own CLI (`serve run configs/serve.yaml`, `serve deploy`) and in KubeRay's
RayService. `mmrec serve` fills the application's args from the mmrec config (artifact root, the model the train
settings produce, embed's cover index), so both name the same model. `once` is what `make demo` runs: it asks
for songs to continue the first test playlist and writes the exchange to reports/serve/demo_request.json.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request


from mmrec import artifacts, layout
from mmrec.config import ConfigError, MMRecConfig, read_yaml
from mmrec.layout import read_items, read_split
from mmrec.ray_runtime import init_ray
from mmrec.serve.config import HIGH_THROUGHPUT_ENV

log = logging.getLogger("mmrec.serve")
IMPORT_PATH = "mmrec.serve.app:build_app"


def read_serve_file(path: str) -> dict:
    """The mmrec application of a Serve config file, checked: {name, route_prefix, args, deployments, http}."""
    document = read_yaml(path, "serve.file") or {}
    apps = [a for a in document.get("applications") or [] if isinstance(a, dict)
            and a.get("import_path") == IMPORT_PATH]
    if len(apps) != 1:
        raise ConfigError(f"{path}: applications must hold exactly one application with "
                          f"import_path: {IMPORT_PATH} (found {len(apps)})")
    app = apps[0]
    deployments = {}
    for d in app.get("deployments") or []:
        if not isinstance(d, dict) or "name" not in d:
            raise ConfigError(f"{path}: each entry of applications[].deployments needs a name")
        deployments[d["name"]] = {k: v for k, v in d.items() if k != "name"}
    unknown = set(deployments) - {"Ingress", "Recommender"}
    if unknown:
        raise ConfigError(f"{path}: unknown deployment(s) {sorted(unknown)}; mmrec has Ingress and Recommender")
    return {"name": app.get("name", "mmrec"), "route_prefix": app.get("route_prefix", "/"),
            "args": dict(app.get("args") or {}), "deployments": deployments,
            "http": dict(document.get("http_options") or {})}


def application_args(config: MMRecConfig, file_args: dict) -> dict:
    """The file's args with the model, artifact root and cover index this mmrec config names."""
    root = artifacts.resolve(config.artifact_root)
    return {**file_args, "config": "", "artifact_root": root.uri,
            "model": config.serve.model or file_args.get("model") or layout.run_name(config.train, root.uri),
            "album_art_index": file_args.get("album_art_index") or album_art_index(config).uri}


def album_art_index(config: MMRecConfig):
    """The cover index the web page shows covers from (embed.album_art_index, or the demo corpus's)."""
    return layout.modality_source(config.artifact_root, "album_art_index", config.embed.album_art_index,
                                  config.demo_data.output)


def run(config: MMRecConfig) -> dict[str, str]:
    from ray import serve

    from mmrec.serve.app import build_app

    spec = read_serve_file(config.serve.file)
    args = application_args(config, spec["args"])
    host = config.serve.host or spec["http"].get("host") or "127.0.0.1"
    port = config.serve.port or int(spec["http"].get("port") or 8000)
    layout.registered_model(args["artifact_root"], args["model"])  # a missing model says so before Ray starts
    _choose_data_plane(config)
    init_ray()
    app = build_app(args, spec["deployments"])
    started = time.time()
    serve.start(http_options={"host": host, "port": port})
    serve.run(app, name=spec["name"], route_prefix=spec["route_prefix"], logging_config={"enable_access_log": False})
    url = f"http://{host}:{port}{spec['route_prefix'].rstrip('/')}"
    log.info("serving model %s at %s/ (API docs at %s/docs), ready in %.0f s", args["model"], url, url,
             time.time() - started)
    outputs = {"url": url + "/", "model": args["model"]}
    local_url = url.replace("://0.0.0.0:", "://127.0.0.1:")  # where this process reaches its own proxy
    if config.serve.mode == "foreground":
        print(f"mmrec is serving {args['model']} at {url}/ (API: {url}/docs). Ctrl-C stops it.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            serve.shutdown()
        return outputs
    if config.serve.mode == "deploy":  # Serve's controller outlives this driver: the endpoint keeps serving
        outputs["demo_request"] = _demo_request(config, local_url)
        print(f"mmrec deployed {args['model']} at {url}/ (API: {url}/docs); `serve shutdown` stops it.", flush=True)
        return outputs
    try:
        outputs["demo_request"] = _demo_request(config, local_url)
    finally:
        serve.delete(spec["name"])
        serve.shutdown()
    return outputs


def _choose_data_plane(config: MMRecConfig) -> None:
    """Serve's high-throughput mode is the cluster's environment: it can be chosen only when this process is
    about to start a local Ray; on a running cluster, say what the cluster has."""
    import ray

    wanted = config.serve.high_throughput
    starting_local = not ray.is_initialized() and not os.environ.get("RAY_ADDRESS")
    if wanted and starting_local:
        os.environ.update(HIGH_THROUGHPUT_ENV)
        log.warning("high-throughput serving: HAProxy listens on every interface, not only %s",
                    config.serve.host or "the serve file's host")
    elif wanted:
        log.warning("serve.high_throughput applies only to a Ray that mmrec serve starts itself; this cluster's "
                    "nodes need %s in their environment", " ".join(f"{k}={v}" for k, v in HIGH_THROUGHPUT_ENV.items()))


def _demo_request(config: MMRecConfig, url: str) -> str:
    """Continue the first test playlist through HTTP; print the top songs; keep the exchange as a report."""
    items = read_items(config.artifact_root)
    uris = dict(zip(items["item_idx"].to_pylist(), items["track_uri"].to_pylist()))
    history = read_split(config.artifact_root, "test").histories[0]
    body = {"tracks": [uris[int(i)] for i in history], "k": 10}
    started = time.perf_counter()
    answer = post_json(f"{url}/recommend", body)
    seconds = time.perf_counter() - started
    lines = [f"POST {url}/recommend with a test playlist of {len(history)} songs -> {seconds * 1000:.0f} ms",
             f"{'#':>3}  {'score':>7}  song"]
    lines += [f"{rank:>3}  {song['score']:>7.3f}  {song['track_name']} - {song['artist_name']}"
              for rank, song in enumerate(answer["recommendations"], 1)]
    print("\n".join(lines), flush=True)
    report = artifacts.resolve(config.artifact_root).join("reports", "serve", "demo_request.json")
    artifacts.write_json(report, artifacts.card(request=body, answer=answer, seconds=round(seconds, 4)))
    return report.uri


def post_json(url: str, body: dict, timeout: float = 30.0) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    report = artifacts.resolve(config.artifact_root).join("reports", "serve", "demo_request.json")
    if not report.exists():
        return []
    exchange = artifacts.read_json(report)
    top = exchange["answer"]["recommendations"][:3]
    return [("one request", f"{exchange['seconds'] * 1000:.0f} ms, model {exchange['answer']['model']}"),
            ("top songs", "; ".join(f"{s['track_name']} - {s['artist_name']}" for s in top))]
