"""Ray wrapper of `mmrec train`: multimodal BERT4Rec on a Ray Train worker group (DDP), then registration.

Each worker reads the prepared splits and the content tables from the artifact root, trains on its share of
the windows, scores its share of the fixed validation playlists (summed across workers), and rank 0 writes a
checkpoint every epoch under <artifact_root>/runs/<run_name>/:
  model.safetensors (this epoch), best.safetensors (best validation epoch so far), optimizer.pt, state.json, and
  average.safetensors when the weights are averaged (train.weight_averaging: then the average is what validates,
  and what best.safetensors holds).
A lost worker restarts the group from the last checkpoint (train.max_failures); running the same run name again
resumes it. At the end the best epoch is registered as <artifact_root>/models/<run_name>/ and a training-curve
PNG is written next to the checkpoints. Test targets are never read here: `mmrec evaluate` scores them.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time

import numpy as np
import pyarrow as pa
import torch

from mmrec import artifacts, figures, layout
from mmrec.artifacts import ArtifactError
from mmrec.config import MMRecConfig
from mmrec.config_base import SCORING, marked_fields
from mmrec.layout import artist_indices, cold_items, read_content, read_items, read_split, sample_rows, train_counts, without_items
from mmrec.models import registry
from mmrec.models.bert4rec import PRIOR_BUFFERS, BERT4RecConfig
from mmrec.models.ease import dense_songs_that_fit, dense_solve_bytes
from mmrec.models.hybrid import Hybrid, by_prior, choose_blend, prior_shift, tuned_ease
from mmrec.ray_runtime import cluster_gpus, init_ray, train_storage
from mmrec.train.config import TrainConfig
from mmrec.train.loop import (WeightAverage, adopt_best_prior, build_model, freeze_song_rows, model_config,
                              optimizer_for, record_epoch, train_epoch, torch_seed, validate, windows_for_training)
from mmrec.train.sequences import epoch_batches

log = logging.getLogger("mmrec.train")


def run_name(config: MMRecConfig) -> str:
    """The run's name under runs/ and models/ (layout.run_name: train.run_name, or derived from the settings)."""
    return layout.run_name(config.train, config.artifact_root)


def run(config: MMRecConfig) -> dict[str, str]:
    cfg = config.train
    root = artifacts.resolve(config.artifact_root)
    items = read_items(config.artifact_root)  # fail here, not in a worker, when prepare has not run
    name = run_name(config)
    state, best_weights, checkpoint_path = fit(config, name)
    outputs = {"run": root.join("runs", name).uri, "checkpoint": checkpoint_path,
               "training_curve": training_curve(state["history"], cfg.metric,
                                                root.join("runs", name, "training_curve.png"))}
    log.info("best epoch %d: valid %s %.4f", state["best_epoch"] + 1, cfg.metric, state["best"])
    if cfg.register_model:
        outputs["model"] = register(config, name, state, best_weights, items)
    return outputs


def fit(config: MMRecConfig, name: str, callbacks: tuple = ()) -> tuple[dict, bytes, str]:
    """Train (or resume) the run `name` on a Ray Train worker group; returns the final state, the best epoch's
    weights (safetensors bytes) and the last checkpoint's path. `callbacks` go to Ray Train's RunConfig (Tune
    passes its report callback here)."""
    cfg = config.train
    root = artifacts.resolve(config.artifact_root)
    for modality in cfg.modalities:
        if not root.join("embeddings", f"{modality}.parquet").exists():
            raise ArtifactError(f"{root.join('embeddings', f'{modality}.parquet').uri}: not found; run "
                                f"`mmrec embed` first (or train with --train.modalities=[] for ID-only)")
    _check_resumable(root.join("runs", name), layout.fingerprint(config.train, config.artifact_root))
    init_ray()
    gpus = cluster_gpus() if cfg.use_gpu != "no" else 0
    if cfg.use_gpu == "yes" and not gpus:
        raise ArtifactError("train.use_gpu=yes, but the Ray cluster has no GPUs (use auto or no)")

    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    storage_path, storage_filesystem = train_storage(config.artifact_root, "runs")
    log.info("training %s on %d %s worker(s); checkpoints under %s", name, cfg.workers, "GPU" if gpus else "CPU",
             root.join("runs", name).uri)
    trainer = TorchTrainer(
        train_worker,
        # Workers run elsewhere (another folder, another node): they get the artifact root as an absolute URI.
        train_loop_config={"config": config.model_copy(update={"artifact_root": root.uri}).model_dump(mode="json"),
                           "fingerprint": layout.fingerprint(config.train, config.artifact_root)},
        scaling_config=ScalingConfig(num_workers=cfg.workers, use_gpu=gpus > 0,
                                     resources_per_worker={"CPU": cfg.cpus_per_worker,
                                                           **({"GPU": cfg.gpus_per_worker} if gpus else {})}),
        run_config=RunConfig(name=name, storage_path=storage_path, storage_filesystem=storage_filesystem,
                             failure_config=FailureConfig(max_failures=cfg.max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2), callbacks=list(callbacks)),
    )
    result = trainer.fit()
    if result.error:
        raise result.error
    if result.checkpoint is None:
        raise ArtifactError(f"{root.join('runs', name).uri}: training ended without a checkpoint")
    with result.checkpoint.as_directory() as folder:
        with open(f"{folder}/state.json") as file:
            state = json.load(file)
        if state["best"] is None:
            raise ArtifactError(f"{root.join('runs', name).uri}: training diverged in its first epoch (loss or "
                                "validation metric not finite); lower train.learning_rate")
        with open(f"{folder}/best.safetensors", "rb") as file:
            best_weights = file.read()
    return state, best_weights, result.checkpoint.path


