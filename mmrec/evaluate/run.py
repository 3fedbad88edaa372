"""`mmrec evaluate`: full-catalogue Recall@k and NDCG@k of a registered model on the held-out test targets.

The only place test targets are scored. Writes <artifact_root>/models/<name>/evaluation.json, keyed by split.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from mmrec import artifacts, layout
from mmrec.config import MMRecConfig
from mmrec.evaluate.metrics import evaluate_by_popularity, evaluate_scorer
from mmrec.layout import cold_items, read_split, sample_rows, train_counts
from mmrec.models import registry
from mmrec.models.popularity import MostPopular

log = logging.getLogger("mmrec.evaluate")


def model_name(config: MMRecConfig) -> str:
    """evaluate.model, or the model train registers with these settings (layout.run_name)."""
    return config.evaluate.model or layout.run_name(config.train, config.artifact_root)


def model_location(config: MMRecConfig):
    return layout.registered_model(config.artifact_root, model_name(config))


def run(config: MMRecConfig) -> dict[str, str]:
    cfg = config.evaluate
    started = time.time()
    loc = model_location(config)
    model = registry.load_model(loc)
    split = read_split(config.artifact_root, cfg.split)
    rows = sample_rows(len(split.pids), cfg.playlists, cfg.seed)
    totals, bands = evaluate_by_popularity(model.scorer(), [split.histories[i] for i in rows],
                                           split.targets[rows], train_counts(model.items), cfg.ks, cfg.batch_size)
    result = {"metrics": totals.means(), "playlists": totals.count, "seconds": round(time.time() - started, 1)}
    target = loc.join("evaluation.json")
    evaluation = artifacts.read_json(target) if target.exists() else {}
    evaluation[cfg.split] = result
    evaluation[f"{cfg.split}_by_popularity"] = bands
    cold_share = model.card.get("train", {}).get("cold_share", 0.0)
    if cold_share:
        evaluation[f"{cfg.split}_cold"] = cold_song_table(model, split, cold_share, cfg)
    artifacts.write_json(target, evaluation)
    log.info("%s on %d %s playlists: %s", loc.name, totals.count, cfg.split,
             ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()))
    return {"model": loc.name, "evaluation": target.uri}


def cold_song_table(model, split, cold_share: float, cfg) -> dict:
    """Playlists whose target is a song held out of training: the model (from content alone) against random
    scores and popularity (cold songs have no training plays), on the same playlists and the full catalogue."""
    num_items = model.config.num_items
    cold = cold_items(num_items, cold_share)
    rows = np.flatnonzero(np.isin(split.targets, cold))
    histories, targets = [split.histories[i] for i in rows], split.targets[rows]
    counts = train_counts(model.items)
    counts[cold - 1] = 0
    generator = torch.Generator().manual_seed(cfg.seed)

    def random_scores(padded):
        return torch.rand(len(padded), num_items + 1, generator=generator)

    table = {"songs_held_out": int(len(cold)), "playlists": int(len(rows))}
    if len(rows):
        for name, score in (("model", model.scorer()), ("popularity", MostPopular(counts).score),
                            ("random", random_scores)):
            table[name] = evaluate_scorer(score, histories, targets, cfg.ks, cfg.batch_size).means()
    log.info("cold songs: %d of %d test targets; model %s", len(rows), len(split.targets),
             table.get("model"))
    return table


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    evaluation = artifacts.read_json(model_location(config).join("evaluation.json"))[config.evaluate.split]
    return [(config.evaluate.split, ", ".join(f"{k} {v:.4f}" for k, v in evaluation["metrics"].items()))]
