"""The OpenAPI 3.1 document of every route, made from the route table (paths and methods) and
each route's declaration (`api_shim/declare.py`: its query, body and answer models). Nothing is
read from the views' source and nothing is written by hand; a route without a declaration
fails the build of the document (and so the tests).

Errors are documented by status with the group's envelope; an answer a route declares for an
error status (a lost cancel race, /health's 503) is documented beside the envelope.
"""

from __future__ import annotations

import inspect
import re
from http import HTTPStatus
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Flask
from pydantic import BaseModel
from werkzeug.routing import Rule

from api_shim import declare
from api_shim.declare import Declared, Media

try:
    VERSION = version("dispatchyard")
except PackageNotFoundError:
    VERSION = "0.0.0"

Schema = dict[str, Any]
COMPONENT = "#/components/schemas/{model}"
BUILT_IN = ("static",)  # Flask's own static files: no declaration of ours
PLATFORM_ERROR: Schema = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": True,
}
DAEMON_ERROR: Schema = {"type": "object", "required": ["detail"], "properties": {"detail": {}}}
ERRORS = (400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 500, 503, 507)
CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")
SECURITY_SCHEMES = {
    "apiKey": {"type": "http", "scheme": "bearer", "description": "rsk_ API key"},
    "runtimeToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
    "daemonToken": {
        "type": "http",
        "scheme": "bearer",
        "description": "DISPATCHYARD_DAEMON_AUTH_TOKEN",
    },
}


class Components:
    """The document's schemas: each model once, named by its module (several route modules
    have a `CreateBody` or a `ListQuery`), with the models it nests under their own names."""

    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {"PlatformError": PLATFORM_ERROR, "Error": DAEMON_ERROR}

    def ref(self, model: type[BaseModel]) -> Schema:
        name = f"{model.__module__.removeprefix('api_shim.')}.{model.__name__}"
        if name not in self.schemas:
            self._add(name, self.inline(model))
        return {"$ref": COMPONENT.format(model=name)}

    def inline(self, model: type[BaseModel]) -> Schema:
        """The model's own schema, its nested models added as components."""
        schema = model.model_json_schema(ref_template=COMPONENT)
        for sub_name, sub in schema.pop("$defs", {}).items():
            self._add(sub_name, sub)
        return schema

    def _add(self, name: str, schema: Schema) -> None:
        if self.schemas.setdefault(name, schema) != schema:
            raise ValueError(f"two different schemas are named {name}: rename one model")


def _content(answer: declare.Answer, components: Components) -> dict[str, Schema]:
    if isinstance(answer, Media):
        schema: Schema = {} if answer.type == "*/*" else {"type": "string"}
        return {answer.type: {"schema": schema}}
    return {"application/json": {"schema": components.ref(answer)}}


def _responses(declared: Declared, platform: bool, components: Components) -> Schema:
    envelope = {"$ref": COMPONENT.format(model="PlatformError" if platform else "Error")}
    responses: Schema = {}
    for code, answer in sorted(declared.responses.items()):
        description = answer.description if isinstance(answer, Media) else HTTPStatus(code).phrase
        responses[str(code)] = {"description": description, "content": _content(answer, components)}
    for code in ERRORS:
        if str(code) not in responses:
            responses[str(code)] = {
                "description": "An error, in the group's envelope",
                "content": {"application/json": {"schema": envelope}},
            }
        elif "application/json" in responses[str(code)]["content"]:
            # The route's own answer for this status, or the envelope when something else fails.
            content = responses[str(code)]["content"]["application/json"]
            content["schema"] = {"anyOf": [content["schema"], envelope]}
    # Answered by gunicorn before the app sees the request (a request line over its limit).
    responses["414"] = {
        "description": "URI too long (the HTTP server's own answer)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    return responses


def _operation(
    rule: Rule, method: str, view: Any, declared: Declared, components: Components
) -> Schema:
    platform = rule.endpoint.startswith("platform.")
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in CONVERTER.findall(rule.rule)
    ]
    if declared.query is not None:
        schema = components.inline(declared.query)
        required = set(schema.get("required", []))
        parameters += [
            {"name": name, "in": "query", "required": name in required, "schema": prop}
            for name, prop in schema.get("properties", {}).items()
        ]
    doc = inspect.cleandoc(view.__doc__ or "")
    operation: Schema = {
        "operationId": method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", rule.rule).rstrip("_"),
        "summary": (doc or view.__name__.replace("_", " ")).splitlines()[0],
        "tags": ["platform" if platform else "daemon"],
        "parameters": parameters,
        "responses": _responses(declared, platform, components),
    }
    if len(doc.splitlines()) > 1:  # the whole docstring; the summary is its first line
        operation["description"] = " ".join(line.strip() for line in doc.splitlines())
    if declared.body is not None and method in ("POST", "PATCH", "PUT"):
        operation["requestBody"] = {
            "required": not declared.optional_body,
            "content": {"application/json": {"schema": components.ref(declared.body)}},
        }
    if declared.upload is not None:
        file = {"type": "string", "format": "binary"}
        upload = {
            "type": "object",
            "required": [declared.upload],
            "properties": {declared.upload: file},
        }
        operation["requestBody"] = {"content": {"multipart/form-data": {"schema": upload}}}
    if declared.open:
        operation["security"] = []
    elif platform:
        operation["security"] = [{"apiKey": []}, {"runtimeToken": []}]
    else:
        operation["security"] = [{"daemonToken": []}]
    return operation


def document(app: Flask) -> Schema:
    """The OpenAPI 3.1 document of `app`'s routes; raises `Undeclared` for a route that has no
    declaration."""
    components = Components()
    paths: dict[str, Schema] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint in BUILT_IN:
            continue
        view = app.view_functions[rule.endpoint]
        declared = declare.of(view)
        if declared is None:
            raise declare.Undeclared(f"{rule.endpoint} ({rule.rule}) has no declaration")
        if not declared.listed:
            continue
        path = CONVERTER.sub(r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            operation = _operation(rule, method, view, declared, components)
            paths.setdefault(path, {})[method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dispatchyard",
            "version": VERSION,
            "description": "The platform group under /api and the daemon group at the root.",
        },
        "paths": paths,
        "components": {"schemas": components.schemas, "securitySchemes": SECURITY_SCHEMES},
    }


def cached(app: Flask) -> Schema:
    """The document, built once per app (the route table does not change after start)."""
    found: Schema | None = app.extensions.get("dispatchyard.openapi")
    if found is None:
        found = app.extensions["dispatchyard.openapi"] = document(app)
    return found
