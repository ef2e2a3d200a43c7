"""Tests only (`DISPATCHYARD_CHECK_RESPONSES=1`, off in production): every answer is checked
against its route's declaration (`api_shim/declare.py`), so the whole integration suite proves
the answer models right.

- a success status must be declared, and its body must validate against the declared model
  (strict: exactly its fields, of its types), or have the declared media type;
- a route that declares a body or query model must have validated it when it succeeds;
- an error must be in its group's envelope (`{"error"}` under /api, `{"detail"}` elsewhere).

A mismatch is logged and turns the answer into a 500 with the reason, which fails the test
that made the request.
"""

from __future__ import annotations

import json
import logging

from flask import Flask, Response, g, request
from pydantic import BaseModel, ValidationError

from api_shim import declare
from api_shim.declare import Media
from api_shim.errors import ApiError, envelope, is_platform

log = logging.getLogger("dispatchyard.conformance")
BUILT_IN = ("static",)


def register(app: Flask) -> None:
    app.after_request(check)


def check(response: Response) -> Response:
    """The answer if it conforms, else a 500 saying why."""
    if request.endpoint is None or request.endpoint in BUILT_IN:
        return response  # no route matched (404, 405): the error handlers' own envelopes
    declared = declare.current()
    if declared is None:
        return _refuse(response, "the route has no declaration")
    if not declared.listed:
        return response
    problem = _problem(response, declared)
    return response if problem is None else _refuse(response, problem)


def _problem(response: Response, declared: declare.Declared) -> str | None:
    status = response.status_code
    answer = declared.responses.get(status)
    if answer is None:
        if status < 400:
            return f"status {status} is not declared"
        return _envelope_problem(response)
    for where, model in (("body", declared.body), ("query", declared.query)):
        if model is not None and status < 300 and where not in g.get("validated", set()):
            return f"the declared {where} model {model.__name__} was not validated"
    if isinstance(answer, Media):
        if answer.type not in ("*/*", response.mimetype):
            return f"media type {response.mimetype}, declared {answer.type}"
        return None
    problem = _model_problem(response, answer)
    if problem is not None and status >= 400 and _envelope_problem(response) is None:
        return None  # an error status the route also answers in the envelope
    return problem


def _model_problem(response: Response, model: type[BaseModel]) -> str | None:
    if response.mimetype != "application/json":
        return f"media type {response.mimetype}, declared JSON ({model.__name__})"
    try:
        model.model_validate_json(response.get_data())
    except ValidationError as e:
        errors = e.errors(include_url=False, include_input=False)[:5]
        found = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in errors)
        return f"the body does not match {model.__name__}: {found}"
    return None


def _envelope_problem(response: Response) -> str | None:
    name = "error" if is_platform() else "detail"
    try:
        body = json.loads(response.get_data())
    except ValueError:
        body = None
    if not isinstance(body, dict) or name not in body:
        return f"an error ({response.status_code}) not in the group's envelope {{{name!r}}}"
    if is_platform() and not isinstance(body["error"], str):
        return "a platform error whose `error` is not a string"
    return None


def _refuse(response: Response, problem: str) -> Response:
    message = (
        f"{request.method} {request.path} answered {response.status_code} against its "
        f"declaration: {problem}"
    )
    log.error("%s", message)
    return envelope(ApiError(500, message))
