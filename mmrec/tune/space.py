"""Search spaces as data: a YAML mapping from `train` settings to a sampling rule, checked on entry.

    fusion: {choice: [concat, per_modality]}
    modalities: {choice: [[audio, album_art], [audio, lyrics, album_art, artist_bio]]}
    hidden: {grid: [32, 64]}
    dropout: {uniform: [0.1, 0.4]}
    learning_rate: {loguniform: [3.0e-4, 3.0e-3]}

Rules: `choice` (sampled), `grid` (every value, crossed with the other grids), `uniform` and `loguniform`
([low, high], low <= high; loguniform needs low > 0), `randint` ([low, high), integers). Every key must be a
`train` setting a trial may change, and every value must be valid for it (checked against TrainConfig), so a
bad space file fails before any trial starts, naming the file and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from mmrec.config import ConfigError, read_yaml
from mmrec.config_base import PROTOCOL, RUNTIME, SCORING, marked_fields
from mmrec.train.config import TrainConfig

RULES = ("choice", "grid", "uniform", "loguniform", "randint")
# Settings that say where or how a trial runs, or name it (runtime), or how trials are compared (protocol), are
# not hyper-parameters; nor are those applied only at registration (scoring), which trials never reach. TrainConfig
# marks them.
NOT_SEARCHABLE = (marked_fields(TrainConfig, RUNTIME) | marked_fields(TrainConfig, PROTOCOL)
                  | marked_fields(TrainConfig, SCORING))


@dataclass(frozen=True)
class Dimension:
    name: str  # a train setting
    rule: str  # one of RULES
    values: tuple  # the choices or grid values, or (low, high)


def searchable_settings() -> list[str]:
    return sorted(set(TrainConfig.model_fields) - NOT_SEARCHABLE)


def read_space(path: str) -> list[Dimension]:
    data = read_yaml(path, "the search space")
    if not isinstance(data, dict) or not data:
        raise ConfigError(f"{path}: a search space is a non-empty mapping of train settings to rules")
    return [_dimension(path, name, spec) for name, spec in data.items()]


def _dimension(path: str, name: Any, spec: Any) -> Dimension:
    where = f"{path}: {name}"
    if name not in searchable_settings():
        raise ConfigError(f"{where}: not a searchable train setting (valid: {', '.join(searchable_settings())})")
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in RULES:
        raise ConfigError(f"{where}: expected one rule, as in {{choice: [...]}}; rules: {', '.join(RULES)}")
    rule, values = next(iter(spec.items()))
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: {rule} needs a non-empty list")
    if rule in ("choice", "grid"):
        for value in values:
            _check_value(where, name, value)
        return Dimension(name, rule, tuple(tuple(v) if isinstance(v, list) else v for v in values))
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}: {rule} needs [low, high] numbers, got {values}")
    low, high = values
    if low > high or (rule == "randint" and low >= high):
        raise ConfigError(f"{where}: {rule} low ({low}) must be {'below' if rule == 'randint' else 'at most'} "
                          f"high ({high})")
    if rule == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0, got {low}")
    for value in (low, high - 1 if rule == "randint" else high):
        _check_value(where, name, value)
    return Dimension(name, rule, (low, high))


def _check_value(where: str, name: str, value: Any) -> None:
    try:
        # Alone, each value is checked with a partner that cannot clash (hidden vs heads meet per trial).
        partner = {"heads": {"hidden": 8 * value if isinstance(value, int) else 64}, "hidden": {"heads": 1}}
        TrainConfig.model_validate({name: value, **partner.get(name, {})})
    except ValidationError as err:
        message = "; ".join(e["msg"] for e in err.errors())
        raise ConfigError(f"{where}: {value!r} is not a valid value ({message})") from None


def trial_settings(base: TrainConfig, sampled: dict[str, Any]) -> TrainConfig:
    """The base train settings with a trial's sampled values (lists back to tuples); invalid combinations, such
    as hidden not a multiple of heads, are a clear error naming the values."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in sampled.items()}
    try:
        return TrainConfig.model_validate({**base.model_dump(), **values})
    except ValidationError as err:
        raise ConfigError(f"trial settings {values}: " + "; ".join(e["msg"] for e in err.errors())) from None