def registered_already(config: MMRecConfig) -> str | None:
    """The URI of models/<run name>/ if it holds a model trained with exactly these settings on this data."""
    loc = layout.model_dir(config.artifact_root, run_name(config))
    if not loc.join("card.json").exists():
        return None
    card = artifacts.read_json(loc.join("card.json"))
    scoring = config.train.model_dump(mode="json", include=marked_fields(TrainConfig, SCORING))
    registered = {name: card.get("train", {}).get(name) for name in scoring}
    if card.get("fingerprint") == layout.fingerprint(config.train, config.artifact_root) and registered == scoring:
        return loc.uri
    return None  # other weights, or the same weights registered with other scoring settings: train (or resume) again


def last_checkpoint(run_folder):
    """The newest checkpoint folder of a run that holds a state.json, or None."""
    folders = [name for name in run_folder.folders() if name.startswith("checkpoint_")]
    for folder in reversed(folders):  # names carry the time, so the last sorted is the newest
        if run_folder.join(folder, "state.json").exists():
            return run_folder.join(folder)
    return None


def _check_resumable(run_folder, expected: str) -> None:
    """Refuse, before any worker starts, to resume a run whose last checkpoint came from other settings or data."""
    checkpoint = last_checkpoint(run_folder)
    if checkpoint and artifacts.read_json(checkpoint.join("state.json")).get("fingerprint") != expected:
        raise ArtifactError(f"{run_folder.uri}: its checkpoints come from other settings or data; choose "
                            "another train.run_name (or leave it empty for a name derived from the settings)")


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    loc = layout.model_dir(config.artifact_root, run_name(config))
    metrics = registry.read_metrics(loc)
    valid = metrics["valid"]
    lines = [("model", loc.uri), ("best epoch", f"{metrics['best_epoch'] + 1} of {len(metrics['history'])}"),
             ("valid", ", ".join(f"{k} {v:.4f}" for k, v in valid.items()))]
    hybrid = metrics.get("hybrid")
    if hybrid and hybrid["weight"]:
        prior = hybrid.get("model_prior", hybrid.get("model_prior_alone"))
        lines.append(("hybrid", f"EASE weight {hybrid['weight']:g} (lambda {hybrid['ease_l2']:g}"
                      + (f"; the model's prior {prior:g}" if prior is not None else "") + "): valid "
                      + ", ".join(f"{k} {v:.4f}" for k, v in hybrid["valid"].items())))
    elif hybrid:
        lines.append(("hybrid", "none: validation kept the model alone (no EASE weight helped)"))
    return lines


# --- the Ray Train worker ---------------------------------------------------------------------------------

