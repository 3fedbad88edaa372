"""The base class of every stage config (kept apart from mmrec.config so stage configs can import it)."""

from pydantic import BaseModel, ConfigDict

# Field markers (`Field(..., json_schema_extra={RUNTIME: True})`), read with marked_fields:
RUNTIME = "runtime"  # where or how fast a stage runs, or what it is called: never changes its result
PROTOCOL = "protocol"  # how results are measured and compared: part of a result, never a hyper-parameter
SCORING = "scoring"  # applied after training, at registration: changes a registered model's scores, not its weights


class StrictConfig(BaseModel):
    """Immutable, unknown keys rejected, defaults validated too."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def marked_fields(model: type[BaseModel], marker: str) -> set[str]:
    """The fields of a config class that carry this marker (RUNTIME, PROTOCOL, SCORING) in their json_schema_extra."""
    return {name for name, field in model.model_fields.items()
            if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get(marker)}
