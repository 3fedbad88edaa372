"""The experiment runner on a tiny hand-made prepared corpus: baselines, the table, and resuming a grid."""

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from mmrec import artifacts
from mmrec.artifacts import ITEMS_SCHEMA, SPLIT_SCHEMA, ArtifactError
from mmrec.config import ConfigError, load_config
from mmrec.experiment import run as experiment

N = 20
REPO = Path(__file__).resolve().parents[2]


def write_prepared(root):
    """Songs in planted pairs: a playlist's last song is the partner of its second-last."""
    rng = np.random.default_rng(0)
    loc = artifacts.resolve(str(root)).join("data")
    playlists = []
    for _ in range(120):
        pairs = rng.choice(N // 2, size=3, replace=False)
        playlists.append([int(x) for p in pairs for x in (2 * p + 1, 2 * p + 2)])
    counts = np.bincount(np.concatenate(playlists), minlength=N + 1)[1:]
    artifacts.write_table(loc.join("items.parquet"), pa.table({
        "item_idx": pa.array(range(1, N + 1), pa.int32()), "track_uri": [f"spotify:track:{i}" for i in range(1, N + 1)],
        "track_name": ["t"] * N, "artist_uri": ["a"] * N, "artist_name": ["a"] * N, "album_uri": ["b"] * N,
        "album_name": ["b"] * N, "duration_ms": [1] * N, "count": counts.tolist(), "train_count": counts.tolist(),
    }, schema=ITEMS_SCHEMA))
    splits = {"train": ([p[:-2] for p in playlists], [None] * 120),
              "valid": ([p[:-2] for p in playlists], [p[-2] for p in playlists]),
              "test": ([p[:-1] for p in playlists], [p[-1] for p in playlists])}
    for name, (histories, targets) in splits.items():
        artifacts.write_table(loc.join(f"{name}.parquet"), pa.table(
            {"pid": list(range(120)), "history": histories, "target": targets}, schema=SPLIT_SCHEMA))
    artifacts.write_json(loc.join("card.json"), {"playlists": 120})


@pytest.fixture
def setup(tmp_path):
    write_prepared(tmp_path)
    grid = tmp_path / "grid.yaml"
    grid.write_text("cells:\n  - {name: MostPop, model: mostpop}\n  - {name: EASE, model: ease}\n")
    return load_config(overrides={"artifact_root": str(tmp_path), "experiment.grid": str(grid),
                                  "experiment.ease_l2": 10.0, "train.ks": "[1, 5]", "train.metric": "ndcg@5"})


def test_baselines_fill_the_table_and_ease_finds_the_planted_partner(setup, tmp_path):
    outputs = experiment.run(setup)
    results = json.loads(Path(outputs["json"]).read_text())
    table = {row["name"]: row for row in results["cells"]}
    assert table["EASE"]["metrics"]["recall@1"]["mean"] > 0.9  # the partner of the second-last song
    assert table["MostPop"]["metrics"]["recall@1"]["mean"] < 0.5
    assert table["EASE"]["ease_mode"] == "dense"
    assert table["EASE"]["parameters"] == 20 * 20 and table["MostPop"]["parameters"] == 20
    markdown = Path(outputs["results"]).read_text()
    assert "| EASE | 1 |" in markdown and "dense solve over 20 songs" in markdown
    bands = table["MostPop"]["by_popularity"]  # 4 of the 20 songs are the popular fifth
    assert bands["popular"]["playlists"] + bands["long_tail"]["playlists"] == 120
    assert bands["popular"]["metrics"]["recall@5"] > bands["long_tail"]["metrics"]["recall@5"]
    assert "| MostPop | popular |" in markdown and "| MostPop | long tail |" in markdown
    assert (tmp_path / "reports" / "grid" / "results.png").stat().st_size > 1000


def test_a_half_finished_grid_resumes_without_rerunning_finished_cells(setup, tmp_path):
    experiment.run(setup)
    cells = tmp_path / "reports" / "grid" / "cells"
    kept, removed = cells / "mostpop-seed0.json", cells / "ease-seed0.json"
    kept_before = kept.stat().st_mtime_ns
    removed.unlink()  # as if the run stopped before EASE finished
    experiment.run(setup)
    assert kept.stat().st_mtime_ns == kept_before
    assert removed.exists()


def test_a_bad_grid_names_the_cell(tmp_path):
    grid = tmp_path / "bad.yaml"
    grid.write_text("cells:\n  - {name: A, model: mostpop}\n  - {name: B, train: {hiden: 3}}\n")
    with pytest.raises(ConfigError, match=r"cells\[1\]: unknown train keys \['hiden'\]"):
        experiment.read_grid(str(grid))


def test_trained_cells_run_at_the_same_time_when_the_cluster_holds_them(ray_local, tmp_path):
    """Two ID-only BERT4Rec cells with one Train worker each on the 2-CPU test cluster: both run at once."""
    write_prepared(tmp_path)
    grid = tmp_path / "two.yaml"
    grid.write_text("cells:\n  - {name: slow, train: {learning_rate: 0.001}}\n"
                    "  - {name: fast, train: {learning_rate: 0.003}}\n")
    config = load_config(overrides={
        "artifact_root": str(tmp_path), "experiment.grid": str(grid), "experiment.seeds": 1,
        "train.modalities": "[]", "train.workers": 1, "train.hidden": 16, "train.epochs": 2, "train.patience": 2,
        "train.batch_size": 32, "train.ks": "[1, 5]", "train.metric": "ndcg@5", "train.valid_playlists": 0})
    experiment.run(config)
    cells = [json.loads(p.read_text()) for p in (tmp_path / "reports" / "two" / "cells").glob("*.json")]
    assert sorted(c["cell"] for c in cells) == ["fast", "slow"]
    assert max(c["started"] for c in cells) < min(c["finished"] for c in cells), cells  # they overlapped
    for cell in cells:
        assert cell["playlists"] == 120 and 0 <= cell["metrics"]["ndcg@5"] <= 1
        assert (tmp_path / "models" / cell["model"].rsplit("/", 1)[-1] / "card.json").exists()
        assert cell["epochs"] == 2 and 1 <= cell["best_epoch"] <= 2 and not cell["stopped_early"]  # the cap
        assert cell["parameters"] > 16 * 20  # at least the ID table
        assert set(cell["by_popularity"]) == {"popular", "long_tail", "popular_share"}
        # Registered as the product registers: a hybrid with EASE where validation chose one, scored as such.
        hybrid = json.loads((tmp_path / "models" / cell["model"].rsplit("/", 1)[-1] / "metrics.json").read_text())["hybrid"]
        assert cell["hybrid_weight"] == hybrid["weight"] and hybrid["weight"] in (0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
        assert cell["hybrid_prior"] == hybrid["model_prior"] and hybrid["model_prior"] in {
            hybrid["model_prior_alone"], 0.4, 0.6, 0.8, 1.0}
    markdown = (tmp_path / "reports" / "two" / "results.md").read_text()
    assert "(epoch cap reached)" in markdown and "parameters" in markdown
    assert ("blended with EASE at weight" in markdown) == any(cell["hybrid_weight"] for cell in cells)
    assert ("the model's prior inside it" in markdown) == any(cell["hybrid_weight"] for cell in cells)


def test_ease_lambda_is_chosen_on_the_validation_targets(setup):
    config = setup.model_copy(update={"experiment": setup.experiment.model_copy(
        update={"ease_l2": (0.01, 10.0, 1e5)})})
    outputs = experiment.run(config)
    ease = {row["name"]: row for row in json.loads(Path(outputs["json"]).read_text())["cells"]}["EASE"]
    tried = ease["ease_l2_valid"]
    assert list(tried) == ["0.01", "10", "100000"]
    assert ease["ease_l2"] == float(max(tried, key=tried.get))  # the best validation NDCG@5 wins
    assert len(set(tried.values())) > 1  # lambda matters on this data, so the choice is a real one
    assert "chosen on the validation targets" in Path(outputs["results"]).read_text()


def test_the_oracle_row_needs_the_demo_corpus_hidden_genres(setup, tmp_path):
    grid = tmp_path / "oracle.yaml"
    grid.write_text("cells:\n  - {name: Oracle, model: oracle}\n")
    config = setup.model_copy(update={"experiment": setup.experiment.model_copy(update={"grid": str(grid)})})
    with pytest.raises(ArtifactError, match=r"hidden/song_genres.csv: not found"):
        experiment.run(config)


@pytest.mark.parametrize("grid", sorted(str(p) for p in (REPO / "configs" / "experiments").glob("*.yaml")))
def test_every_shipped_grid_reads(grid):
    cells = experiment.read_grid(grid)
    assert cells and len({cell["name"] for cell in cells}) == len(cells)
