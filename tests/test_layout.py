"""The artifact layout: stages meet only through it, and each finds another's artifacts the same way."""

import ast
from pathlib import Path

import numpy as np
import pytest

from mmrec import layout
from mmrec.artifacts import ArtifactError, write_json
from mmrec.config import load_config

PACKAGE = Path(__file__).resolve().parents[1] / "mmrec"
CORE = {"mmrec", "mmrec.artifacts", "mmrec.layout", "mmrec.config", "mmrec.config_base", "mmrec.ray_runtime"}
# Stages that only read artifacts: they import the core, the models and themselves, never another stage.
READERS = ("data", "embed", "evaluate", "serve", "demo")


def mmrec_imports(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmrec"):
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names if alias.name.startswith("mmrec"))
    return modules


@pytest.mark.parametrize("stage", READERS)
def test_reading_stages_import_only_the_core_the_models_and_themselves(stage):
    allowed_prefixes = (f"mmrec.{stage}", "mmrec.models")
    strays = {f"{path.relative_to(PACKAGE.parent)}: {module}"
              for path in (PACKAGE / stage).glob("*.py") for module in mmrec_imports(path)
              if module not in CORE and not module.startswith(allowed_prefixes)}
    assert not strays, f"{stage} reaches into other stages: {sorted(strays)}"


def test_run_names_ignore_runtime_settings_and_follow_everything_else(tmp_path):
    root = str(tmp_path)
    base = load_config(overrides={"artifact_root": root}).train
    name = layout.run_name(base, root)
    assert name.startswith("bert4rec-audio+lyrics+album_art+artist_bio-concat-")
    for runtime in ({"workers": 7}, {"use_gpu": "no"}, {"eval_batch_size": 3}, {"register_model": False}):
        assert layout.run_name(base.model_copy(update=runtime), root) == name, runtime
    for shaping in ({"hidden": 32}, {"seed": 1}, {"valid_playlists": 10}, {"modalities": ()}):
        assert layout.run_name(base.model_copy(update=shaping), root) != name, shaping
    assert layout.run_name(base.model_copy(update={"run_name": "mine"}), root) == "mine"
    # Settings left empty count as what they resolve to (BERT4Rec with content: LayerNorm rows, dropout 0.2,
    # learning rate 3e-3).
    assert layout.run_name(base.model_copy(update={"item_norm": True, "dropout": 0.2}), root) == name
    assert layout.run_name(base.model_copy(update={"item_norm": False}), root) != name
    assert layout.run_name(base.model_copy(update={"learning_rate": 3e-3}), root) == name
    assert layout.run_name(base.model_copy(update={"learning_rate": 1e-3}), root) != name
    write_json(layout.data_dir(root).join("card.json"), {"songs": 10})  # other data, another run
    assert layout.run_name(base, root) != name


def test_a_missing_model_names_the_registered_ones(tmp_path):
    root = str(tmp_path)
    with pytest.raises(ArtifactError, match="no model is registered there yet"):
        layout.registered_model(root, "nope")
    for name in ("sasrec-b", "bert4rec-a"):
        write_json(layout.model_dir(root, name).join("card.json"), {"name": name})
    (tmp_path / "models" / "half-written").mkdir()  # no card: not a registered model
    assert layout.registered_models(root) == ["bert4rec-a", "sasrec-b"]
    with pytest.raises(ArtifactError, match=r"no registered model named 'nope' \(registered models: bert4rec-a, sasrec-b\)"):
        layout.registered_model(root, "nope")
    assert layout.registered_model(root, "sasrec-b").uri.endswith("models/sasrec-b")


def test_sources_come_from_settings_or_the_demo_corpus(tmp_path):
    root = str(tmp_path / "root")
    assert layout.modality_source(root, "lyrics").uri.endswith("root/demo-corpus/lyrics.jsonl")
    assert layout.modality_source(root, "lyrics", demo_output=str(tmp_path / "demo")).uri.endswith("demo/lyrics.jsonl")
    assert layout.modality_source(root, "lyrics", str(tmp_path / "mine.jsonl")).uri.endswith("mine.jsonl")


def test_card_hashes_ignore_timestamps(tmp_path):
    loc = layout.data_dir(str(tmp_path)).join("card.json")
    assert layout.card_hash(loc) is None
    write_json(loc, {"songs": 10, "written_at": "a", "seconds": 1.0})
    first = layout.card_hash(loc)
    write_json(loc, {"songs": 10, "written_at": "b", "seconds": 2.0})
    assert layout.card_hash(loc) == first
    write_json(loc, {"songs": 11, "written_at": "b", "seconds": 2.0})
    assert layout.card_hash(loc) != first


def test_cold_items_are_one_fixed_set_per_share():
    cold = layout.cold_items(100, 0.1)
    assert len(cold) == 10 and np.array_equal(cold, layout.cold_items(100, 0.1)) and cold.min() >= 1
    assert np.array_equal(layout.sample_rows(5, 0, 0), np.arange(5))
    assert [h.tolist() for h in layout.without_items([np.array([1, 2, 3])], np.array([2]))] == [[1, 3]]


def test_artist_indices_follow_item_idx_and_mark_unknown_artists():
    import pyarrow as pa

    items = pa.table({"item_idx": [2, 1, 3, 4], "artist_uri": ["a", "b", None, "a"]})
    artists = layout.artist_indices(items)
    assert artists[1] == artists[3] != artists[0]  # items 2 and 4 share artist "a"; item 1 is "b"
    assert artists[2] == -1 and artists.min() == -1 and set(artists) == {-1, 0, 1}
