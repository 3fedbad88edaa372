"""`mmrec train` and `mmrec evaluate` end to end with a real local Ray and two Ray Train workers.

One small demo corpus is prepared and embedded once; ID-only and multimodal BERT4Rec then train with the same
sizes, budget and split. A third run loses a worker to SIGKILL mid-training and must finish from its checkpoint.
"""

import json
import os
import signal
import threading
import time

import numpy as np
import psutil
import pytest
import torch

from mmrec import artifacts, layout
from mmrec.artifacts import ArtifactError
from mmrec.config import load_config
from mmrec.evaluate.metrics import evaluate_scorer
from mmrec.evaluate import run as evaluate
from mmrec.layout import read_split, sample_rows
from mmrec.models import registry
from mmrec.train import run as train
from mmrec.train.loop import adopt_best_prior, validate, windows_for_training
from mmrec.train.run import _load_weights
from mmrec.train.sequences import epoch_batches

from tests.conftest import build_corpus

pytestmark = pytest.mark.slow

CORPUS = {
    "demo_data.playlists": 1000, "demo_data.songs": 4000, "demo_data.challenge_playlists": 0,
    "prepare.min_song_count": 4,
    "embed.songs": "items", "embed.audio_epochs": 5, "embed.art_epochs": 1, "embed.art_width": 4,
    "embed.art_train_sample": 200, "embed.dim": 16, "embed.actors": 1, "embed.max_text_words": 16,
}
# The models alone (no hybrid with EASE): these tests compare models; one test registers a hybrid afterwards.
MODEL = {"train.workers": 2, "train.hidden": 32, "train.epochs": 8, "train.patience": 8, "train.batch_size": 64,
         "train.learning_rate": 3e-3, "train.ease_blend_weights": [0]}


@pytest.fixture(scope="module")
def root(ray_local, tmp_path_factory):
    root = tmp_path_factory.mktemp("root")
    build_corpus(root, CORPUS)
    return root


def configure(root, **overrides):
    return load_config(overrides={**CORPUS, **MODEL, "artifact_root": str(root), **overrides})


@pytest.fixture(scope="module")
def trained(root):
    results = {}
    for name, modalities in (("ids", []), ("content", ["audio", "lyrics", "album_art", "artist_bio"])):
        config = configure(root, **{"train.modalities": modalities})
        outputs = train.run(config)
        evaluate.run(config)
        results[name] = (config, outputs)
    return results


def test_multimodal_bert4rec_beats_id_only_on_valid_and_test(trained):
    scores = {}
    for name, (config, outputs) in trained.items():
        loc = artifacts.resolve(outputs["model"])
        scores[name] = (registry.read_metrics(loc)["valid"]["ndcg@20"],
                        artifacts.read_json(loc.join("evaluation.json"))["test"]["metrics"]["ndcg@20"])
    assert scores["content"][0] > scores["ids"][0], scores
    assert scores["content"][1] > scores["ids"][1], scores


def test_training_writes_checkpoints_a_curve_and_a_loadable_model(trained, root):
    config, outputs = trained["content"]
    run_folder = root / "runs" / train.run_name(config)
    assert (run_folder / "training_curve.png").stat().st_size > 1000
    with open(os.path.join(outputs["checkpoint"], "state.json")) as f:
        state = json.load(f)
    assert [h["epoch"] for h in state["history"]] == list(range(8))
    assert state["starts"] == [0]
    model = registry.load_model(artifacts.resolve(outputs["model"]))
    assert model.config.modalities == ("audio", "lyrics", "album_art", "artist_bio")
    assert model.card["train"]["workers"] == 2
    # Settings left empty are recorded as they resolved (BERT4Rec with content: LayerNorm rows, dropout 0.2).
    assert (model.card["train"]["item_norm"], model.card["train"]["dropout"]) == (True, 0.2)
    assert model.card["data_card_sha256"] == layout.card_hash(artifacts.resolve(str(root / "data" / "card.json")))
    evaluation = json.loads((root / "models" / train.run_name(config) / "evaluation.json").read_text())
    assert evaluation["test"]["playlists"] > 900


