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
UNDOCUMENTED = (
    "/ws",
    "/static/<path:filename>",
    "/dashboard",
    "/dashboard/",
    "/dashboard/<path:filename>",
)
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
    if rule.rule == "/metrics":
        responses["200"] = {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
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


# ---- The markdown reference (docs/api.md) ------------------------------------------------------

CONSTRAINTS = {
    "minLength": "min length",
    "maxLength": "max length",
    "minimum": ">=",
    "exclusiveMinimum": ">",
    "maximum": "<=",
    "exclusiveMaximum": "<",
    "minItems": "min items",
    "maxItems": "max items",
    "pattern": "pattern",
    "format": "format",
}


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return "`" + schema["$ref"].rsplit("/", 1)[-1] + "`"
    if "const" in schema:
        return f"`{schema['const']!r}`"
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in schema:
            return " \\| ".join(_type(sub) for sub in schema[combinator])
    kind = schema.get("type")
    if kind == "array":
        return f"array of {_type(schema.get('items', {}))}"
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return f"object of {_type(schema['additionalProperties'])}"
    if isinstance(kind, list):
        return " \\| ".join(kind)
    return kind or "any"


def _constraints(schema: dict[str, Any]) -> str:
    found = []
    subs = [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]
    for sub in subs:
        for key, label in CONSTRAINTS.items():
            if key in sub:
                found.append(f"{label} `{sub[key]}`")
    if "default" in schema:
        found.append(f"default `{_json(schema['default'])}`")
    return ", ".join(found)


def _json(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True)


def _cell(text: str) -> str:
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(str(text).split()))


