"""The API reference: `GET /openapi.json` (OpenAPI 3.1, generated from the routes and their
pydantic models) and `GET /docs`, the same document rendered as a page. Both sit behind the
daemon group's credentials, like every route but /health."""

from __future__ import annotations

import html
import json
from typing import Any

from flask import Response, current_app

from api_shim import openapi
from api_shim.daemon import blueprint


@blueprint.get("/openapi.json")
def openapi_document():
    return Response(json.dumps(openapi.cached(current_app)), mimetype="application/json")


def _page(doc: dict[str, Any]) -> str:
    rows = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            params = ", ".join(p["name"] for p in op.get("parameters", []))
            body = op.get("requestBody", {}).get("content", {})
            ref = next(iter(body.values()), {}).get("schema", {}).get("$ref", "")
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}"
                f"</code></td><td>{html.escape(op['summary'])}</td><td>{html.escape(params)}"
                f"</td><td>{html.escape(ref.rsplit('/', 1)[-1])}</td></tr>"
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
        "<th>summary</th><th>parameters</th><th>body</th></tr>"
        + "".join(rows)
        + f"</table><h2>Schemas</h2>{schemas}</body></html>"
    )


@blueprint.get("/docs")
def reference_page():
    return Response(_page(openapi.cached(current_app)), mimetype="text/html")
