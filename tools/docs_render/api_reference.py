"""docs/api.md: the app's OpenAPI document (`api_shim/openapi.py`, the same one
`GET /openapi.json` serves) as markdown: every operation grouped by tag with its parameters,
request body fields and answers, then every schema, the auth schemes and the error envelopes."""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from api_shim import create_app, openapi
from dispatchyard.settings import Settings

Schema = dict[str, Any]
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
TITLES = {"platform": "Platform group (`/api`)", "daemon": "Daemon group (root)"}
ENVELOPES = ("PlatformError", "Error")
SCHEME_DESCRIPTIONS = {
    "apiKey": "an org API key (`rsk_…`) as `Authorization: Bearer <key>`",
    "runtimeToken": "a worker's runtime JWT from `POST /api/workers/register` or "
    "`/refresh-token`, as `Authorization: Bearer <token>`",
    "daemonToken": "`Authorization: Bearer <DISPATCHYARD_DAEMON_AUTH_TOKEN>`; without that "
    "setting the daemon routes answer loopback clients only",
}
INTRO = """# API reference

Generated from the app's OpenAPI 3.1 document (`GET /openapi.json` serves the same document),
which is made from each route's declaration of its query, body and answer models
(`api_shim/declare.py`), by `python -m tools.docs_render`; do not edit by hand.
`tests/unit/test_api_docs.py` fails when this file differs from a fresh render.

{description}

Every operation may answer the group's error envelope (below) with 400, 401, 403, 404, 405,
409, 410, 413, 415, 422, 500, 503 or 507; the HTTP server answers 414 itself for a request
line over its limit. Each operation lists its other answers and their schemas (under
*Schemas*). The WebSocket `/ws` is described in the README (the agent mesh).
"""
OUTRO = """
Platform operations take either an API key or a runtime token (which routes take which
is checked per route); a missing or wrong credential answers 401 with the envelope and
`WWW-Authenticate`, and another org's ids answer 404.

## Error envelopes

Platform group (`/api/...`), `PlatformError`: `{{"error": "<code>", ...}}`; more
fields may follow the code.

```json
{platform}
```

Daemon group, `Error`: `{{"detail": ...}}` (a string, or an object such as
`{{"error": "broker_unavailable", "job_id": ...}}`), as repowire answers.

```json
{daemon}
```

A 503 (Redis or the broker unavailable) carries `Retry-After: 1`. A 429 (a request budget
spent: the org's, a host's heartbeats and polls, a sending peer's; see
`DISPATCHYARD_API_*`, `_HOST_*`, `_PEER_*` in docs/configuration.md) carries `Retry-After`
in seconds; the operations that can answer it list it.
"""


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def _name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: Schema) -> str:
    if "$ref" in schema:
        return f"`{_name(schema['$ref'])}`"
    if "const" in schema:
        return f"`{_json(schema['const'])}`"
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
    return str(kind) if kind else "any"


def _constraints(schema: Schema) -> str:
    found = []
    for sub in [schema, *schema.get("anyOf", []), *schema.get("oneOf", [])]:
        for key, label in CONSTRAINTS.items():
            if key in sub:
                found.append(f"{label} `{sub[key]}`")
    if "default" in schema:
        found.append(f"default `{_json(schema['default'])}`")
    return ", ".join(found)


def _cell(text: str) -> str:
    return re.sub(r"(?<!\\)\|", r"\\|", " ".join(str(text).split()))


