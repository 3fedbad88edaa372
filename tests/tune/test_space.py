"""Search-space files: the shipped ones parse; bad ones fail naming the file and the key."""

import re
from pathlib import Path

import pytest

from mmrec.config import ConfigError
from mmrec.train.config import TrainConfig
from mmrec.tune.space import read_space, trial_settings

SPACES = Path(__file__).resolve().parents[2] / "tune_spaces"


@pytest.mark.parametrize("name", ["demo", "fusion", "dims"])
def test_shipped_spaces_parse(name):
    assert read_space(str(SPACES / f"{name}.yaml"))


@pytest.mark.parametrize("text, message", [
    ("hiden: {choice: [32]}\n", "hiden: not a searchable train setting"),
    ("workers: {choice: [1, 2]}\n", "workers: not a searchable train setting"),
    ("dropout: {choice: []}\n", "dropout: choice needs a non-empty list"),
    ("dropout: {uniform: [0.5, 0.1]}\n", "dropout: uniform low (0.5) must be at most high (0.1)"),
    ("learning_rate: {loguniform: [0, 0.1]}\n", "learning_rate: loguniform needs low > 0"),
    ("dropout: {normal: [0, 1]}\n", "dropout: expected one rule"),
    ("fusion: {choice: [concat, gated]}\n", "fusion: 'gated' is not a valid value"),
    ("dropout: {uniform: [0.1, 1.5]}\n", "dropout: 1.5 is not a valid value"),
    ("modalities: {choice: [[audio, video]]}\n", "modalities: ['audio', 'video'] is not a valid value"),
    ("[1, 2]\n", "a non-empty mapping"),
])
def test_bad_spaces_name_the_key(tmp_path, text, message):
    path = tmp_path / "space.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        read_space(str(path))
    assert str(path) in str(pytest.raises(ConfigError, read_space, str(path)).value)


def test_a_trial_applies_its_values_and_rejects_clashing_ones():
    settings = trial_settings(TrainConfig(), {"modalities": ["audio"], "dropout": 0.3})
    assert settings.modalities == ("audio",) and settings.dropout == 0.3
    with pytest.raises(ConfigError, match="multiple of train.heads"):
        trial_settings(TrainConfig(), {"hidden": 30, "heads": 4})
