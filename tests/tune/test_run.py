"""`mmrec tune` end to end with a real local Ray: ASHA stops weak trials, the winner is registered and tested,
and a sweep interrupted by a killed driver resumes without rerunning finished trials."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from mmrec import artifacts
from mmrec.config import load_config
from mmrec.models import registry
from mmrec.tune import run as tune

from tests.conftest import build_corpus

pytestmark = pytest.mark.slow

CORPUS = {
    "demo_data.playlists": 600, "demo_data.songs": 3000, "demo_data.challenge_playlists": 0,
    "prepare.min_song_count": 3,
    "embed.songs": "items", "embed.audio_epochs": 3, "embed.art_epochs": 1, "embed.art_width": 4,
    "embed.art_train_sample": 100, "embed.dim": 8, "embed.actors": 1, "embed.max_text_words": 8,
}
# One Train worker per trial (1 CPU + the trial driver's 0.25 fit the 2-CPU test cluster), ASHA over 4 epochs.
SWEEP = {"train.workers": 1, "train.hidden": 16, "train.epochs": 4, "train.patience": 4, "train.batch_size": 64,
         "train.modalities": ["audio", "album_art"], "tune.num_samples": 4, "tune.grace_period": 1,
         "tune.reduction_factor": 2}


@pytest.fixture(scope="module")
def ray_local(s3_bucket):
    """This module's Ray runs the dashboard: Ray Train's placement-group cleaner asks the State API (which the
    dashboard serves) whether a finished trial's Train controller is gone; without it the worker group's CPUs
    are never given back and the next trial waits forever on a small cluster."""
    import ray

    ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def root(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    build_corpus(root, CORPUS)
    return root


def test_asha_stops_weak_trials_and_the_winner_is_registered_and_tested(root, tmp_path):
    space = tmp_path / "space.yaml"
    # A grid in a fixed order: a good learning rate first sets the bar, three hopeless ones follow, so ASHA's
    # decisions do not hang on random draws.
    space.write_text("learning_rate: {grid: [3.0e-3, 1.0e-7, 2.0e-7, 3.0e-7]}\n")
    config = load_config(overrides={**CORPUS, **SWEEP, "artifact_root": str(root), "tune.space": str(space),
                                    "tune.name": "sweep", "tune.num_samples": 1})
    outputs = tune.run(config)
    results = json.loads((root / "reports" / "sweep" / "results.json").read_text())
    trials = results["trials"]
    assert len(trials) == 4
    assert any(t["epochs"] < 4 for t in trials), [t["epochs"] for t in trials]  # ASHA stopped some early
    assert any(t["epochs"] == 4 for t in trials)
    assert trials[0]["best"] == max(t["best"] for t in trials)
    model = registry.load_model(artifacts.resolve(outputs["model"]))
    assert model.card["lineage"]["sweep"] == "sweep" and model.card["lineage"]["trials"] == 4
    assert model.card["lineage"]["settings"]["learning_rate"] == pytest.approx(3.0e-3) == trials[0]["settings"]["learning_rate"]
    evaluation = json.loads((root / "models" / "sweep" / "evaluation.json").read_text())
    assert evaluation["test"]["playlists"] > 500
    for plot in ("metric_by_setting.png", "learning_curves.png"):
        assert (root / "reports" / "sweep" / plot).stat().st_size > 1000


def test_an_interrupted_sweep_resumes_without_rerunning_finished_trials(root, tmp_path, ray_local):
    space = tmp_path / "space.yaml"
    space.write_text("dropout: {grid: [0.1, 0.2, 0.3]}\n")
    settings = {**CORPUS, **SWEEP, "tune.space": str(space), "tune.name": "resumed", "tune.num_samples": 1,
                "tune.scheduler": "fifo", "train.epochs": 2, "tune.register_model": False}
    flags = [f"--{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in settings.items()
             if k.startswith(("train.", "tune."))]  # the sections `mmrec tune` reads
    env = {**os.environ, "RAY_ADDRESS": ray_local.get_runtime_context().gcs_address}
    driver = subprocess.Popen([sys.executable, "-m", "mmrec.cli", "tune", "--artifact-root", str(root), *flags],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finished_first = None
    deadline = time.time() + 300
    while time.time() < deadline and finished_first is None:
        for run in (root / "runs").glob("resumed-*"):
            states = sorted(run.glob("checkpoint_*/state.json"))
            if states and len(json.loads(states[-1].read_text())["history"]) == 2:
                finished_first = run
        time.sleep(0.5)
    assert finished_first is not None, f"no trial finished (the sweep driver exited with {driver.poll()})"
    time.sleep(3)  # let Tune record the finished trial
    driver.send_signal(signal.SIGKILL)
    driver.wait(timeout=30)
    before = sorted(finished_first.glob("checkpoint_*"))
    config = load_config(overrides={**settings, "artifact_root": str(root)})
    tune.run(config)
    results = json.loads((root / "reports" / "resumed" / "results.json").read_text())
    assert sorted(t["settings"]["dropout"] for t in results["trials"]) == [0.1, 0.2, 0.3]
    assert sorted(finished_first.glob("checkpoint_*")) == before  # the finished trial did not train again
