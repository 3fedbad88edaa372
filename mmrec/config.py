"""One loader for every stage config: defaults, then a YAML file, then dotted command-line overrides.

    cfg = load_config("configs/demo.yaml", {"demo_data.playlists": 2000})
    cfg.demo_data.playlists   # 2000

Every stage section is a frozen pydantic model that rejects unknown keys, so a typo is an error that names
the key and lists the valid ones instead of a silently ignored setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Mapping, get_args, get_origin

import yaml
from pydantic import BaseModel, Field, ValidationError

from mmrec.config_base import StrictConfig
from mmrec.data.config import PrepareConfig
from mmrec.demo.config import DemoDataConfig
from mmrec.embed.config import EmbedConfig
from mmrec.evaluate.config import EvaluateConfig
from mmrec.experiment.config import ExperimentConfig
from mmrec.serve.config import ServeConfig
from mmrec.stages import PIPELINE_STAGES
from mmrec.train.config import TrainConfig
from mmrec.tune.config import TuneConfig


Stage = Literal[PIPELINE_STAGES]  # a stage's name (mmrec/stages.py)


class PipelineConfig(StrictConfig):
    """What `mmrec pipeline` (jobs/pipeline.py) chains; every stage also runs alone as `mmrec <stage>`."""

    stages: tuple[Stage, ...] = Field(PIPELINE_STAGES, min_length=1, description="the stages to run, always in "
                                      "pipeline order (drop demo-data for a real corpus; experiment or tune or both)")
    serve: Literal["once", "deploy"] = Field("once", description="once: start the endpoint, answer one request, shut "
                                             "it down (make demo); deploy: leave it serving on the cluster")


class MMRecConfig(StrictConfig):
    """The whole pipeline's configuration; each stage reads its own section and the shared artifact root."""

    artifact_root: str = Field(
        "artifacts", description="where every stage reads and writes artifacts: a local path or s3://bucket/prefix"
    )
    demo_data: DemoDataConfig = Field(default_factory=DemoDataConfig, description="the demo corpus generator")
    prepare: PrepareConfig = Field(default_factory=PrepareConfig, description="slices -> item table and splits")
    embed: EmbedConfig = Field(default_factory=EmbedConfig, description="modality sources -> fused song vectors")
    train: TrainConfig = Field(default_factory=TrainConfig, description="multimodal BERT4Rec on Ray Train")
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig, description="test metrics of a registered model")
    tune: TuneConfig = Field(default_factory=TuneConfig, description="Ray Tune sweeps over train settings")
    experiment: ExperimentConfig = Field(default_factory=ExperimentConfig,
                                         description="baselines and ablations over seeds, as the paper's tables")
    serve: ServeConfig = Field(default_factory=ServeConfig, description="the Ray Serve endpoint of a registered model")
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig, description="the stages the main job chains")


class ConfigError(ValueError):
    """A configuration file or override is wrong; the message names the key."""


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> MMRecConfig:
    """Build the pipeline config from defaults, an optional YAML file and dotted overrides.

    Override values that are strings are parsed as YAML scalars, so `"2000"` becomes 2000 and `"[1, 2]"` a list.
    """
    source = str(path) if path else "defaults"
    data: dict[str, Any] = {}
    if path is not None:
        data = read_yaml(path, "config file") or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    for dotted, value in (overrides or {}).items():
        _set_dotted(data, dotted, _parse_scalar(value), source)
    if overrides:
        source += " with command-line overrides"
    return validate_config(data, source)


def read_yaml(path: str | Path, what: str) -> Any:
    """A YAML file's contents (config, search space, grid, Serve file); a ConfigError naming the file and what it
    was meant to be when it cannot be read or parsed."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None


def validate_config(data: Mapping[str, Any], source: str = "config") -> MMRecConfig:
    """Validate a plain mapping; errors become one ConfigError listing every bad key."""
    try:
        return MMRecConfig.model_validate(dict(data))
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


def config_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, Any, str]]:
    """Flatten a config model into (dotted key, type name, default, description) rows for --help."""
    rows = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            rows.extend(config_fields(annotation, prefix=f"{key}."))
            continue
        default = field.get_default(call_default_factory=True)
        rows.append((key, _type_name(annotation), default, field.description or ""))
    return rows


def _type_name(annotation: Any) -> str:
    """What --help shows for a setting: `a|b` for choices, `list of a|b` for tuples of them, else the type."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "|".join(str(a) for a in args)
    if origin is tuple and args:
        return f"list of {_type_name(args[0])}"
    if origin is not None and type(None) in args:  # Optional[X]
        return _type_name(next(a for a in args if a is not type(None)))
    return getattr(annotation, "__name__", str(annotation))


def _parse_scalar(value: Any) -> Any:
    if not isinstance(value, str) or not value.strip():
        return value  # an empty override means an empty string, not YAML's null
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError:
        return value


def _set_dotted(data: dict[str, Any], dotted: str, value: Any, source: str) -> None:
    keys = dotted.split(".")
    node = data
    for i, key in enumerate(keys[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{source}: cannot set {dotted}: {'.'.join(keys[: i + 1])} is not a section")
        node = child
    node[keys[-1]] = value


def _describe(err: ValidationError, source: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            valid = ", ".join(_valid_keys(e["loc"][:-1]))
            lines.append(f"{key}: unknown key (valid keys here: {valid})")
        else:
            lines.append(f"{key}: {e['msg']} (got {e.get('input')!r})")
    return f"{source}: invalid configuration:\n  " + "\n  ".join(lines)


def _valid_keys(loc: tuple) -> list[str]:
    model: type[BaseModel] = MMRecConfig
    for part in loc:
        annotation = model.model_fields[str(part)].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)