def _fields_table(schema: Schema) -> list[str]:
    properties: dict[str, Schema] = schema.get("properties", {})
    if not properties:
        return ["No fields."]
    required = set(schema.get("required", []))
    lines = [
        "| field | type | required | constraints | description |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, prop in properties.items():
        cells = [
            _type(prop),
            "yes" if name in required else "no",
            _cell(_constraints(prop)),
            _cell(prop.get("description", "")),
        ]
        lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
    if schema.get("additionalProperties") is True:
        lines += ["", "More fields of its own may follow."]
    return lines


def _schema_section(name: str, schema: Schema) -> list[str]:
    out = [f"### `{name}`", ""]
    if schema.get("description"):
        out += [_cell(schema["description"]), ""]
    if "enum" in schema:
        return [*out, "One of " + _type(schema) + ".", ""]
    if "properties" in schema or schema.get("type") == "object":
        return [*out, *_fields_table(schema), ""]
    if "anyOf" in schema:
        return [*out, "One of " + _type(schema).replace(" \\| ", ", ") + ".", ""]
    return [*out, _type(schema)[0].upper() + _type(schema)[1:] + ".", ""]


def _operation(path: str, method: str, op: Schema, components: Schema) -> tuple[list[str], str]:
    """The operation's section, and the request body schema it showed inline ('' for none)."""
    text: str = op.get("description") or op["summary"]  # the whole docstring, else its line
    out = [f"### `{method.upper()} {path}`", "", _cell(text), ""]
    schemes = [name for item in op.get("security", []) for name in item]
    out += ["Auth: " + (", ".join(f"`{s}`" for s in schemes) or "none") + ".", ""]
    if op["parameters"]:
        out += [
            "| parameter | in | type | required | constraints |",
            "| --- | --- | --- | --- | --- |",
        ]
        for p in op["parameters"]:
            required = "yes" if p["required"] else "no"
            schema = p["schema"]
            out.append(
                f"| `{p['name']}` | {p['in']} | {_type(schema)} | {required} | "
                f"{_constraints(schema)} |"
            )
        out.append("")
    inline = ""
    body = op.get("requestBody")
    if body is not None:
        media, content = next(iter(body["content"].items()))
        schema = content["schema"]
        required = "required" if body.get("required", False) else "optional"
        if "$ref" in schema:
            inline = _name(schema["$ref"])
            out += [f"Request body ({media}, {required}): `{inline}`", ""]
            out += _fields_table(components[inline])
        else:
            out += [f"Request body ({media}, {required}):", ""]
            out += _fields_table(schema)
        out.append("")
    for code, response in op["responses"].items():
        content = response.get("content", {})
        json_schema = content.get("application/json", {}).get("schema", {})
        if "$ref" in json_schema and _name(json_schema["$ref"]) in ENVELOPES:
            continue  # the group's envelope, said once above
        if code == "414":
            continue
        media = next(iter(content), "-")
        if media == "application/json":
            out.append(f"Answers {code}: {_type(json_schema)}.")
        else:
            out.append(f"Answers {code}: {response['description']} (`{media}`).")
    return [*out, ""], inline


def markdown(doc: Schema) -> str:
    components: Schema = doc["components"]["schemas"]
    out = INTRO.format(description=doc["info"]["description"]).splitlines()
    out.append("")
    tags: dict[str, list[tuple[str, str, Schema]]] = {}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            tags.setdefault(op["tags"][0], []).append((path, method, op))
    inline: set[str] = set()
    for tag in sorted(tags):
        out += [f"## {TITLES.get(tag, tag)}", ""]
        for path, method, op in tags[tag]:
            section, shown = _operation(path, method, op, components)
            out += section
            inline.add(shown)
    out += [
        "## Schemas",
        "",
        "The answers above and the types they and the request bodies use.",
        "",
    ]
    for name in sorted(set(components) - inline - set(ENVELOPES)):
        out += _schema_section(name, components[name])
    out += ["## Authentication", "", "| scheme | type | description |", "| --- | --- | --- |"]
    for name, scheme in doc["components"]["securitySchemes"].items():
        kind = scheme["scheme"] + (
            f" ({scheme['bearerFormat']})" if "bearerFormat" in scheme else ""
        )
        out.append(f"| `{name}` | {kind} | {_cell(SCHEME_DESCRIPTIONS.get(name, ''))} |")
    platform, daemon = (_json(components[name]) for name in ENVELOPES)
    return "\n".join(out) + "\n" + OUTRO.format(platform=platform, daemon=daemon)


def render() -> str:
    """docs/api.md, from an app built with throwaway dev settings (no Redis is contacted: the
    route table and the declarations are all the document reads)."""
    with tempfile.TemporaryDirectory(prefix="dispatchyard-docs-") as tmp:
        settings = Settings.model_validate(
            {"dev_mode": True, "data_dir": Path(tmp), "jwt_algorithm": "HS256"}
        )
        return markdown(openapi.document(create_app(settings)))
