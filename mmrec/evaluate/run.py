"""`mmrec evaluate`: full-catalogue Recall@k and NDCG@k of a registered model on the held-out test targets.

The only place test targets are scored. Writes <artifact_root>/models/<name>/evaluation.json, keyed by split.
"""

from __future__ import annotations

import logging
import time

import torch

from mmrec import artifacts
from mmrec.config import MMRecConfig
from mmrec.evaluate.metrics import evaluate_scorer
from mmrec.models import registry
from mmrec.train.data import read_split, sample_rows

log = logging.getLogger("mmrec.evaluate")


def model_location(config: MMRecConfig):
    from mmrec.train.run import run_name

    return artifacts.resolve(config.artifact_root).join("models", config.evaluate.model or run_name(config))


def run(config: MMRecConfig) -> dict[str, str]:
    cfg = config.evaluate
    started = time.time()
    loc = model_location(config)
    model = registry.load_model(loc)
    split = read_split(config.artifact_root, cfg.split)
    rows = sample_rows(len(split.pids), cfg.playlists, cfg.seed)
    torch.set_grad_enabled(False)
    totals = evaluate_scorer(model.model.score, [split.histories[i] for i in rows], split.targets[rows], cfg.ks,
                             cfg.batch_size)
    result = {"metrics": totals.means(), "playlists": totals.count, "seconds": round(time.time() - started, 1)}
    target = loc.join("evaluation.json")
    evaluation = artifacts.read_json(target) if target.exists() else {}
    evaluation[cfg.split] = result
    artifacts.write_json(target, evaluation)
    log.info("%s on %d %s playlists: %s", loc.name, totals.count, cfg.split,
             ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items()))
    return {"evaluation": target.uri}


def summary(config: MMRecConfig) -> list[tuple[str, str]]:
    evaluation = artifacts.read_json(model_location(config).join("evaluation.json"))[config.evaluate.split]
    return [(config.evaluate.split, ", ".join(f"{k} {v:.4f}" for k, v in evaluation["metrics"].items()))]
