"""The dashboard page (/dashboard) and the one read it needs that no other route gives.

The page and its files are open (the blueprint's auth hook exempts /dashboard and
/dashboard/...): they are static and hold no data. The page then calls the daemon routes
with the daemon token when one is configured, and the platform routes with a pasted API key.
`GET /asks/open` lists the open asks and blocking questions of the whole mesh (the other ask
routes answer per peer, and a blocking question has no recipient peer); it is guarded like
every daemon route.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, send_from_directory

from api_shim.context import r
from api_shim.daemon import blueprint, message_answers
from api_shim.declare import declare
from dispatchyard.state import asks

STATIC = Path(__file__).resolve().parent.parent / "static" / "dashboard"
# The page runs only its own files: no inline script or style, no eval, no other origin, and no
# framing. Whatever a record holds is put in as text (dom.js); this is the second wall.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


def _static(filename: str) -> Response:
    response = send_from_directory(STATIC, filename, max_age=0)
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


OPEN_SHOWN = 200  # at most this many open asks, newest first
ASK_FIELDS = ("correlation_id", "kind", "from_peer", "to_peer", "text", "created_at", "question")


@blueprint.get("/dashboard/")  # Flask redirects /dashboard here (308)
@declare(open=True, listed=False)
def dashboard_page() -> Response:
    return _static("index.html")


@blueprint.get("/dashboard/<path:filename>")
@declare(open=True, listed=False)
def dashboard_file(filename: str) -> Response:
    return _static(filename)


@blueprint.get("/asks/open")
@declare(responses={200: message_answers.OpenAsks})
def open_asks() -> dict[str, Any]:
    """The newest open asks and blocking questions (one index read), newest first."""
    store = r()
    chosen = asks.newest_open(store, OPEN_SHOWN)
    found = [a for a in asks.get_many(store, chosen) if a and a.get("status") == "open"]
    return {"asks": [{name: a.get(name) for name in ASK_FIELDS} for a in found]}
