"""The OpenAPI 3.1 document of every route, generated from the app itself: the route table
gives the paths and methods, and each view's request models are the pydantic models it
validates with (`bodies.parse(Model)` for the body, `bodies.validate(Model, request.args...)`
for the query), found by reading the view's source. Nothing is written by hand, so the document
cannot drift from what the routes accept.

Answers are documented by status: success bodies as JSON objects (their shapes are repowire's
and the platform's, listed in the reference), errors with the group's envelope.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from flask import Flask
from pydantic import BaseModel

from api_shim import bodies

try:
    VERSION = version("dispatchyard")
except PackageNotFoundError:
    VERSION = "0.0.0"

# Routes a request/response document cannot describe: the WebSocket upgrade (its protocol is
# in the README) and Flask's static files.
UNDOCUMENTED = ("/ws", "/static/<path:filename>")
OPEN = ("/health",)
PLATFORM_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
    "additionalProperties": True,
}
DAEMON_ERROR = {"type": "object", "required": ["detail"], "properties": {"detail": {}}}
ERRORS = (400, 401, 403, 404, 405, 409, 410, 413, 415, 422, 500, 503, 507)
CONVERTER = re.compile(r"<(?:[a-z]+:)?([a-zA-Z_][a-zA-Z0-9_]*)>")


def _models(view: Callable[..., Any]) -> dict[str, Any]:
    """The models a view validates with — {"body": Model, "query": Model, "optional": bool} —
    following calls to functions of its own module one level deep (routes that share a helper,
    such as run and retry)."""
    module = inspect.getmodule(view)
    found: dict[str, Any] = {}

    def scan(func: Callable[..., Any], depth: int) -> None:
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        except (OSError, TypeError):
            return
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            if name in ("bodies.parse", "bodies.validate") and node.args:
                model = _resolve(module, ast.unparse(node.args[0]))
                if model is not None:
                    query = name == "bodies.validate" and "request.args" in ast.unparse(node)
                    found.setdefault("query" if query else "body", model)
                    # `allow_empty=True`, or a body read with raw_json(allow_empty=True) first.
                    found.setdefault("optional", "allow_empty=True" in ast.unparse(node))
            elif depth > 0 and isinstance(node.func, ast.Name) and module is not None:
                helper = getattr(module, node.func.id, None)
                if inspect.isfunction(helper) and helper.__module__ == module.__name__:
                    scan(helper, depth - 1)

    scan(view, 1)
    return found


def _resolve(module: Any, expr: str) -> type[BaseModel] | None:
    value: Any = module
    for part in expr.split("."):
        value = getattr(value, part, None)
    return value if isinstance(value, type) and issubclass(value, BaseModel) else None


def _schema(model: type[BaseModel], components: dict[str, Any]) -> dict[str, Any]:
    # Qualified by module: several route modules have a `CreateBody` or a `ListQuery`.
    name = f"{model.__module__.rsplit('.', 1)[-1]}.{model.__name__}"
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for sub_name, sub in schema.pop("$defs", {}).items():
        components[sub_name] = sub
    components[name] = schema
    return {"$ref": f"#/components/schemas/{name}"}


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop}
        for name, prop in schema.get("properties", {}).items()
    ]


def _operation(rule: Any, method: str, view: Callable[..., Any], components: dict[str, Any]):
    platform = rule.rule.startswith("/api/")
    models = _models(view)
    body, query = models.get("body"), models.get("query")
    envelope = {"$ref": "#/components/schemas/" + ("PlatformError" if platform else "Error")}
    error = {
        "description": "An error, in the group's envelope",
        "content": {"application/json": {"schema": envelope}},
    }
    responses: dict[str, Any] = {
        "200": {"description": "Success", "content": {"application/json": {"schema": {}}}},
        "201": {"description": "Created", "content": {"application/json": {"schema": {}}}},
    }
    responses.update({str(code): error for code in ERRORS})
    # Answered by gunicorn before the app sees the request (a request line over its limit).
    responses["414"] = {
        "description": "URI too long (the HTTP server's own answer)",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    if rule.rule == "/docs":
        responses["200"] = {
            "description": "The reference page",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    if rule.rule == "/events/stream":
        responses["200"] = {
            "description": "Server-Sent Events",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    if rule.rule.startswith("/attachments/"):
        responses["200"] = {"description": "The file", "content": {"*/*": {"schema": {}}}}
    operation: dict[str, Any] = {
        "operationId": method.lower() + re.sub(r"[^A-Za-z0-9]+", "_", rule.rule).rstrip("_"),
        "summary": (inspect.getdoc(view) or view.__name__.replace("_", " ")).splitlines()[0],
        "tags": ["platform" if platform else "daemon"],
        "parameters": [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in CONVERTER.findall(rule.rule)
        ],
        "responses": responses,
    }
    if query is not None:
        operation["parameters"] += _query_parameters(query)
    if body is not None and method in ("POST", "PATCH", "PUT"):
        operation["requestBody"] = {
            "required": body is not bodies.Empty and not models.get("optional"),
            "content": {"application/json": {"schema": _schema(body, components)}},
        }
    if rule.rule.startswith("/attachments") and method == "POST":
        file = {"type": "string", "format": "binary"}
        upload = {"type": "object", "required": ["file"], "properties": {"file": file}}
        operation["requestBody"] = {"content": {"multipart/form-data": {"schema": upload}}}
    if rule.rule in OPEN:
        operation["security"] = []
    elif platform:
        operation["security"] = [{"apiKey": []}, {"runtimeToken": []}]
    else:
        operation["security"] = [{"daemonToken": []}]
    return operation


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `app`'s routes."""
    components: dict[str, Any] = {"PlatformError": PLATFORM_ERROR, "Error": DAEMON_ERROR}
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.rule in UNDOCUMENTED:
            continue
        path = CONVERTER.sub(r"{\1}", rule.rule)
        view = app.view_functions[rule.endpoint]
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(rule, method, view, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "dispatchyard",
            "version": VERSION,
            "description": "The platform group under /api and the daemon group at the root.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "apiKey": {"type": "http", "scheme": "bearer", "description": "rsk_ API key"},
                "runtimeToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "daemonToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "DISPATCHYARD_DAEMON_AUTH_TOKEN",
                },
            },
        },
    }


@cache
def _cached(app_id: int, app: Flask) -> dict[str, Any]:
    return document(app)


def cached(app: Flask) -> dict[str, Any]:
    """The document, built once per app (the route table does not change after start)."""
    return _cached(id(app), app)
