"""`mmrec <stage>`: every stage from the command line, with the same config and run function as jobs/<stage>.py.

    mmrec demo-data --config configs/demo.yaml --demo_data.playlists=2000
    mmrec pipeline --config configs/demo.yaml --artifact-root s3://bucket/mmrec

Settings come from defaults, then --config, then `--section.key=value` flags (values parsed as YAML, so
`--demo_data.playlists=2000` is an int). `mmrec <stage> --help` lists every setting the stage reads.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from dataclasses import dataclass

from mmrec import __version__
from mmrec.artifacts import ArtifactError
from mmrec.config import ConfigError, MMRecConfig, config_fields, load_config
from mmrec.data.mpd import MPDFormatError


@dataclass(frozen=True)
class Stage:
    name: str
    module: str  # holds run(config) -> dict[str, str]
    sections: tuple[str, ...]  # config sections the stage reads
    help: str
    shortcuts: tuple[tuple[str, str], ...] = ()  # (--flag, section.key) pairs, e.g. --space for tune.space


STAGES: tuple[Stage, ...] = (
    Stage(
        "demo-data",
        "mmrec.demo.run",
        ("demo_data",),
        "generate the demo corpus: MPD-format slices plus audio, lyrics, album-art and biography sources",
    ),
    Stage(
        "prepare",
        "mmrec.data.run",
        ("prepare",),
        "read MPD slices (folder, glob or s3://) into the item table and leave-one-out splits, with a card",
    ),
    Stage(
        "embed",
        "mmrec.embed.run",
        ("embed",),
        "embed audio, lyrics, album art and artist bios per song, fill missing ones, reduce and fuse",
    ),
    Stage(
        "train",
        "mmrec.train.run",
        ("train",),
        "train multimodal BERT4Rec on Ray Train (DDP, checkpoints, resume) and register the best epoch",
    ),
    Stage(
        "evaluate",
        "mmrec.evaluate.run",
        ("train", "evaluate"),
        "score a registered model on the held-out test targets: full-catalogue Recall@k and NDCG@k",
    ),
    Stage(
        "tune",
        "mmrec.tune.run",
        ("train", "tune"),
        "a Ray Tune sweep (ASHA) over train settings from a YAML space; the best trial registered and tested",
        (("--space", "tune.space"),),
    ),
    Stage(
        "experiment",
        "mmrec.experiment.run",
        ("train", "experiment"),
        "the paper's tables: MostPop, EASE, SASRec, BERT4Rec and modality ablations over seeds, with intervals",
        (("--grid", "experiment.grid"),),
    ),
    Stage(
        "serve",
        "mmrec.serve.run",
        ("train", "serve"),
        "serve a registered model with Ray Serve: the recommend API, its docs at /docs, a web page at /",
    ),
    Stage(
        "pipeline",
        "mmrec.pipeline",
        ("demo_data", "prepare", "embed", "train", "evaluate", "experiment", "tune", "serve", "pipeline"),
        "run the main job: the stages of pipeline.stages in order (all by default), then a summary",
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmrec",
        description="Multimodal music recommenders on Ray: prepare, embed, train, tune, evaluate and serve "
        "playlist-continuation models on the Spotify Million Playlist Dataset format.",
    )
    parser.add_argument("--version", action="version", version=f"mmrec {__version__}")
    commands = parser.add_subparsers(dest="stage", metavar="<stage>", required=True)
    fields = {row[0]: row for row in config_fields(MMRecConfig)}
    for stage in STAGES:
        sub = commands.add_parser(stage.name, help=stage.help, description=stage.help)
        sub.add_argument("--config", metavar="YAML", help="config file (default: built-in defaults)")
        sub.add_argument(
            "--artifact-root",
            dest="artifact_root",
            default=argparse.SUPPRESS,
            help=f"local path or s3://bucket/prefix (default: {fields['artifact_root'][2]})",
        )
        for flag, key in stage.shortcuts:
            sub.add_argument(flag, dest=key, metavar="YAML", default=argparse.SUPPRESS,
                             help=f"same as --{key}: {fields[key][3]}")
        group = sub.add_argument_group("settings (override the config file; values are parsed as YAML)")
        for key, type_name, default, description in fields.values():
            if key.split(".")[0] in stage.sections:
                group.add_argument(
                    f"--{key}",
                    dest=key,
                    metavar=type_name if "|" in type_name else type_name.upper(),  # choices stay as typed
                    default=argparse.SUPPRESS,
                    help=f"{description} (default: {default!r})",
                )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    stage_name = args.pop("stage")
    stage = next(s for s in STAGES if s.name == stage_name)
    config_path = args.pop("config")
    try:
        config = load_config(config_path, overrides=args)
    except ConfigError as err:
        print(f"mmrec {stage.name}: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        outputs = importlib.import_module(stage.module).run(config)
    except ConfigError as err:  # a bad grid or search-space file, found when the stage reads it
        print(f"mmrec {stage.name}: {err}", file=sys.stderr)
        return 2
    except (ArtifactError, MPDFormatError) as err:  # bad input: say what and where, no traceback
        print(f"mmrec {stage.name}: error: {err}", file=sys.stderr)
        return 1
    print(json.dumps(outputs, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
