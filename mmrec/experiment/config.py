"""Settings of `mmrec experiment`: which grid of models, over how many seeds, reported where."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from mmrec.config_base import StrictConfig


class ExperimentConfig(StrictConfig):
    grid: str = Field("configs/experiments/demo.yaml", description="YAML file listing the experiment's cells")
    name: str = Field("", description="report name under reports/ (empty = the grid file's name)")
    seeds: int = Field(3, ge=1, description="seeds per cell (0, 1, ...): means and 95% intervals over them")
    split: Literal["test", "valid"] = Field("test", description="targets the table reports")
    ease_l2: tuple[float, ...] = Field(
        (10.0, 30.0, 100.0, 300.0, 1000.0, 3000.0), min_length=1,
        description="EASE's L2 weight (lambda): one value, or a grid from which the best on the validation targets "
        "(train.metric) is used; the report names it")
    max_concurrent_cells: int = Field(
        0, ge=0, description="trained cells at once, each a Ray task driving its own Ray Train worker group (0 = as "
        "many as the cluster's GPUs, or else CPUs, hold at train.workers each)")
    ease_max_dense_songs: int = Field(
        0, ge=0, description="EASE fits a dense songs x songs matrix (4 bytes x songs^2) on at most this many "
        "most-played songs, ranking the rest by popularity (0 = as many as fit in the memory available)")

    @field_validator("ease_l2", mode="before")
    @classmethod
    def _one_value_is_a_grid_of_one(cls, value):
        return (value,) if isinstance(value, (int, float, str)) else value

    @field_validator("ease_l2")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(v <= 0 for v in value):
            raise ValueError(f"experiment.ease_l2 values must be > 0, got {list(value)}")
        return value