def train_worker(loop_config: dict) -> None:
    import ray.train
    import ray.train.torch

    config = MMRecConfig.model_validate(loop_config["config"])
    cfg, root = config.train, config.artifact_root
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    device = ray.train.torch.get_device()

    items = read_items(root)
    num_items = items.num_rows
    contents = {m: read_content(root, m).for_items(num_items, f"{root}/embeddings/{m}.parquet")
                for m in cfg.modalities}
    train, valid = read_split(root, "train"), read_split(root, "valid")
    plays = train_counts(items)
    cold = cold_items(num_items, cfg.cold_share)  # songs no training history may hold
    plays[cold - 1] = 0
    if len(cold) and rank == 0:
        log.info("holding %d songs (%.0f%%) out of training: cold songs", len(cold), 100 * cfg.cold_share)
    bert_config = model_config(cfg, num_items, {m: t.shape[1] for m, t in contents.items()})
    artists = artist_indices(items) if cfg.unplayed_popularity == "artist" else None
    model = build_model(bert_config, contents, cfg.seed, plays, cfg.negative_sampling, artists).to(device)
    optimizer = optimizer_for(model, cfg)
    freeze_song_rows(model, cold, optimizer)
    average = WeightAverage(model, cfg.model_weight_averaging) if cfg.model_weight_averaging else None

    state = {"fingerprint": loop_config["fingerprint"], "config": bert_config.to_dict(), "epoch": -1,
             "history": [], "best": None, "best_epoch": -1, "epochs_without_gain": 0, "stopped": False, "starts": []}
    best_weights = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as folder:
            with open(f"{folder}/state.json") as file:
                state = json.load(file)
            if state["fingerprint"] != loop_config["fingerprint"]:
                raise ArtifactError(f"run {context.get_experiment_name()} holds a checkpoint from other settings or "
                                    "data; choose another train.run_name")
            model.load_state_dict(_load_weights(f"{folder}/model.safetensors"))
            optimizer.load_state_dict(torch.load(f"{folder}/optimizer.pt", weights_only=True, map_location=device))
            if average is not None:
                average.load_state_dict(_load_weights(f"{folder}/average.safetensors"))
                average.steps = state["averaged_steps"]
            if os.path.exists(f"{folder}/best.safetensors"):
                with open(f"{folder}/best.safetensors", "rb") as file:
                    best_weights = file.read()
    state["starts"].append(state["epoch"] + 1)
    say = log.info if rank == 0 else (lambda m: None)  # (a print in a Train V2 worker reaches the driver twice)
    if len(state["starts"]) > 1:
        say(f"resumed from the checkpoint of epoch {state['epoch'] + 1}")

    ddp_model = ray.train.torch.prepare_model(model)  # DDP when world > 1; `model` stays the unwrapped module
    windows, label_from = windows_for_training(without_items(train.histories, cold), cfg)
    lengths = np.array([len(w) for w in windows])
    if len(windows) < world:
        raise ArtifactError(f"{len(windows)} training windows cannot be shared by {world} workers")
    valid_rows = sample_rows(len(valid.pids), cfg.valid_playlists, cfg.seed)[rank::world]

    for epoch in range(state["epoch"] + 1, cfg.epochs):
        if state["stopped"]:
            break
        started = time.time()
        # build_model seeded torch alike on every worker (the same initial weights); without a stream of its own
        # per worker and epoch, the workers' halves of a batch would share their dropout masks.
        torch.manual_seed(torch_seed(cfg.seed, epoch, rank))
        steps = epoch_batches(lengths, cfg.batch_size, np.random.default_rng([cfg.seed, epoch]), world)  # same on all
        mine = [[windows[i] for i in step[rank]] for step in steps]
        loss = train_epoch(ddp_model, optimizer, mine, cfg, bert_config.mask_token,
                           np.random.default_rng([cfg.seed, epoch, rank]), device,
                           progress=lambda m: say(f"epoch {epoch + 1}: {m}"),
                           label_from=[label_from[step[rank]] for step in steps], average=average)
        judged = model if average is None else average.model  # the weights validated, kept and registered
        by_prior = validate(judged, [valid.histories[i] for i in valid_rows], valid.targets[valid_rows], cfg.ks,
                            cfg.eval_batch_size, device, cfg.popularity_weights)
        summed = _sum_over_workers(np.concatenate([*(t.as_vector() for t in by_prior), [loss]]), device)
        for totals, vector in zip(by_prior, np.split(summed[:-1], len(by_prior))):
            totals.load_vector(vector)
        totals, prior_weight = adopt_best_prior(judged, by_prior, cfg.popularity_weights, cfg.metric)
        metrics = {"epoch": epoch, "loss": float(summed[-1] / world), **totals.means(), "popularity_weight": prior_weight,
                   "seconds": round(time.time() - started, 2),
                   "windows_per_second": round(sum(len(w) for step in steps for w in step) / (time.time() - started), 1)}
        improved = record_epoch(state, metrics[cfg.metric], metrics["loss"], cfg.patience)  # epoch -> state["epoch"]
        if improved and rank == 0:
            best_weights = registry.weights_to_bytes(judged.state_dict())
        state["history"].append(metrics)
        if average is not None:
            state["averaged_steps"] = average.steps
        say(f"epoch {epoch + 1}/{cfg.epochs}: loss {metrics['loss']:.4f}, valid "
            + ", ".join(f"{k} {metrics[k]:.4f}" for k in totals.means())
            + (f" (popularity prior {prior_weight + cfg.logit_adjustment:g}: {cfg.logit_adjustment:g} trained + "
               f"{prior_weight:g} validated)" if len(by_prior) > 1 else "") +
            f" ({metrics['seconds']:.0f} s, {metrics['windows_per_second']:.0f} windows/s)"
            + (" *" if improved else "")
            + (" - diverged (loss or metric not finite): stopping, the best epoch stays "
               f"{state['best_epoch'] + 1}" if state.get("diverged") else
               " - stopping early" if state["stopped"] else ""))
        _report(rank, metrics, state, model, optimizer, best_weights, average)


