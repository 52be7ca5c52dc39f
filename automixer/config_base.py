"""The building blocks every config model shares: the strict base model, the domain name type, the error."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

Domain = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", description="A domain name, e.g. code, math, web.")]


class ConfigError(ValueError):
    """A configuration problem, with a message that names the field and what is allowed."""


class StrictModel(BaseModel):
    """A config model that rejects unknown fields and validates assignments."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