def _fields_table(schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    if not properties:
        return ["No fields."]
    required = set(schema.get("required", []))
    lines = [
        "| field | type | required | constraints | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, prop in properties.items():
        cells = [
            f"`{name}`",
            _type(prop),
            "yes" if name in required else "no",
            _constraints(prop),
            _cell(prop.get("description", "")),
        ]
        lines.append("| " + " | ".join(_cell(c) if i else c for i, c in enumerate(cells)) + " |")
    return lines


def markdown(doc: dict[str, Any]) -> str:
    """The reference as markdown: every operation grouped by tag, with its parameters and
    request body fields, then the shared schemas, the auth schemes and the error envelopes."""
    components = doc["components"]["schemas"]
    out = [
        "# API reference",
        "",
        "Generated from the app's OpenAPI 3.1 document (`GET /openapi.json` serves the same",
        "document) by `python -m api_shim.openapi --markdown docs/api.md`; do not edit by hand.",
        "`tests/unit/test_api_docs.py` fails when this file differs from a fresh render.",
        "",
        doc["info"]["description"],
        "",
        "Every operation may answer the group's error envelope (below) with 400, 401, 403, 404,",
        "405, 409, 410, 413, 415, 422, 500, 503 or 507; the HTTP server answers 414 itself for a",
        "request line over its limit. Success is 200 or 201 with a JSON object unless noted.",
        "The WebSocket `/ws` is described in the README (the agent mesh).",
        "",
    ]
    tags: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            tags.setdefault(op["tags"][0], []).append((path, method, op))
    titles = {
        "platform": "Platform group (`/api`)",
        "daemon": "Daemon group (root)",
    }
    used: set[str] = set()
    for tag in sorted(tags):
        out += [f"## {titles.get(tag, tag)}", ""]
        for path, method, op in tags[tag]:
            out += [f"### `{method.upper()} {path}`", "", _cell(op["summary"]), ""]
            security = op.get("security", [])
            schemes = [name for item in security for name in item]
            out.append("Auth: " + (", ".join(f"`{s}`" for s in schemes) or "none") + ".")
            out.append("")
            if op["parameters"]:
                out += [
                    "| parameter | in | type | required | constraints |",
                    "| --- | --- | --- | --- | --- |",
                ]
                for p in op["parameters"]:
                    schema = p["schema"]
                    out.append(
                        f"| `{p['name']}` | {p['in']} | {_type(schema)} | "
                        f"{'yes' if p['required'] else 'no'} | {_constraints(schema)} |"
                    )
                out.append("")
            body = op.get("requestBody")
            if body is not None:
                media, content = next(iter(body["content"].items()))
                schema = content["schema"]
                required = "required" if body.get("required", False) else "optional"
                if "$ref" in schema:
                    name = schema["$ref"].rsplit("/", 1)[-1]
                    used.add(name)
                    out += [f"Request body ({media}, {required}): `{name}`", ""]
                    out += _fields_table(components[name])
                else:
                    out += [f"Request body ({media}, {required}):", ""]
                    out += _fields_table(schema)
                out.append("")
            special = {
                code: r
                for code, r in op["responses"].items()
                if code == "200" and "application/json" not in r.get("content", {})
            }
            for code, response in special.items():
                media = next(iter(response.get("content", {"-": None})))
                out += [f"Answers {code}: {response['description']} (`{media}`).", ""]
    shared = sorted(set(components) - used - {"PlatformError", "Error"})
    if shared:
        out += ["## Shared schemas", "", "Types the request bodies above refer to.", ""]
        for name in shared:
            schema = components[name]
            out += [f"### `{name}`", ""]
            if schema.get("description"):
                out += [_cell(schema["description"]), ""]
            if "enum" in schema:
                out += ["One of " + _type(schema) + ".", ""]
            else:
                out += [*_fields_table(schema), ""]
    out += ["## Authentication", ""]
    out += ["| scheme | type | description |", "| --- | --- | --- |"]
    descriptions = {
        "apiKey": "an org API key (`rsk_…`) as `Authorization: Bearer <key>`",
        "runtimeToken": "a worker's runtime JWT from `POST /api/workers/register` or "
        "`/refresh-token`, as `Authorization: Bearer <token>`",
        "daemonToken": "`Authorization: Bearer <DISPATCHYARD_DAEMON_AUTH_TOKEN>`; without that "
        "setting the daemon routes answer loopback clients only",
    }
    for name, scheme in doc["components"]["securitySchemes"].items():
        kind = scheme["scheme"] + (
            f" ({scheme['bearerFormat']})" if "bearerFormat" in scheme else ""
        )
        out.append(f"| `{name}` | {kind} | {_cell(descriptions.get(name, ''))} |")
    out += [
        "",
        "Platform operations take either an API key or a runtime token (which routes take which",
        "is checked per route); a missing or wrong credential answers 401 with the envelope and",
        "`WWW-Authenticate`, and another org's ids answer 404.",
        "",
        "## Error envelopes",
        "",
        'Platform group (`/api/...`), `PlatformError`: `{"error": "<code>", ...}`; more',
        "fields may follow the code.",
        "",
        "```json",
        _json(components["PlatformError"]),
        "```",
        "",
        'Daemon group, `Error`: `{"detail": ...}` (a string, or an object such as',
        '`{"error": "broker_unavailable", "job_id": ...}`), as repowire answers.',
        "",
        "```json",
        _json(components["Error"]),
        "```",
        "",
        "A 503 (Redis or the broker unavailable) carries `Retry-After: 1`.",
        "",
    ]
    return "\n".join(out)


def build_app(data_dir: str) -> Flask:
    """An app built with throwaway dev settings (the dev JWT secret goes to `data_dir`), for
    rendering the reference: no Redis is contacted, the route table and models are all the
    document reads."""
    from pathlib import Path

    from api_shim import create_app
    from dispatchyard.settings import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        dev_mode=True,
        data_dir=Path(data_dir),
        jwt_algorithm="HS256",
        jwt_secret=None,
    )
    return create_app(settings)


def render_markdown() -> str:
    """docs/api.md."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dispatchyard-docs-") as tmp:
        return markdown(document(build_app(tmp)))


# ---- The configuration reference (docs/configuration.md) ------------------------------------

# Meanings of the fields settings.py carries no comment for (the comments win where present).
MEANINGS = {
    "redis_url": "broker and the one store: `redis://`, `rediss://`, `unix://`, or "
    "`sentinel://[user:password@]host1:26379,host2:26379/0?master=NAME[&sentinel_password=…]` "
    "(see docs/operations.md)",
    "dev_mode": "dev mode generates a JWT secret into `DATA_DIR/jwt_secret` (`make run` sets 1)",
    "data_dir": "dev secret, executor logs and output, attachments",
    "jwt_secret": "HS256 secret for runtime JWTs; required outside dev mode",
    "jwt_algorithm": "`HS256`, or `RS256`/`ES256` with `JWT_PRIVATE_KEY` / `JWT_PUBLIC_KEY` (PEM)",
    "jwt_public_key": "PEM, for RS256/ES256",
    "jwt_issuer": "`iss` of runtime JWTs, checked on every token",
    "jwt_ttl_seconds": "runtime token lifetime",
    "jwt_leeway_seconds": "clock leeway when checking a runtime token's expiry",
    "worker_api_key": "the legacy worker key; unset means that path is off",
    "platform_url": "returned to runners as `platformUrl`",
    "daemon_auth_token": "bearer token for the daemon routes; unset: they answer loopback "
    "clients only",
    "heartbeat_interval_ms": "heartbeat interval told to registering workers",
    "poll_interval_ms": "poll interval told to registering workers",
    "poll_batch_max": "sessions one poll may claim",
    "worker_offline_after_s": "no heartbeat for this long: the host is `offline` and its "
    "claimed-but-not-running sessions return to the queue",
    "health_long_running_s": "session health: running longer than this",
    "health_stale_heartbeat_s": "session health: no activity for this long",
    "health_claim_stuck_s": "session health: claimed but not running for this long",
    "health_tool_loop_s": "session health: the same tool repeated for this long",
    "session_list_limit": "most sessions `GET /api/sessions` returns",
    "mutation_redeliver_after_s": "a delivered mutation with no report is delivered again",
    "mutation_max_deliveries": "then it fails with `undelivered`",
    "sweep_interval_s": "how often beat runs the sweeps",
    "job_lease_s": "an attempt's lease, renewed every third of it while the executor runs",
    "job_kill_grace_s": "SIGTERM to SIGKILL grace on cancel and deadline",
    "template_tick_s": "how often beat runs the scheduler tick",
    "clock_anchor_ms": "tests only: the instant the accelerated clock starts from",
    "max_body_bytes": "largest request body (413 beyond)",
    "attachment_max_bytes": "largest attachment (413 beyond)",
    "attachment_total_bytes": "all attachments kept together (507 beyond)",
    "attachment_ttl_s": "how long an attachment is kept",
}


def _settings_comments() -> tuple[dict[str, str], dict[str, str]]:
    """From settings.py's source: each Settings field's comment (the lines right above it and
    its trailing comment) and its section (a comment line after a blank line)."""
    import tokenize
    from io import StringIO

    from dispatchyard import settings as settings_module

    source = inspect.getsource(settings_module.Settings)
    lines = source.splitlines()
    trailing: dict[int, str] = {}
    for token in tokenize.generate_tokens(StringIO(source).readline):
        if token.type == tokenize.COMMENT and lines[token.start[0] - 1].strip()[:1] != "#":
            trailing[token.start[0] - 1] = token.string.lstrip("# ").strip()
    comments: dict[str, str] = {}
    sections: dict[str, str] = {}
    section = ""
    block: list[str] = []
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith("#"):
            header = not lines[i - 1].strip() and not lines[i + 1].strip().startswith("#")
            if header and not text.endswith("."):  # a sentence is the next field's comment
                section, block = text.lstrip("# ").strip(), []
            else:
                block.append(text.lstrip("# ").strip())
            continue
        match = re.match(r"\s{4}([a-z_]+):", line)
        if match:
            parts = [*block, *([trailing[i]] if i in trailing else [])]
            comments[match.group(1)] = " ".join(parts)
            sections[match.group(1)] = section
        if text:
            block = []
    return comments, sections


def _default(name: str, field: Any) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if name == "backends":
            return "the shipped " + ", ".join(f"`{n}`" for n in value)
        return f"`{_json(value)}`"
    value = field.default
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "`1`" if value else "`0`"
    if hasattr(value, "as_posix"):
        return f"`{value.as_posix()}`" if str(value).startswith("/") else f"`./{value}`"
    return f"`{value}`"


def configuration_markdown() -> str:
    """docs/configuration.md: every Settings field, its variable, type, default and meaning,
    read from settings.py itself."""
    from dispatchyard.settings import Settings

    comments, sections = _settings_comments()
    out = [
        "# Configuration",
        "",
        "Every setting of `dispatchyard/settings.py`'s one `Settings` object, read from",
        "`DISPATCHYARD_<FIELD>` environment variables (upper case) and an optional `.env` file in",
        "the working directory.",
        "Booleans take `1`/`0` or `true`/`false`; `BACKENDS` is JSON. Generated by",
        "`python -m api_shim.openapi --configuration docs/configuration.md`; do not edit by hand",
        "(`tests/unit/test_api_docs.py` fails when it differs from a fresh render).",
        "",
    ]
    current = None
    source = inspect.getsource(Settings)
    for name, field in Settings.model_fields.items():
        section = sections.get(name) or "General"
        if section != current:
            current = section
            out += [
                f"## {section}",
                "",
                "| variable | type | default | meaning |",
                "| --- | --- | --- | --- |",
            ]
        annotation = re.search(rf"^\s{{4}}{name}: ([^=\n]+?)(?: = |$)", source, re.M)
        kind = annotation.group(1).strip() if annotation else str(field.annotation)
        meaning = comments.get(name) or MEANINGS.get(name, "")
        constraints = [
            f"{label} {getattr(m, attr)}"
            for m in field.metadata
            for attr, label in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"))
            if getattr(m, attr, None) is not None
        ]
        if constraints:
            meaning += f" (must be {', '.join(constraints)})"
        out.append(
            f"| `DISPATCHYARD_{name.upper()}` | {_cell(f'`{kind}`')} | {_default(name, field)} | "
            f"{_cell(meaning)} |"
        )
    out += [
        "",
        "Durations ending in `_S` are seconds, `_MS` milliseconds. Every process (shim, worker,",
        "beat) reads the same settings: give them the same environment.",
        "",
    ]
    # A blank line after the last row of each section's table.
    text = "\n".join(out)
    return re.sub(r"\|\n## ", "|\n\n## ", text)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m api_shim.openapi")
    parser.add_argument("--markdown", metavar="PATH", help="write the API reference here")
    parser.add_argument("--configuration", metavar="PATH", help="write the settings reference")
    args = parser.parse_args(argv)
    if not args.markdown and not args.configuration:
        parser.error("give --markdown PATH and/or --configuration PATH")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(render_markdown())
    if args.configuration:
        with open(args.configuration, "w") as f:
            f.write(configuration_markdown())


if __name__ == "__main__":
    main()
