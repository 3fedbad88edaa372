"""The main job: the stages of `pipeline.stages` in order on one config, sharing nothing but the artifact root,
then a summary.

    demo-data -> prepare -> embed -> train (and register) -> evaluate -> experiment -> tune -> serve

experiment runs the grid in experiment.grid; tune the space in tune.space (the winner registered and tested
once); serve starts the endpoint of serve.model (default: the model train registers) and either answers one
request and shuts it down (`pipeline.serve: once`, make demo) or leaves it deployed on the cluster (`deploy`).
"""

from __future__ import annotations

import logging
import time

from mmrec import artifacts
from mmrec.config import MMRecConfig
from mmrec.stages import STAGES

log = logging.getLogger("mmrec.pipeline")


def run(config: MMRecConfig) -> dict[str, str]:
    started = time.time()
    outputs: dict[str, str] = {}
    rows: list[tuple[str, str]] = []

    config = config.model_copy(update={"serve": config.serve.model_copy(update={"mode": config.pipeline.serve})})
    for stage in (s for s in STAGES if s.name in config.pipeline.stages):
        name = stage.name
        t = time.time()
        log.info("pipeline: %s", name)
        outputs.update({f"{name}.{k}": v for k, v in stage.run(config).items()})
        rows += [(name, f"{time.time() - t:.0f} s")] + [(f"  {k}", v) for k, v in stage.summary(config)]

    rows.append(("total", f"{time.time() - started:.0f} s"))
    print(format_summary(rows, artifacts.resolve(config.artifact_root).uri), flush=True)
    return outputs


def format_summary(rows: list[tuple[str, str]], artifact_root: str) -> str:
    width = max(len(k) for k, _ in rows)
    lines = ["", "mmrec pipeline summary", "-" * 60]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    lines += ["-" * 60, f"artifacts: {artifact_root}", ""]
    return "\n".join(lines)
