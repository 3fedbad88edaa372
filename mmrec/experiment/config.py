"""Settings of `mmrec experiment`: which grid of models, over how many seeds, reported where."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmrec.config_base import StrictConfig


class ExperimentConfig(StrictConfig):
    grid: str = Field("configs/experiments/demo.yaml", description="YAML file listing the experiment's cells")
    name: str = Field("", description="report name under reports/ (empty = the grid file's name)")
    seeds: int = Field(3, ge=1, description="seeds per cell (0, 1, ...): means and 95% intervals over them")
    split: Literal["test", "valid"] = Field("test", description="targets the table reports")
    ease_l2: float = Field(100.0, gt=0, description="EASE's L2 weight (lambda)")
    max_concurrent_cells: int = Field(
        0, ge=0, description="trained cells at once, each a Ray task driving its own Ray Train worker group (0 = as "
        "many as the cluster's GPUs, or else CPUs, hold at train.workers each)")
    ease_max_dense_songs: int = Field(
        20000, ge=10, description="EASE fits a dense songs x songs matrix on at most this many most-played songs"
    )
