import subprocess
import sys

import pytest

from mmrec.cli import main
from mmrec.stages import COMMANDS, PIPELINE_STAGES
from mmrec.config import ConfigError, MMRecConfig, load_config
from tests.conftest import REPO


def test_defaults_and_the_demo_file_load():
    assert load_config().artifact_root == "artifacts"
    cfg = load_config(REPO / "configs" / "demo.yaml")
    assert cfg.demo_data.playlists == 4000 and cfg.demo_data.genres == 16


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    if path.name == "serve.yaml":  # a Ray Serve config file, checked in tests/serve/test_run.py
        return
    load_config(path)


def test_the_full_mpd_config_is_a_cluster_run_of_the_whole_corpus():
    cfg = load_config(REPO / "configs" / "mpd-full.yaml")
    assert cfg.artifact_root.startswith("s3://") and cfg.prepare.input.startswith("s3://")
    assert cfg.prepare.song_threshold == 1 and cfg.train.loss == "sampled"  # every song; no full softmax
    assert "demo-data" not in cfg.pipeline.stages and cfg.pipeline.serve == "deploy"
    assert cfg.serve.model == "tune-fusion"


def test_pipeline_stages_are_checked_and_run_in_pipeline_order():
    assert load_config().pipeline.stages == PIPELINE_STAGES
    chosen = load_config(overrides={"pipeline.stages": "[serve, prepare]"}).pipeline.stages
    assert [s for s in PIPELINE_STAGES if s in chosen] == ["prepare", "serve"]
    with pytest.raises(ConfigError, match=r"pipeline\.stages\.1"):
        load_config(overrides={"pipeline.stages": "[prepare, deploy]"})
    with pytest.raises(ConfigError, match="pipeline.serve"):
        load_config(overrides={"pipeline.serve": "forever"})


def test_overrides_are_parsed_as_yaml_and_win_over_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("demo_data:\n  playlists: 10\n  seed: 3\n")
    cfg = load_config(path, {"demo_data.playlists": "2000", "artifact_root": "s3://b/p"})
    assert cfg.demo_data.playlists == 2000 and cfg.demo_data.seed == 3 and cfg.artifact_root == "s3://b/p"
    assert load_config(overrides={"prepare.input": ""}).prepare.input == ""  # empty stays a string


def test_unknown_nested_key_is_named_with_the_valid_ones(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("demo_data:\n  playlist: 10\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message and "demo_data.playlist: unknown key" in message and "playlists" in message


def test_unknown_section_is_rejected():
    with pytest.raises(ConfigError, match=r"demodata: unknown key \(valid keys here: artifact_root, demo_data"):
        load_config(overrides={"demodata.playlists": 3})


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("demo_data.playlists", "-5", "greater than 0"),
        ("demo_data.playlists", "many", "valid integer"),
        ("demo_data.lyrics_coverage", "1.5", "less than or equal to 1"),
    ],
)
def test_bad_values_name_the_key(key, value, words):
    with pytest.raises(ConfigError) as err:
        load_config(overrides={key: value})
    assert key in str(err.value) and words in str(err.value)


def test_bad_files_are_explained(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")
    (tmp_path / "bad.yaml").write_text("demo_data: {playlists: [\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_configs_are_immutable():
    cfg = MMRecConfig()
    with pytest.raises(Exception):
        cfg.demo_data.playlists = 3


def test_help_lists_every_stage_and_every_setting():
    out = subprocess.run([sys.executable, "-m", "mmrec.cli", "--help"], capture_output=True, text=True, check=True)
    for stage in COMMANDS:
        assert stage.name in out.stdout
    out = subprocess.run(
        [sys.executable, "-m", "mmrec.cli", "demo-data", "--help"], capture_output=True, text=True, check=True
    )
    for name in MMRecConfig().demo_data.model_fields:
        assert f"--demo_data.{name}" in out.stdout


BAD_SETTING = {"demo_data": "playlists=-1", "prepare": "min_playlist_length=1", "embed": "dim=1", "train": "hidden=4",
               "tune": "num_samples=0",
               "evaluate": "batch_size=0", "experiment": "seeds=0"}


@pytest.mark.parametrize("stage", COMMANDS, ids=lambda s: s.name)
def test_cli_rejects_bad_settings_before_doing_any_work(stage, capsys):
    bad = f"{stage.reads[0]}.{BAD_SETTING[stage.reads[0]]}"
    assert main([stage.name, f"--{bad}"]) == 2
    assert bad.split("=")[0] in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["demo-data", "--demo_data.bogus=1"])
    assert exit_.value.code == 2
    assert "--demo_data.bogus" in capsys.readouterr().err


def test_cli_reports_bad_input_without_a_traceback(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a slice")
    assert main(["prepare", "--prepare.input", str(tmp_path), "--artifact-root", str(tmp_path / "root")]) == 1
    err = capsys.readouterr().err
    assert "mmrec prepare: error:" in err and "notes.txt: not an MPD slice" in err and "Traceback" not in err