def _report(rank: int, metrics: dict, state: dict, model, optimizer, best_weights: bytes | None,
            average: WeightAverage | None) -> None:
    """Every worker reports; rank 0 attaches the checkpoint folder."""
    import ray.train

    with tempfile.TemporaryDirectory() as folder:
        checkpoint = None
        if rank == 0:
            with open(f"{folder}/model.safetensors", "wb") as file:
                file.write(registry.weights_to_bytes(model.state_dict()))
            if best_weights is not None:  # None only while no epoch has been finite (a first epoch that diverged)
                with open(f"{folder}/best.safetensors", "wb") as file:
                    file.write(best_weights)
            if average is not None:
                with open(f"{folder}/average.safetensors", "wb") as file:
                    file.write(registry.weights_to_bytes(average.state_dict()))
            torch.save(optimizer.state_dict(), f"{folder}/optimizer.pt")
            with open(f"{folder}/state.json", "w") as file:
                json.dump(state, file)
            checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report(metrics, checkpoint=checkpoint)


def _sum_over_workers(vector: np.ndarray, device) -> np.ndarray:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return vector
    tensor = torch.from_numpy(vector).to(device)
    dist.all_reduce(tensor)
    return tensor.cpu().numpy()


def _load_weights(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(path)


# --- after training ---------------------------------------------------------------------------------------

def register(config: MMRecConfig, name: str, state: dict, best_weights: bytes, items: pa.Table,
             lineage: dict | None = None) -> str:
    """models/<name>/ from the best checkpoint, with the content of every song (cold ones too)."""
    cfg = config.train
    root = artifacts.resolve(config.artifact_root)
    bert_config = BERT4RecConfig.from_dict(state["config"])
    vectors, uris, item_idx = {}, None, None
    for modality in cfg.modalities:  # embed writes every modality table over the same songs, in the same order
        table = read_content(config.artifact_root, modality)
        if uris is not None and table.track_uris != uris:
            raise ArtifactError(f"{root.join('embeddings', f'{modality}.parquet').uri}: its songs differ from "
                                f"{cfg.modalities[0]}.parquet's; rerun embed")
        uris, item_idx = table.track_uris, table.item_idx
        vectors[modality] = table.vectors
    if uris is None:  # ID-only: the catalogue is every song it can score
        uris, item_idx = items["track_uri"].to_pylist(), items["item_idx"].to_numpy().astype(np.int64)
    best = state["history"][state["best_epoch"]]
    hybrid, blend_notes = fit_hybrid(config, bert_config, best_weights, items)
    metrics = {"valid": {k: best[k] for k in best if "@" in k}, "best_epoch": state["best_epoch"],
               "metric": cfg.metric, "history": state["history"], **({"hybrid": blend_notes} if blend_notes else {})}
    card = {"name": name, "run": root.join("runs", name).uri,
            "train": {**cfg.model_dump(mode="json"), **cfg.resolved()},  # settings left empty, as they resolved
            "fingerprint": state["fingerprint"],
            "data_card_sha256": layout.card_hash(root.join("data", "card.json")),
            "embeddings_card_sha256": layout.card_hash(root.join("embeddings", "card.json")) if cfg.modalities else None,
            "items": items.num_rows, "songs": len(uris), "cold_songs": int((item_idx <= 0).sum()),
            "parameters": _parameter_count(best_weights), **({"lineage": lineage} if lineage else {})}
    loc = root.join("models", name)
    registry.write_model(loc, bert_config, best_weights, items, registry.songs_table(uris, item_idx, vectors),
                         metrics, card, hybrid)
    log.info("registered %s", loc.uri)
    return loc.uri


def fit_hybrid(config: MMRecConfig, bert_config: BERT4RecConfig, best_weights: bytes,
               items: pa.Table) -> tuple[Hybrid | None, dict]:
    """The hybrid scorer (models/hybrid.py) for the best weights: EASE fitted on the training histories (songs
    held out by cold_share stay out, as they did in training), its lambda and then the blend weight chosen on the
    validation playlists training validated on, together with the popularity prior the model scores with inside
    the blend (train.ease_blend_priors, and its own). None when validation prefers the model alone (weight 0);
    the notes say what every lambda, prior and weight scored."""
    cfg = config.train
    weights = sorted({0.0, *cfg.ease_blend_weights})
    if weights == [0.0]:
        return None, {}
    started = time.time()
    root = config.artifact_root
    counts = train_counts(items)
    cold = cold_items(items.num_rows, cfg.cold_share)
    counts[cold - 1] = 0
    train, valid = read_split(root, "train"), read_split(root, "valid")
    rows = sample_rows(len(valid.pids), cfg.valid_playlists, cfg.seed)
    histories, targets = [valid.histories[i] for i in rows], valid.targets[rows]
    limit = min(cfg.ease_blend_max_songs, dense_songs_that_fit()) if cfg.ease_blend_max_songs else 0
    log.info("hybrid: fitting EASE (lambda %s) and choosing its weight on %d validation playlists",
             ", ".join(f"{l2:g}" for l2 in cfg.ease_blend_l2), len(rows))
    ease, tried = tuned_ease(without_items(train.histories, cold), items.num_rows, counts, cfg.ease_blend_l2, limit,
                             histories, targets, cfg.metric, cfg.ks, cfg.eval_batch_size)
    model = registry.model_from_weights(bert_config, best_weights).eval()
    own = round(float(model.prior_weight()), 6)  # float32: 1.15 reads 1.1500001
    shifts = {prior: prior_shift(model, prior) for prior in sorted({own, *cfg.ease_blend_priors})}
    (prior, weight), measured = choose_blend(model.scorer(), ease, weights, histories, targets, cfg.metric, cfg.ks,
                                             cfg.eval_batch_size, shifts)
    notes = {"weight": weight, "model_prior": prior, "model_prior_alone": own, "valid": measured[prior, weight],
             "valid_by_weight": {f"{w:g}": m for (p, w), m in measured.items() if p == own},
             "valid_by_prior": by_prior(measured, cfg.metric),
             "ease_l2": ease.l2, "ease_mode": ease.mode, "ease_songs_fitted": int(len(ease.items)),
             "ease_gb": round(dense_solve_bytes(len(ease.items)) / 1e9, 3), "seconds": round(time.time() - started, 1),
             **({"ease_l2_valid": {f"{l2:g}": value for l2, value in tried.items()}} if tried else {})}
    log.info("hybrid: valid %s by prior and EASE weight: %s; %s", cfg.metric,
             "; ".join(f"prior {p}: " + ", ".join(f"{w} {v:.4f}" for w, v in by_weight.items())
                       for p, by_weight in by_prior(measured, cfg.metric).items()),
             f"blending at {weight:g} (EASE lambda {ease.l2:g}, the model's prior {prior:g}, {own:g} alone)"
             if weight else "the model alone (no blend)")
    if not weight:
        return None, notes
    return Hybrid(ease, weight, None if prior == own else prior, shifts[prior]), notes


def _parameter_count(weights: bytes) -> int:
    from safetensors.torch import load

    return int(sum(t.numel() for name, t in load(weights).items() if not name.startswith(PRIOR_BUFFERS)))


def training_curve(history: list[dict], metric: str, loc) -> str:
    epochs = [h["epoch"] + 1 for h in history]
    figure, (left, right) = figures.subplots(1, 2, figsize=(9, 3.2))
    left.plot(epochs, [h["loss"] for h in history], marker="o")
    left.set(xlabel="epoch", ylabel="training loss", title="cloze loss")
    right.plot(epochs, [h[metric] for h in history], marker="o", color="tab:green")
    right.set(xlabel="epoch", ylabel=f"valid {metric}", title=f"validation {metric}")
    uri = figures.save(figure, loc)
    return uri

