"""Settings of `mmrec evaluate`: which registered model, on which split, at which cut-offs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmrec.config_base import StrictConfig


class EvaluateConfig(StrictConfig):
    model: str = Field("", description="registered model under models/ (empty = the one the train settings produce)")
    split: Literal["test", "valid"] = Field("test", description="held-out targets to score")
    ks: tuple[int, ...] = Field((20, 500), description="cut-offs of Recall@k and NDCG@k")
    playlists: int = Field(0, ge=0, description="a seeded sample of this many playlists (0 = all)")
    batch_size: int = Field(256, ge=1, description="playlists scored per batch")
    seed: int = Field(0, ge=0)
