"""The API reference: `GET /openapi.json` (OpenAPI 3.1, made from the routes' declarations)
and `GET /docs`, the same document rendered as a page. Both sit behind the daemon group's
credentials, like every route but /health."""

from __future__ import annotations

import html
import json
from typing import Any

from flask import Response, current_app

from api_shim import openapi
from api_shim.daemon import answers, blueprint
from api_shim.declare import declare


@blueprint.get("/openapi.json")
@declare(responses={200: answers.Document})
def openapi_document() -> Response:
    return Response(json.dumps(openapi.cached(current_app)), mimetype="application/json")


def _name(content: dict[str, Any]) -> str:
    """The schema a request or answer refers to, by name ('' for none)."""
    for media in content.values():
        return str(media.get("schema", {}).get("$ref", "")).rsplit("/", 1)[-1]
    return ""


def _page(doc: dict[str, Any]) -> str:
    rows = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            body = _name(op.get("requestBody", {}).get("content", {}))
            success = [r for code, r in op["responses"].items() if code.startswith("2")]
            answer = ", ".join(_name(r["content"]) or next(iter(r["content"])) for r in success)
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(op['summary'])}</td><td>{html.escape(params)}"
                f"</td><td>{html.escape(body)}</td><td>{html.escape(answer)}</td></tr>"
            )
    schemas = "".join(
        f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3><pre>"
        f"{html.escape(json.dumps(schema, indent=2))}</pre>"
        for name, schema in doc["components"]["schemas"].items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>dispatchyard API</title>"
        "<style>body{font:14px system-ui;margin:2em}td,th{padding:2px 8px;text-align:left}"
        "tr:nth-child(even){background:#f4f4f4}pre{background:#f8f8f8;padding:8px}</style>"
        f"</head><body><h1>dispatchyard API {html.escape(doc['info']['version'])}</h1>"
        "<p>Generated from the routes; the machine-readable document is "
        "<a href='/openapi.json'>/openapi.json</a>.</p><table><tr><th>method</th><th>path</th>"
        "<th>summary</th><th>parameters</th><th>body</th><th>answer</th></tr>"
        + "".join(rows)
        + f"</table><h2>Schemas</h2>{schemas}</body></html>"
    )


@blueprint.get("/docs")
@declare(responses={200: answers.PAGE})
def reference_page() -> Response:
    return Response(_page(openapi.cached(current_app)), mimetype="text/html")
