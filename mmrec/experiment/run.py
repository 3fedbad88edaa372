"""`mmrec experiment`: the paper's tables in one command: baselines and modality ablations over seeds.

The grid (YAML, e.g. configs/experiments/paper.yaml) lists cells; each is MostPop, EASE, or a trained model
given as overrides of the `train` section (architecture, modalities, fusion, content_trainable, ...). Every cell
runs on the same prepared split with the same base settings (so the same size and budget), for seeds
0..experiment.seeds-1 (MostPop and EASE are deterministic: one run). Each finished (cell, seed) is written to
reports/<name>/cells/ at once, so a rerun skips it: a half-finished grid resumes where it stopped. At the end:
reports/<name>/results.json, results.md (mean and 95% interval per metric) and results.png (bars of
train.metric, NDCG@20 by default).
Trained cells run as many at a time as the cluster holds (experiment.max_concurrent_cells; each a Ray task that
drives its own Ray Train worker group of train.workers), one after another when only one fits.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from pathlib import Path

import numpy as np

from mmrec import artifacts, figures, layout
from mmrec.artifacts import ArtifactError
from mmrec.config import ConfigError, MMRecConfig, read_yaml
from mmrec.evaluate.metrics import evaluate_by_popularity
from mmrec.experiment.stats import mean_and_interval
from mmrec.layout import read_content, read_items, read_split, train_counts
from mmrec.models.content_knn import ContentKNN
from mmrec.models.ease import dense_solve_bytes
from mmrec.models.hybrid import tuned_ease as fit_on_validation
from mmrec.models.popularity import MostPopular
from mmrec.train.config import TrainConfig

log = logging.getLogger("mmrec.experiment")
BASELINES = ("mostpop", "ease", "content_knn", "oracle")  # untrained scorers: one run, no seeds


def read_grid(path: str) -> list[dict]:
    """Cells [{name, model, train}] from the grid file, checked: unique names, known models, valid train keys."""
    grid = read_yaml(path, "the experiment grid")
    if not isinstance(grid, dict) or not isinstance(grid.get("cells"), list) or not grid["cells"]:
        raise ConfigError(f"{path}: expected a mapping with a non-empty list 'cells'")
    cells, names = [], set()
    for number, cell in enumerate(grid["cells"]):
        where = f"{path}: cells[{number}]"
        if not isinstance(cell, dict) or not cell.get("name"):
            raise ConfigError(f"{where}: each cell needs a 'name'")
        unknown = set(cell) - {"name", "model", "train"}
        if unknown:
            raise ConfigError(f"{where}: unknown keys {sorted(unknown)} (valid: name, model, train)")
        model = cell.get("model", "train")
        if model not in (*BASELINES, "train"):
            raise ConfigError(f"{where}: model {model!r} is not one of {', '.join(BASELINES)}, train")
        if cell["name"] in names:
            raise ConfigError(f"{where}: the name {cell['name']!r} is used twice")
        names.add(cell["name"])
        overrides = cell.get("train") or {}
        if model == "train":
            bad = set(overrides) - set(TrainConfig.model_fields)
            if bad:
                raise ConfigError(f"{where}: unknown train keys {sorted(bad)}")
        cells.append({"name": cell["name"], "model": model, "train": overrides})
    return cells


def report_location(config: MMRecConfig):
    name = config.experiment.name or Path(config.experiment.grid).stem
    return artifacts.resolve(config.artifact_root).join("reports", name)


def run(config: MMRecConfig) -> dict[str, str]:
    cfg = config.experiment
    cells = read_grid(cfg.grid)
    out = report_location(config)
    started = time.time()
    rows, trained = [], []
    for cell in cells:
        seeds = [0] if cell["model"] in BASELINES else list(range(cfg.seeds))
        for seed in seeds:
            target = out.join("cells", f"{_slug(cell['name'])}-seed{seed}.json")
            key = _cell_key(config, cell, seed)
            if target.exists() and artifacts.read_json(target).get("key") == key:
                log.info("%s, seed %d: done before, kept", cell["name"], seed)
                rows.append(artifacts.read_json(target))
            elif cell["model"] in BASELINES:
                rows.append(_finish(target, cell, seed, key, _run_cell(config, cell, seed)))
            else:
                trained.append((target, cell, seed, key))
    slots = _cell_slots(config) if trained else 0
    if slots <= 1:
        for target, cell, seed, key in trained:
            log.info("%s, seed %d: running", cell["name"], seed)
            rows.append(_finish(target, cell, seed, key, _run_cell(config, cell, seed)))
    else:
        rows += _run_concurrently(config, trained, slots)
    table = aggregate(cells, rows, cfg.split)
    summary_rows = {"grid": cfg.grid, "split": cfg.split, "seeds": cfg.seeds, "cells": table,
                    "seconds": round(time.time() - started, 1)}
    artifacts.write_json(out.join("results.json"), artifacts.card(**summary_rows))
    markdown = results_markdown(table, cfg)
    artifacts.write_text(out.join("results.md"), markdown)
    plot = bar_chart(table, config.train.metric, out.join("results.png"))
    print(markdown, flush=True)
    return {"results": out.join("results.md").uri, "json": out.join("results.json").uri, "plot": plot}


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    out = report_location(config)
    results = artifacts.read_json(out.join("results.json"))
    metric = config.train.metric
    best = max(results["cells"], key=lambda c: c["metrics"][metric]["mean"])
    return [("report", out.join("results.md").uri),
            (f"best {metric}", f"{best['name']}: {best['metrics'][metric]['mean']:.4f}")]


# --- one cell ---------------------------------------------------------------------------------------------

def _finish(target, cell: dict, seed: int, key: str, outcome: dict) -> dict:
    """A finished (cell, seed) saved at once, so a stopped grid resumes after it."""
    result = {"cell": cell["name"], "seed": seed, "key": key, **outcome}
    artifacts.write_json(target, result)
    return result


def _cell_slots(config: MMRecConfig) -> int:
    """Trained cells that fit at once: GPUs (or else CPUs) over what one cell's Train workers take."""
    from mmrec.ray_runtime import cluster_gpus, init_ray

    import ray

    if config.experiment.max_concurrent_cells == 1:
        return 1
    init_ray()
    gpus = cluster_gpus() if config.train.use_gpu != "no" else 0
    workers = config.train.workers
    fits = (int(gpus // (workers * config.train.gpus_per_worker)) if gpus else
            int(ray.cluster_resources().get("CPU", 1) // (workers * config.train.cpus_per_worker)))
    limit = config.experiment.max_concurrent_cells
    return max(1, min(fits, limit) if limit else fits)


def _run_concurrently(config: MMRecConfig, trained: list[tuple], slots: int) -> list[dict]:
    """Trained cells as Ray tasks, `slots` at a time; each result is saved as soon as its cell finishes. A task
    only drives its cell's Train run (whose workers hold the resources), so it asks for no CPU itself."""
    import ray

    remote_cell = ray.remote(num_cpus=0, max_retries=0)(_run_cell_from_dict)
    settings = config.model_dump(mode="json")
    queue, running, rows = list(trained), {}, []
    log.info("%d trained cells, %d at a time", len(trained), slots)
    while queue or running:
        while queue and len(running) < slots:
            target, cell, seed, key = queue.pop(0)
            log.info("%s, seed %d: running", cell["name"], seed)
            running[remote_cell.remote(settings, cell, seed)] = (target, cell, seed, key)
        done, _ = ray.wait(list(running), num_returns=1)
        target, cell, seed, key = running.pop(done[0])
        rows.append(_finish(target, cell, seed, key, ray.get(done[0])))
        log.info("%s, seed %d: done", cell["name"], seed)
    return rows


def _run_cell_from_dict(settings: dict, cell: dict, seed: int) -> dict:
    return _run_cell(MMRecConfig.model_validate(settings), cell, seed)


def _run_cell(config: MMRecConfig, cell: dict, seed: int) -> dict:
    cfg = config.experiment
    if cell["model"] in BASELINES:
        root = config.artifact_root
        items = read_items(root)
        counts = train_counts(items)
        train = read_split(root, "train")
        notes, parameters = {}, 0  # untrained scorers learn no parameters but popularity and EASE's weights
        if cell["model"] == "mostpop":
            model, parameters = MostPopular(counts), len(counts)
        elif cell["model"] == "ease":
            model, notes = tuned_ease(config, train.histories, items.num_rows, counts)
            parameters = int(len(model.items)) ** 2
        elif cell["model"] == "content_knn":
            modalities = cell["train"].get("modalities", config.train.modalities)
            model = ContentKNN([read_content(root, m).for_items(items.num_rows, f"embeddings/{m}.parquet")
                                for m in modalities])
            notes = {"modalities": list(modalities)}
        else:
            from mmrec.demo.oracle import GenrePopularityOracle, read_song_genres

            genres = read_song_genres(layout.demo_corpus(config.artifact_root, config.demo_data.output).uri, items.sort_by("item_idx")["track_uri"].to_pylist())
            model, parameters = GenrePopularityOracle(genres, counts), len(counts)
        split = read_split(root, cfg.split)
        totals, bands = evaluate_by_popularity(model.score, split.histories, split.targets, counts, config.train.ks)
        return {"metrics": totals.means(), "playlists": totals.count, "parameters": parameters,
                "by_popularity": bands, **notes}

    from mmrec.evaluate import run as evaluate
    from mmrec.train import run as train

    started = time.time()
    trained_config = _train_config(config, cell, seed)
    existing = train.registered_already(trained_config)  # e.g. the pipeline's own model: no need to start Ray Train
    outputs = {"model": existing} if existing else train.run(trained_config)
    evaluation_config = trained_config.model_copy(update={"evaluate": trained_config.evaluate.model_copy(
        update={"model": train.run_name(trained_config), "split": cfg.split, "ks": trained_config.train.ks})})
    evaluate.run(evaluation_config)
    model_loc = artifacts.resolve(outputs["model"])
    evaluations = artifacts.read_json(model_loc.join("evaluation.json"))
    evaluation = evaluations[cfg.split]
    trained = artifacts.read_json(model_loc.join("metrics.json"))
    epochs = len(trained["history"])
    result = {"metrics": evaluation["metrics"], "playlists": evaluation["playlists"], "model": outputs["model"],
              "started": round(started, 2), "finished": round(time.time(), 2),
              "epochs": epochs, "best_epoch": trained["best_epoch"] + 1,
              # early stopping ended it (not the epoch cap) when it ran fewer epochs than allowed
              "stopped_early": epochs < trained_config.train.epochs,
              "parameters": artifacts.read_json(model_loc.join("card.json")).get("parameters"),
              # the weight of EASE in the registered hybrid (0: validation kept the model alone)
              "hybrid_weight": trained.get("hybrid", {}).get("weight", 0.0),
              # and the model's popularity prior inside it (the whole weight; validated with the EASE weight)
              "hybrid_prior": trained.get("hybrid", {}).get("model_prior")}
    if f"{cfg.split}_by_popularity" in evaluations:
        result["by_popularity"] = evaluations[f"{cfg.split}_by_popularity"]
    cold = evaluations.get(f"{cfg.split}_cold")
    if cold and cold.get("playlists"):
        result["cold"] = cold
    return result


def tuned_ease(config: MMRecConfig, histories: list[np.ndarray], num_items: int, counts: np.ndarray):
    """EASE with the lambda of experiment.ease_l2 that scores best on the validation targets (train.metric); the
    notes name it, the validation score of every lambda tried, the solve and its memory."""
    cfg = config.experiment
    valid = read_split(config.artifact_root, "valid")
    best, tried = fit_on_validation(histories, num_items, counts, cfg.ease_l2, cfg.ease_max_dense_songs,
                                    valid.histories, valid.targets, config.train.metric, config.train.ks)
    notes = {"ease_mode": best.mode, "ease_songs_fitted": int(len(best.items)), "ease_l2": best.l2,
             "ease_gb": round(dense_solve_bytes(len(best.items)) / 1e9, 3)}
    if tried:
        notes["ease_l2_valid"] = {f"{l2:g}": round(value, 5) for l2, value in tried.items()}
    return best, notes


def _train_config(config: MMRecConfig, cell: dict, seed: int) -> MMRecConfig:
    """The base train settings with the cell's overrides and the seed; the run name stays derived from the
    settings, so a cell identical to an earlier run (the pipeline's own model) reuses it."""
    merged = {**config.train.model_dump(), **cell["train"], "seed": seed, "run_name": "", "register_model": True}
    try:
        return config.model_copy(update={"train": TrainConfig.model_validate(merged)})
    except ValueError as err:
        raise ConfigError(f"{config.experiment.grid}: cell {cell['name']!r}: {err}") from None


def _cell_key(config: MMRecConfig, cell: dict, seed: int) -> str:
    """What a finished cell depends on: its definition, the base settings and the data; a change reruns it."""
    root = artifacts.resolve(config.artifact_root)
    basis = [cell, seed, config.train.model_dump(mode="json"), config.experiment.split,
             config.experiment.ease_l2, config.experiment.ease_max_dense_songs,
             layout.card_hash(root.join("data", "card.json")), layout.card_hash(root.join("embeddings", "card.json"))]
    return hashlib.sha256(json.dumps(basis, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# --- the table ----------------------------------------------------------------------------------------------

def aggregate(cells: list[dict], rows: list[dict], split: str) -> list[dict]:
    table = []
    for cell in cells:
        runs = [r for r in rows if r["cell"] == cell["name"]]
        if not runs:
            raise ArtifactError(f"no results for cell {cell['name']!r}")
        metrics = {}
        for key in runs[0]["metrics"]:
            mean, half_width = mean_and_interval([r["metrics"][key] for r in runs])
            metrics[key] = {"mean": mean, "interval": half_width, "values": [r["metrics"][key] for r in runs]}
        extra = {k: v for k, v in runs[0].items() if k.startswith("ease_")}
        cold_runs = [r["cold"] for r in runs if "cold" in r]
        if cold_runs:  # means over seeds of the model, popularity and random on the held-out songs' targets
            extra["cold"] = {"playlists": cold_runs[0]["playlists"], "songs_held_out": cold_runs[0]["songs_held_out"],
                             **{who: {k: float(np.mean([c[who][k] for c in cold_runs])) for k in cold_runs[0][who]}
                                for who in ("model", "popularity", "random")}}
        banded = [r["by_popularity"] for r in runs if "by_popularity" in r]
        if banded:  # means over seeds, per popularity band
            extra["by_popularity"] = {
                band: {"playlists": banded[0][band]["playlists"],
                       "metrics": {k: float(np.mean([b[band]["metrics"][k] for b in banded]))
                                   for k in banded[0][band]["metrics"]}}
                for band in ("popular", "long_tail")}
            extra["by_popularity"]["popular_share"] = banded[0]["popular_share"]
        if runs[0].get("parameters") is not None:
            extra["parameters"] = runs[0]["parameters"]
        if "epochs" in runs[0]:  # trained cells: epochs to early stopping over the seeds
            extra["epochs"] = [r["epochs"] for r in runs]
            extra["best_epochs"] = [r["best_epoch"] for r in runs]
            extra["stopped_early"] = all(r.get("stopped_early", True) for r in runs)
            extra["hybrid_weights"] = [r.get("hybrid_weight", 0.0) for r in runs]
            extra["hybrid_priors"] = [r.get("hybrid_prior") for r in runs]
        table.append({"name": cell["name"], "model": cell["model"], "train": cell["train"], "runs": len(runs),
                      "metrics": metrics, **extra})
    return table


def _priors_inside(row: dict) -> str:
    """", the model's prior inside the blend 0.8, -" for the blended runs of a cell ("-": no blend)."""
    priors = row.get("hybrid_priors") or []
    if not any(p is not None for p in priors):
        return ""
    return ", the model's prior inside it " + ", ".join(
        "-" if not w else f"{p:g}" for w, p in zip(row["hybrid_weights"], priors))


def results_markdown(table: list[dict], cfg) -> str:
    keys = list(table[0]["metrics"])
    lines = [f"# Results on the {cfg.split} targets (mean ± 95% interval over seeds)", "",
             "| model | runs | " + " | ".join(keys) + " | parameters | epochs: best / run |",
             "|---|---|" + "---|" * len(keys) + "---|---|"]
    for row in table:
        cells = []
        for key in keys:
            value = row["metrics"][key]
            cells.append(f"{value['mean']:.4f}" + (f" ± {value['interval']:.4f}" if row["runs"] > 1 else ""))
        size = f"{row['parameters']:,}" if row.get("parameters") is not None else "-"
        epochs = "-"
        if "epochs" in row:
            epochs = ", ".join(f"{b} / {e}" for b, e in zip(row["best_epochs"], row["epochs"]))
            epochs += "" if row["stopped_early"] else " (epoch cap reached)"
        lines.append(f"| {row['name']} | {row['runs']} | " + " | ".join(cells) + f" | {size} | {epochs} |")
    notes = [f"- EASE: {row['ease_mode']} solve over {row['ease_songs_fitted']} songs ({row.get('ease_gb', 0):.2f} GB), "
             f"lambda {row['ease_l2']:g}" + (" chosen on the validation targets from " + ", ".join(
                 f"{l2} ({value:.4f})" for l2, value in row["ease_l2_valid"].items()) if row.get("ease_l2_valid") else "")
             for row in table if "ease_mode" in row]
    notes += [f"- {row['name']}: scored as registered, blended with EASE at weight "
              f"{', '.join(f'{w:g}' for w in row['hybrid_weights'])}" + _priors_inside(row)
              + " (chosen on validation; 0 = the model alone; train.ease_blend_weights, train.ease_blend_priors)"
              for row in table if any(row.get("hybrid_weights", []))]
    lines += [""] + notes if notes else []
    banded = [row for row in table if "by_popularity" in row]
    if banded:
        share = banded[0]["by_popularity"]["popular_share"]
        lines += ["", f"## By target popularity: the {share:.0%} most played songs (training plays) and the long tail",
                  "", "| model | targets | playlists | " + " | ".join(keys) + " |",
                  "|---|---|---|" + "---|" * len(keys)]
        for row in banded:
            for band, label in (("popular", "popular"), ("long_tail", "long tail")):
                values = row["by_popularity"][band]
                lines.append(f"| {row['name']} | {label} | {values['playlists']} | "
                             + " | ".join(f"{values['metrics'][k]:.4f}" for k in keys) + " |")
    cold_rows = [row for row in table if "cold" in row]
    if cold_rows:
        lines += ["", "## Cold songs: targets held out of training, ranked over the full catalogue", "",
                  "| model | held-out songs | playlists | scorer | " + " | ".join(keys) + " |",
                  "|---|---|---|---|" + "---|" * len(keys)]
        for row in cold_rows:
            cold = row["cold"]
            for who in ("model", "popularity", "random"):
                lines.append(f"| {row['name']} | {cold['songs_held_out']} | {cold['playlists']} | {who} | "
                             + " | ".join(f"{cold[who][k]:.4f}" for k in keys) + " |")
    return "\n".join(lines) + "\n"


def bar_chart(table: list[dict], metric: str, loc) -> str:
    names = [row["name"] for row in table]
    means = [row["metrics"][metric]["mean"] for row in table]
    errors = [row["metrics"][metric]["interval"] for row in table]
    figure, axis = figures.subplots(figsize=(max(5, 0.9 * len(names) + 2), 3.6))
    axis.bar(range(len(names)), means, yerr=errors, capsize=4, color="tab:blue")
    axis.set_xticks(range(len(names)), names, rotation=30, ha="right")
    axis.set(ylabel=metric, title=f"{metric} (mean, 95% interval over seeds)")
    uri = figures.save(figure, loc)
    return uri
