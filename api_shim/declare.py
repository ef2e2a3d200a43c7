"""What each route accepts and answers, declared where the route is defined:

    @blueprint.post("/jobs/<job_id>/cancel")
    @declare(body=CancelBody, responses={200: JobStatusAnswer})
    def cancel_job(job_id: str) -> ...

The declaration is the one source of the OpenAPI document (`api_shim/openapi.py`) and of two
checks: `bodies.parse` / `bodies.validate` refuse a model the endpoint did not declare (a
programming error, so a test fails at once), and under `check_responses` (tests only) every
answer is checked against its declared model (`api_shim/conformance.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import current_app, request
from pydantic import BaseModel

F = TypeVar("F", bound=Callable[..., Any])
ATTRIBUTE = "__declared__"


@dataclass(frozen=True)
class Media:
    """An answer that is not a JSON document: its media type (`*/*` for a stored file of any
    type) and what it is."""

    type: str
    description: str


# A JSON body described by a pydantic model, or another media type.
Answer = type[BaseModel] | Media


@dataclass(frozen=True)
class Declared:
    """A route's declaration. `body`: the JSON body model (`optional_body`: an empty body reads
    as `{}`); `query`: the query string model; `upload`: the multipart field of a file upload;
    `responses`: each success status (and any non-error answer of another status) and its
    model; `open`: no credentials; `listed`: in the OpenAPI document (False for the dashboard's
    static files and the WebSocket)."""

    responses: Mapping[int, Answer] = field(default_factory=dict)
    body: type[BaseModel] | None = None
    optional_body: bool = False
    query: type[BaseModel] | None = None
    upload: str | None = None
    open: bool = False
    listed: bool = True


def declare(
    *,
    responses: Mapping[int, Answer] | None = None,
    body: type[BaseModel] | None = None,
    optional_body: bool = False,
    query: type[BaseModel] | None = None,
    upload: str | None = None,
    open: bool = False,
    listed: bool = True,
) -> Callable[[F], F]:
    """Attach the declaration to the view (the function itself is returned unchanged)."""
    if optional_body and body is None:
        raise ValueError("optional_body needs a body model")
    if listed and not responses:
        raise ValueError("a listed route declares its answers")
    declared = Declared(
        responses=dict(responses or {}),
        body=body,
        optional_body=optional_body,
        query=query,
        upload=upload,
        open=open,
        listed=listed,
    )

    def attach(view: F) -> F:
        setattr(view, ATTRIBUTE, declared)
        return view

    return attach


def of(view: Callable[..., Any]) -> Declared | None:
    """The view's declaration, if it has one."""
    found = getattr(view, ATTRIBUTE, None)
    return found if isinstance(found, Declared) else None


def current() -> Declared | None:
    """The declaration of the endpoint serving this request."""
    if request.endpoint is None:
        return None
    view = current_app.view_functions.get(request.endpoint)
    return of(view) if view is not None else None


class Undeclared(RuntimeError):
    """A route validated with a model it did not declare: the document would not say what the
    route accepts. A programming error (500), caught by the first test of the route."""
