"""Settings of `mmrec tune`: the search space file, the scheduler, trial counts and per-trial resources."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from mmrec.config_base import StrictConfig


class TuneConfig(StrictConfig):
    space: str = Field("tune_spaces/demo.yaml", description="YAML search space over train settings")
    name: str = Field("", description="sweep name under runs/ and reports/ (empty = tune-<space file name>)")
    scheduler: Literal["asha", "fifo"] = Field("asha", description="ASHA stops weak trials early; fifo runs all")
    num_samples: int = Field(4, ge=1, description="trials (each grid point is sampled this many times)")
    max_concurrent_trials: int = Field(1, ge=1, description="trials at once (each holds train.workers workers)")
    seed: int = Field(0, ge=0, description="seed of the sampled settings: a sweep with the same seed samples the same trials")
    grace_period: int = Field(1, ge=1, description="ASHA: epochs before a trial may be stopped")
    reduction_factor: int = Field(2, ge=2, description="ASHA: keep the best 1/reduction_factor at each rung")
    trial_epochs: int = Field(0, ge=0, description="epochs per trial, ASHA's horizon (0 = train.epochs)")
    trial_workers: int = Field(0, ge=0, description="Ray Train workers per trial (0 = train.workers)")
    trial_driver_cpus: float = Field(
        0.25, ge=0, description="CPU share of each trial's driver, which only waits on its Train workers; 0 lets "
        "max_concurrent_trials trials of one worker each fill as many cores")
    trial_gpus: float = Field(0.5, gt=0, le=1, description="GPU share per Train worker when the cluster has GPUs")
    register_model: bool = Field(True, description="register the best trial as models/<sweep name> and test it")
