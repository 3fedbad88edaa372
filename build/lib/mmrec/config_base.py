"""The base class of every stage config (kept apart from mmrec.config so stage configs can import it)."""

from pydantic import BaseModel, ConfigDict


class StrictConfig(BaseModel):
    """Immutable, unknown keys rejected, defaults validated too."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)
