"""The stages, in pipeline order: the one table the CLI, the pipeline, the config and the docs read.

Each stage is a package whose `run.py` has `run(config) -> dict[str, str]` (the artifact URIs it wrote) and
`summary(config) -> list[(label, value)]` (what the pipeline prints). The table names modules rather than holding
the functions so that `mmrec --help` and config validation never import Ray or torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # holds run(config) and summary(config)
    reads: tuple[str, ...]  # config sections (or single section.key settings) the stage reads: its --help
    help: str
    shortcuts: tuple[tuple[str, str], ...] = ()  # (--flag, section.key) pairs, e.g. --space for tune.space

    @property
    def run(self) -> Callable:
        return importlib.import_module(self.module).run

    @property
    def summary(self) -> Callable:
        return importlib.import_module(self.module).summary


STAGES: tuple[Stage, ...] = (
    Stage("demo-data", "mmrec.demo.run", ("demo_data",),
          "generate the demo corpus: MPD-format slices plus audio, lyrics, album-art and biography sources"),
    Stage("prepare", "mmrec.data.run", ("prepare", "demo_data.output"),
          "read MPD slices (folder, glob or s3://) into the item table and leave-one-out splits, with a card"),
    Stage("embed", "mmrec.embed.run", ("embed", "demo_data.output"),
          "embed audio, lyrics, album art and artist bios per song, fill missing ones, reduce and fuse"),
    Stage("train", "mmrec.train.run", ("train",),
          "train multimodal BERT4Rec on Ray Train (DDP, checkpoints, resume) and register the best epoch"),
    Stage("evaluate", "mmrec.evaluate.run", ("train", "evaluate"),
          "score a registered model on the held-out test targets: full-catalogue Recall@k and NDCG@k"),
    Stage("experiment", "mmrec.experiment.run", ("train", "evaluate", "experiment", "demo_data.output"),
          "the paper's tables: MostPop, EASE, SASRec, BERT4Rec and modality ablations over seeds, with intervals",
          (("--grid", "experiment.grid"),)),
    Stage("tune", "mmrec.tune.run", ("train", "evaluate", "tune"),
          "a Ray Tune sweep (ASHA) over train settings from a YAML space; the best trial registered and tested",
          (("--space", "tune.space"),)),
    Stage("serve", "mmrec.serve.run", ("train", "serve", "embed.album_art_index", "demo_data.output"),
          "serve a registered model with Ray Serve: the recommend API, its docs at /docs, a web page at /"),
)
PIPELINE_STAGES = tuple(stage.name for stage in STAGES)

# `mmrec pipeline` chains the stages above (mmrec/pipeline.py); it reads every section.
PIPELINE = Stage("pipeline", "mmrec.pipeline",
                 ("demo_data", "prepare", "embed", "train", "evaluate", "experiment", "tune", "serve", "pipeline"),
                 "run the main job: the stages of pipeline.stages in order (all by default), then a summary")
COMMANDS: tuple[Stage, ...] = (*STAGES, PIPELINE)


def command(name: str) -> Stage:
    """The stage (or the pipeline) called `name`."""
    for stage in COMMANDS:
        if stage.name == name:
            return stage
    raise KeyError(f"no stage {name!r} (stages: {', '.join(s.name for s in COMMANDS)})")
