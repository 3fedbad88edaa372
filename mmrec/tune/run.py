"""Ray wrapper of `mmrec tune`: a Ray Tune sweep whose trials are `mmrec train` runs, then the winner registered.

Each trial is a small driver (Ray's recommended Train + Tune pattern) that builds the same TorchTrainer as
`mmrec train` with the trial's settings and forwards rank 0's per-epoch metrics to Tune; ASHA stops weak trials
early on the validation metric (train.metric). The sweep's state lives in <artifact_root>/runs/<sweep>/ and each
trial's checkpoints in <artifact_root>/runs/<sweep>-<trial id>/, so running the same sweep again resumes it.
Afterwards: reports/<sweep>/results.md (trials ranked), metric_by_setting.png, learning_curves.png; the best
trial is registered as models/<sweep>/ (its lineage in the card) and evaluated once on the test targets.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

from mmrec import artifacts, figures
from mmrec.config import MMRecConfig
from mmrec.layout import read_items
from mmrec.ray_runtime import cluster_gpus, init_ray, train_storage
from mmrec.train import run as train
from mmrec.tune.space import Dimension, read_space, trial_settings

log = logging.getLogger("mmrec.tune")
# A trial's driver is a Python process with torch imported that waits on its Train workers; asking Ray for its
# memory also keeps the request non-empty when its CPU share is 0.
TRIAL_DRIVER_MEMORY = 512 * 1024**2


def sweep_name(config: MMRecConfig) -> str:
    return config.tune.name or f"tune-{Path(config.tune.space).stem}"


def param_space(dimensions: list[Dimension]) -> dict:
    from ray import tune

    rules = {"choice": lambda v: tune.choice([list(x) if isinstance(x, tuple) else x for x in v]),
             "grid": lambda v: tune.grid_search([list(x) if isinstance(x, tuple) else x for x in v]),
             "uniform": lambda v: tune.uniform(*v), "loguniform": lambda v: tune.loguniform(*v),
             "randint": lambda v: tune.randint(*v)}
    return {d.name: rules[d.rule](d.values) for d in dimensions}


def trial_config(config: MMRecConfig, sampled: dict, trial_id: str, sweep: str) -> tuple[MMRecConfig, str]:
    settings = trial_settings(config.train, sampled).model_copy(update={"register_model": False, "run_name": ""})
    return config.model_copy(update={"train": settings}), f"{sweep}-{trial_id}"


def with_trial_budget(config: MMRecConfig) -> MMRecConfig:
    """The train settings every trial starts from: train's, with the sweep's own epochs and workers if set."""
    update = {"epochs": config.tune.trial_epochs or config.train.epochs,
              "workers": config.tune.trial_workers or config.train.workers}
    return config.model_copy(update={"train": config.train.model_copy(update=update)})


def run(config: MMRecConfig) -> dict[str, str]:
    config = with_trial_budget(config)
    cfg = config.tune
    dimensions = read_space(cfg.space)  # a bad space fails here, before Ray starts
    read_items(config.artifact_root)
    sweep = sweep_name(config)
    root = artifacts.resolve(config.artifact_root)
    base = config.model_copy(update={"artifact_root": root.uri}).model_dump(mode="json")
    started = time.time()
    init_ray()

    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    def trial(sampled: dict) -> None:
        trial_mmrec, name = trial_config(MMRecConfig.model_validate(base), sampled, tune.get_context().get_trial_id(),
                                         sweep)
        train.fit(trial_mmrec, name, callbacks=(TuneReportCallback(),))

    gpus = cluster_gpus() if config.train.use_gpu != "no" else 0
    if gpus:  # fractional GPUs let trials share a device
        config = config.model_copy(update={"train": config.train.model_copy(update={"gpus_per_worker": cfg.trial_gpus})})
        base = config.model_copy(update={"artifact_root": root.uri}).model_dump(mode="json")
    scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=config.train.epochs,
                               grace_period=cfg.grace_period, reduction_factor=cfg.reduction_factor)
                 if cfg.scheduler == "asha" else FIFOScheduler())
    storage_path, storage_filesystem = train_storage(config.artifact_root, "runs")
    sweep_path = f"{storage_path.rstrip('/')}/{sweep}"
    trainable = tune.with_resources(trial, {"CPU": cfg.trial_driver_cpus, "memory": TRIAL_DRIVER_MEMORY})
    if tune.Tuner.can_restore(sweep_path, storage_filesystem=storage_filesystem):
        log.info("resuming sweep %s", root.join("runs", sweep).uri)
        tuner = tune.Tuner.restore(sweep_path, trainable, resume_unfinished=True, resume_errored=True,
                                   storage_filesystem=storage_filesystem)
    else:
        tuner = tune.Tuner(
            trainable, param_space=param_space(dimensions),
            tune_config=tune.TuneConfig(metric=config.train.metric, mode="max", scheduler=scheduler,
                                        search_alg=BasicVariantGenerator(max_concurrent=cfg.max_concurrent_trials,
                                                                         random_state=cfg.seed),
                                        num_samples=cfg.num_samples),
            run_config=tune.RunConfig(name=sweep, storage_path=storage_path, storage_filesystem=storage_filesystem),
        )
    grid = tuner.fit()
    trials = _trials(grid, config, dimensions)
    if not trials:
        raise artifacts.ArtifactError(f"sweep {sweep}: no trial reported a metric (see {root.join('runs', sweep).uri})")
    out = root.join("reports", sweep)
    outputs = {"results": _report(trials, config, dimensions, out, time.time() - started)}
    if cfg.register_model:
        outputs["model"] = _register_best(trials[0], config, sweep, len(trials))
    return outputs


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    sweep = sweep_name(config)
    root = artifacts.resolve(config.artifact_root)
    rows = [("report", root.join("reports", sweep, "results.md").uri)]
    try:
        results = artifacts.read_json(root.join("reports", sweep, "results.json"))
        best = results["trials"][0]
        rows.append(("best trial", f"{best['trial_id']} {results['metric']} {best['best']:.4f} "
                     f"({', '.join(f'{k}={_fmt(v)}' for k, v in best['settings'].items())})"))
        rows.append(("trials", f"{len(results['trials'])}, stopped early: "
                     f"{sum(t['epochs'] < results.get('epochs', 0) for t in results['trials'])}"))
    except artifacts.ArtifactError:
        pass
    return rows


# --- after the sweep --------------------------------------------------------------------------------------

def _trials(grid, config: MMRecConfig, dimensions: list[Dimension]) -> list[dict]:
    """One row per trial that reported: its settings, metric history and best value, ranked best first."""
    metric, rows = config.train.metric, []
    for result in grid:
        frame = result.metrics_dataframe
        if frame is None or metric not in frame:
            continue
        history = frame[metric].tolist()
        trial_id = (result.metrics or {}).get("trial_id") or Path(result.path).name.split("_")[-2]
        rows.append({"trial_id": trial_id, "settings": {d.name: result.config.get(d.name) for d in dimensions},
                     "best": float(max(history)), "history": [float(v) for v in history],
                     "epochs": len(history), "error": bool(result.error)})
    return sorted(rows, key=lambda r: -r["best"])


def _report(trials: list[dict], config: MMRecConfig, dimensions: list[Dimension], out, seconds: float) -> str:
    metric = config.train.metric
    names = [d.name for d in dimensions]
    lines = [f"# Sweep {sweep_name(config)}: {len(trials)} trials, ranked by best validation {metric}", "",
             f"space: `{config.tune.space}`, scheduler: {config.tune.scheduler}, {seconds:.0f} s", "",
             "| rank | trial | " + " | ".join(names) + f" | best {metric} | epochs |",
             "|---|---|" + "---|" * len(names) + "---|---|"]
    for rank, row in enumerate(trials, 1):
        values = [_fmt(row["settings"][n]) for n in names]
        lines.append(f"| {rank} | {row['trial_id']} | " + " | ".join(values) +
                     f" | {row['best']:.4f} | {row['epochs']}{' (stopped)' if row['epochs'] < config.train.epochs else ''} |")
    artifacts.write_text(out.join("results.md"), "\n".join(lines) + "\n")
    artifacts.write_json(out.join("results.json"), artifacts.card(
        trials=trials, space=config.tune.space, metric=metric, epochs=config.train.epochs,
        scheduler=config.tune.scheduler, seconds=round(seconds, 1)))
    _plots(trials, names, metric, out)
    print("\n".join(lines), flush=True)
    return out.join("results.md").uri


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "+".join(str(v) for v in value) or "(ids)"
    return str(value)


def _plots(trials: list[dict], names: list[str], metric: str, out) -> None:
    columns = max(1, min(3, len(names)))
    rows = math.ceil(len(names) / columns)
    figure, axes = figures.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False)
    for axis, name in zip(axes.flat, names):
        labels = [_fmt(t["settings"][name]) for t in trials]
        numeric = all(isinstance(t["settings"][name], (int, float)) and not isinstance(t["settings"][name], bool)
                      for t in trials)
        xs = [t["settings"][name] for t in trials] if numeric else [sorted(set(labels)).index(x) for x in labels]
        axis.scatter(xs, [t["best"] for t in trials])
        if not numeric:
            axis.set_xticks(range(len(set(labels))), sorted(set(labels)), rotation=20)
        axis.set(xlabel=name, ylabel=f"best valid {metric}")
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    figures.save(figure, out.join("metric_by_setting.png"))
    figure, axis = figures.subplots(figsize=(6, 3.6))
    for t in trials:
        axis.plot(range(1, len(t["history"]) + 1), t["history"], marker="o", label=t["trial_id"])
    axis.set(xlabel="epoch", ylabel=f"valid {metric}", title="learning curves (short lines: stopped by ASHA)")
    axis.legend(fontsize=7)
    figures.save(figure, out.join("learning_curves.png"))


def _register_best(best: dict, config: MMRecConfig, sweep: str, trials: int) -> str:
    """models/<sweep>/ from the best trial's best epoch, with its lineage; then one test evaluation."""
    from mmrec.evaluate import run as evaluate

    trial_mmrec, name = trial_config(config, best["settings"], best["trial_id"], sweep)
    run_folder = artifacts.resolve(config.artifact_root).join("runs", name)
    checkpoint = train.last_checkpoint(run_folder)
    state = artifacts.read_json(checkpoint.join("state.json"))
    weights = artifacts.read_bytes(checkpoint.join("best.safetensors"))
    lineage = {"sweep": sweep, "trial": best["trial_id"], "trials": trials, "space": config.tune.space,
               "settings": best["settings"], "best_valid": best["best"]}
    uri = train.register(trial_mmrec, sweep, state, weights, read_items(config.artifact_root), lineage=lineage)
    evaluation = config.model_copy(update={"evaluate": config.evaluate.model_copy(
        update={"model": sweep, "split": "test"})})
    evaluate.run(evaluation)
    return uri
