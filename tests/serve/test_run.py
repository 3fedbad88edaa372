"""`mmrec serve`'s side of the Serve config file: the shipped file, and bad files named clearly."""

import pytest
import yaml

from mmrec.config import ConfigError, load_config
from mmrec.serve.config import AppArgs
from mmrec.serve.run import application_args, read_serve_file
from tests.conftest import REPO


def test_the_shipped_serve_file_names_both_deployments_and_valid_args():
    spec = read_serve_file(str(REPO / "configs" / "serve.yaml"))
    assert set(spec["deployments"]) == {"Ingress", "Recommender"}
    assert spec["deployments"]["Recommender"]["user_config"]["max_batch_size"] >= 1
    assert spec["deployments"]["Recommender"]["autoscaling_config"]["max_replicas"] >= 2
    AppArgs.model_validate(spec["args"])  # every arg is one the builder knows


def test_application_args_name_the_model_the_train_settings_register(tmp_path):
    from mmrec.train.run import run_name

    config = load_config(REPO / "configs" / "demo.yaml", {"artifact_root": str(tmp_path)})
    args = application_args(config, {"config": "configs/demo.yaml", "model": "", "model_cpus": 1.0})
    assert args["model"] == run_name(config) and args["artifact_root"] == str(tmp_path) and args["config"] == ""
    assert args["album_art_index"].endswith("demo-corpus/album_art/index.jsonl") and args["model_cpus"] == 1.0
    chosen = load_config(REPO / "configs" / "demo.yaml", {"artifact_root": str(tmp_path), "serve.model": "tune-demo"})
    assert application_args(chosen, {})["model"] == "tune-demo"


@pytest.mark.parametrize("document, message", [
    ({"applications": []}, "exactly one application"),
    ({"applications": [{"import_path": "other:app"}]}, "exactly one application"),
    ({"applications": [{"import_path": "mmrec.serve.app:build_app", "deployments": [{"max_ongoing_requests": 1}]}]},
     "needs a name"),
    ({"applications": [{"import_path": "mmrec.serve.app:build_app", "deployments": [{"name": "Model"}]}]},
     "unknown deployment"),
])
def test_bad_serve_files_are_errors_naming_the_file(tmp_path, document, message):
    path = tmp_path / "serve.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ConfigError, match=message) as error:
        read_serve_file(str(path))
    assert str(path) in str(error.value)


def test_a_missing_or_broken_serve_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        read_serve_file(str(tmp_path / "nope.yaml"))
    (tmp_path / "bad.yaml").write_text("applications: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_serve_file(str(tmp_path / "bad.yaml"))


def test_mmrec_serve_says_when_the_model_is_missing_before_starting_ray(tmp_path, capsys):
    from mmrec.cli import main

    code = main(["serve", "--config", str(REPO / "configs" / "demo.yaml"), "--artifact-root", str(tmp_path),
                 "--serve.model=nothing-here"])
    assert code == 1
    assert "no registered model named 'nothing-here' (no model is registered there yet" in capsys.readouterr().err
