"""Shared by the job entrypoints: make `mmrec` importable from an uploaded working dir, then run one stage."""

from __future__ import annotations

import sys
from pathlib import Path


def run_stage(stage: str) -> int:
    # `ray job submit --working-dir . -- python jobs/<stage>.py` runs from the uploaded copy of the repo, where
    # mmrec may not be installed: put the repo root first on the path.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from mmrec.cli import main

    return main([stage, *sys.argv[1:]])
