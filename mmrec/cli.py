"""`mmrec <stage>`: every stage from the command line, with the same config and run function as jobs/<stage>.py.

    mmrec demo-data --config configs/demo.yaml --demo_data.playlists=2000
    mmrec pipeline --config configs/demo.yaml --artifact-root s3://bucket/mmrec

Settings come from defaults, then --config, then `--section.key=value` flags (values parsed as YAML, so
`--demo_data.playlists=2000` is an int). `mmrec <stage> --help` lists every setting the stage reads.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from mmrec import __version__
from mmrec.artifacts import ArtifactError
from mmrec.config import ConfigError, MMRecConfig, config_fields, load_config
from mmrec.data.mpd import MPDFormatError
from mmrec.stages import COMMANDS, command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mmrec",
        description="Multimodal music recommenders on Ray: prepare, embed, train, tune, evaluate and serve "
        "playlist-continuation models on the Spotify Million Playlist Dataset format.",
    )
    parser.add_argument("--version", action="version", version=f"mmrec {__version__}")
    commands = parser.add_subparsers(dest="stage", metavar="<stage>", required=True)
    fields = {row[0]: row for row in config_fields(MMRecConfig)}
    for stage in COMMANDS:
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
            if key.split(".")[0] in stage.reads or key in stage.reads:
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
    stage = command(stage_name)
    config_path = args.pop("config")
    try:
        config = load_config(config_path, overrides=args)
    except ConfigError as err:
        print(f"mmrec {stage.name}: {err}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    try:
        outputs = stage.run(config)
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
