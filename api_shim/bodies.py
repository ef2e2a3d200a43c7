"""Request bodies: parse JSON and validate with a pydantic model before anything is written.

The model must be the one the route declared (`api_shim/declare.py`): a route that validates
with another model raises `Undeclared`, so the OpenAPI document cannot drift from what the
routes accept.
"""

from __future__ import annotations

import json
from typing import Any, Literal, TypeVar

from flask import g, request
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from api_shim import declare
from api_shim.errors import ApiError, is_platform

M = TypeVar("M", bound=BaseModel)


class Empty(BaseModel):
    """For routes that take no fields but still refuse a malformed body."""


Where = Literal["body", "query"]


def _check(model: type[BaseModel], where: Where) -> None:
    """Refuse a model the endpoint did not declare; note what was validated, for the
    conformance check of the tests (api_shim/conformance.py)."""
    declared = declare.current()
    expected = None
    if declared is not None:
        expected = declared.query if where == "query" else declared.body
    if expected is not model:
        found = expected.__name__ if expected is not None else "none"
        raise declare.Undeclared(
            f"{request.endpoint} validates its {where} with {model.__name__}; declared: {found}"
        )
    g.setdefault("validated", set()).add(where)


def raw_json(allow_empty: bool = False) -> Any:
    """The body as parsed JSON; `{}` for an empty body when `allow_empty`. A route that
    declared a body must read it as declared (optional or not)."""
    declared = declare.current()
    if declared is not None and declared.body is not None and declared.optional_body != allow_empty:
        raise declare.Undeclared(f"{request.endpoint}: optional_body must be {allow_empty}")
    data = request.get_data(cache=True)
    if not data.strip():
        if allow_empty:
            return {}
        if not is_platform():
            # As FastAPI answers a missing body.
            missing = [{"loc": ["body"], "msg": "Field required", "type": "missing"}]
            raise ApiError(422, "body required", detail=missing)
        raise _body_error("Request body must be a JSON object", "json_invalid")
    try:
        value = json.loads(data, parse_constant=_refuse, parse_float=_finite)
        # Lone surrogates ("\ud800") parse but cannot be stored as UTF-8: refuse them here.
        json.dumps(value, ensure_ascii=False).encode()
        return value
    except (ValueError, UnicodeError, RecursionError):
        # RecursionError: absurdly deep nesting is malformed input, not a server fault.
        raise _body_error("Malformed JSON body", "json_invalid") from None


def _refuse(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError("number out of range")
    return value


def parse(model: type[M], *, allow_empty: bool = False) -> M:
    """Validate the body; 400 `{"error"}` under /api, 422 `{"detail": [..]}` for the daemon."""
    _check(model, "body")
    data = raw_json(allow_empty)
    if not isinstance(data, dict):
        raise _body_error("Request body must be a JSON object", "model_attributes_type")
    return _validate(model, data, "body")


def validate(model: type[M], data: Any, loc: Where = "body") -> M:
    """Validate `data` (the body, or the query string with `loc="query"`) with `model`."""
    _check(model, loc)
    return _validate(model, data, loc)


def _validate(model: type[M], data: Any, loc: Where) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise from_validation(model, e, loc) from None


def from_validation(model: type[BaseModel], e: ValidationError, loc: str = "body") -> ApiError:
    errors = e.errors(include_url=False, include_context=False, include_input=False)
    if is_platform():
        return ApiError(400, platform_message(model, errors[0]))
    detail = [{"loc": [loc, *err["loc"]], "msg": err["msg"], "type": err["type"]} for err in errors]
    return ApiError(422, "validation error", detail=detail)


def platform_message(model: type[BaseModel], err: ErrorDetails) -> str:
    """`<field> is required`, a model's own message for the field, or `<field>: <reason>`."""
    field = ".".join(str(p) for p in err["loc"]) or "body"
    top = str(err["loc"][0]) if err["loc"] else ""
    custom: dict[str, str] = getattr(model, "__messages__", {})
    if top in custom:
        return custom[top]
    if err["type"] == "missing":
        return f"{field} is required"
    if err["type"] == "extra_forbidden":
        return f"{field} is not allowed"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{field}: {msg}"


def _body_error(message: str, kind: str) -> ApiError:
    if is_platform():
        return ApiError(400, message)
    return ApiError(422, message, detail=[{"loc": ["body"], "msg": message, "type": kind}])
