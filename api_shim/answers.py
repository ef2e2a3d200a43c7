"""What both route groups' answer models share: the strict base (exactly the declared fields,
so an answer that drifts from its model fails the tests) and the field that an answer leaves
out, rather than sets to null, when it has nothing to say."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Json = dict[str, Any]


class Answer(BaseModel):
    """An answer's shape: exactly these fields, of exactly these types."""

    model_config = ConfigDict(extra="forbid", strict=True)


class OpenAnswer(BaseModel):
    """A shape whose listed fields are always there, beside fields of its own (an event, a
    trace stage's detail, an audit entry)."""

    model_config = ConfigDict(extra="allow", strict=True)


class Ok(Answer):
    """The answer of a route that only says it worked (repowire's OkResponse)."""

    ok: Literal[True]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def absent(description: str) -> Any:
    """A field the answer leaves out when it does not apply: not required, never null."""
    return Field(None, description=description, json_schema_extra=_no_default)