def test_a_rerun_with_the_same_settings_resumes_instead_of_starting_over(trained):
    config, outputs = trained["ids"]
    again = train.run(config)
    assert again["checkpoint"] == outputs["checkpoint"]  # nothing left to train: the last checkpoint stands


def test_registering_again_with_a_hybrid_reuses_the_run_and_reproduces_its_validation(trained, root):
    config, outputs = trained["content"]
    hybrid_config = configure(root, **{"train.modalities": list(config.train.modalities),
                                       "train.ease_blend_weights": [0, 0.1, 0.3, 1.0], "train.ease_blend_l2": [30, 300],
                                       "train.ease_blend_priors": [0.0, 0.5]})
    assert train.run_name(hybrid_config) == train.run_name(config)  # scoring settings leave the run (and its name)
    assert train.registered_already(hybrid_config) is None  # but not the registered model
    again = train.run(hybrid_config)
    assert again["checkpoint"] == outputs["checkpoint"]  # registered anew without training an epoch
    assert train.registered_already(hybrid_config) == again["model"]
    loc = artifacts.resolve(again["model"])
    metrics = registry.read_metrics(loc)
    notes = metrics["hybrid"]
    assert set(notes["valid_by_weight"]) == {"0", "0.1", "0.3", "1"} and set(notes["ease_l2_valid"]) == {"30", "300"}
    assert notes["valid"]["ndcg@20"] >= max(m["ndcg@20"] for m in notes["valid_by_weight"].values())
    # Weight 0 is the model alone: the validation training measured for the best epoch (float noise aside).
    assert notes["valid_by_weight"]["0"]["ndcg@20"] == pytest.approx(metrics["valid"]["ndcg@20"], abs=2e-3)
    # The prior inside the blend was chosen with the weight: the model's own and each of train.ease_blend_priors.
    own = notes["model_prior_alone"]
    assert set(notes["valid_by_prior"]) == {"0", "0.5", f"{own:g}"} and own == pytest.approx(
        hybrid_config.train.logit_adjustment + metrics["history"][metrics["best_epoch"]]["popularity_weight"])
    assert notes["valid"]["ndcg@20"] == max(v for by_weight in notes["valid_by_prior"].values()
                                            for v in by_weight.values())
    # The loaded folder scores what validation chose: its hybrid reproduces the chosen weight's value.
    loaded = registry.load_model(loc)
    assert (loaded.hybrid is not None) == (notes["weight"] > 0)
    if loaded.hybrid is not None:
        assert (loaded.hybrid.model_prior or own) == notes["model_prior"]
    valid = read_split(str(root), "valid")
    rows = sample_rows(len(valid.pids), hybrid_config.train.valid_playlists, hybrid_config.train.seed)
    reproduced = evaluate_scorer(loaded.scorer(), [valid.histories[i] for i in rows], valid.targets[rows], (20, 500))
    assert reproduced.means()["ndcg@20"] == pytest.approx(notes["valid"]["ndcg@20"], abs=1e-6)
    assert dict(train.summary(hybrid_config)).get("hybrid", "").startswith("EASE weight") == (notes["weight"] > 0)


