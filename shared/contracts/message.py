"""The base of every message model in the catalogue: strict when a producer builds one,
tolerant when a consumer reads one.

- Built by a producer (`NewAccepted(...)`): an unknown or missing field is an error, so a
  producer that drifts from its model fails at once, in its tests.
- Read by a consumer (`parse(model, data)`): fields it does not know are ignored, at every
  level, so a producer may extend a message without breaking older consumers (docs/architecture.md, "Public contract":
  the contract may be extended, not broken).
"""
from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationInfo, model_validator

_TOLERANT = {"tolerant": True}


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _ignore_unknown_when_read(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and info.context and info.context.get("tolerant"):
            known = {name for name in cls.model_fields} | {
                field.alias for field in cls.model_fields.values() if field.alias
            }
            return {key: value for key, value in data.items() if key in known}
        return data


M = TypeVar("M", bound=Message)


def read(model: type[M], data: Any) -> M:
    """A consumer's view of `data` as `model` (unknown fields ignored); ValidationError if
    it does not fit."""
    return model.model_validate(data, context=_TOLERANT)