def _train_workers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "RayTrainWorker" in " ".join(process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


def test_a_killed_worker_resumes_from_the_last_checkpoint(root):
    # Averaged weights: the average must come back from the checkpoint with its step count.
    config = configure(root, **{"train.run_name": "killed", "train.modalities": ["audio"], "train.epochs": 6,
                                "train.patience": 6, "train.weight_averaging": 0.9})
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(train.run(config)), daemon=True)
    thread.start()
    run_folder = root / "runs" / "killed"
    deadline = time.time() + 240
    while time.time() < deadline and not list(run_folder.glob("checkpoint_*/state.json")):
        time.sleep(0.5)
    time.sleep(3)  # let the controller register the report (it polls every 2 s)
    workers = _train_workers()
    assert workers, "no Ray Train worker process found"
    os.kill(workers[-1].pid, signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive() and "checkpoint" in outcome
    with open(os.path.join(outcome["checkpoint"], "state.json")) as f:
        state = json.load(f)
    assert [h["epoch"] for h in state["history"]] == list(range(6))  # every epoch once
    assert len(state["starts"]) == 2 and state["starts"][1] >= 1, state["starts"]  # resumed, not from scratch
    windows, _ = windows_for_training(read_split(str(root), "train").histories, config.train)
    steps = [len(epoch_batches(np.array([len(w) for w in windows]), config.train.batch_size,
                               np.random.default_rng([config.train.seed, epoch]), config.train.workers))
             for epoch in range(6)]
    assert state["averaged_steps"] == sum(steps)  # every step of both starts counted once
    average, raw = (_load_weights(os.path.join(outcome["checkpoint"], f)) for f in ("average.safetensors",
                                                                                      "model.safetensors"))
    assert not torch.allclose(average["items.0.project.weight"], raw["items.0.project.weight"])
    # What validates, and what is kept and registered, is the average, not the raw weights: the last epoch's
    # recorded metric comes back from the average (and not from the raw weights; the tiny fixture ranks them
    # apart, deterministically), the registered model holds the best epoch's kept weights exactly, and those
    # give back the best epoch's recorded metric.
    registered = registry.load_model(artifacts.resolve(outcome["model"]))
    best = _load_weights(os.path.join(outcome["checkpoint"], "best.safetensors"))
    assert set(best) == set(registered.model.state_dict())
    assert all(torch.equal(best[name], value) for name, value in registered.model.state_dict().items())
    valid, cfg = read_split(str(root), "valid"), config.train
    rows = sample_rows(len(valid.pids), cfg.valid_playlists, cfg.seed)
    recorded = state["history"][-1]

    def validated(weights: dict) -> float:
        registered.model.load_state_dict({**registered.model.state_dict(), **weights})
        by_prior = validate(registered.model, [valid.histories[i] for i in rows], valid.targets[rows], cfg.ks,
                            cfg.eval_batch_size, torch.device("cpu"), cfg.popularity_weights)
        return adopt_best_prior(registered.model, by_prior, cfg.popularity_weights, cfg.metric)[0].means()[cfg.metric]

    from_average, from_raw = validated(average), validated(raw)
    assert from_average == pytest.approx(recorded[cfg.metric], abs=1e-5), (from_average, from_raw, recorded)
    assert abs(from_raw - recorded[cfg.metric]) > 1e-5, (from_average, from_raw, recorded)
    # The kept best (what is registered) gives back its own epoch's recorded metric: it is that epoch's average.
    from_best = validated(best)
    assert from_best == pytest.approx(state["history"][state["best_epoch"]][cfg.metric], abs=1e-5), \
        (from_best, state["best_epoch"], state["history"])


def test_a_run_name_holding_other_settings_is_refused_before_training(trained):
    config, _ = trained["ids"]
    other = configure(config.artifact_root, **{"train.run_name": train.run_name(config), "train.hidden": 16,
                                                "train.modalities": []})
    with pytest.raises(ArtifactError, match="other settings"):
        train.run(other)


def test_songs_held_out_of_training_are_ranked_from_content_far_above_popularity_and_random(root):
    # No popularity prior and no logit adjustment: what is measured is content alone (a prior, chosen on warm
    # validation targets or given in training, lifts the played songs above every song it knows no plays of: with
    # tau 1 the held-out songs' NDCG@20 fell to 0; docs/train.md, "Popularity prior").
    config = configure(root, **{"train.cold_share": 0.2, "train.epochs": 5, "train.patience": 5,
                                "train.popularity_weights": [0.0], "train.logit_adjustment": 0})
    outputs = train.run(config)
    assert evaluate.run(config)["model"] == train.run_name(config)  # evaluate says which model it scored
    cold = artifacts.read_json(artifacts.resolve(outputs["model"]).join("evaluation.json"))["test_cold"]
    assert cold["playlists"] > 100
    assert cold["model"]["ndcg@20"] > 3 * max(cold["popularity"]["ndcg@20"], cold["random"]["ndcg@20"], 0.005), cold
    assert cold["model"]["recall@500"] > cold["random"]["recall@500"] + 0.2, cold
