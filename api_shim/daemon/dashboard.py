"""The dashboard page (/dashboard) and the reads it needs that no other route gives.

The page, its files and /favicon.ico are open (the blueprint's auth hook exempts them): they
are static and hold no data. The page then calls the daemon routes with the daemon token when
one is configured, and the platform routes with a pasted API key. Guarded like every daemon
route: `GET /asks/open` lists the open asks and blocking questions of the whole mesh (the other
ask routes answer per peer, and a blocking question has no recipient peer);
`GET /peers/{id}/deliveries` shows a polling peer's queued deliveries without taking them (the
peer's own `/deliveries/pending` drains them); `GET /stats/fires` gives fires per minute and
their lateness (state/fire_stats.py) for the charts; `GET /stats/jobs` how many jobs are in each
state (the list above a page of jobs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Response, request, send_from_directory
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies
from api_shim.answers import Answer
from api_shim.context import r
from api_shim.daemon import blueprint, message_answers, peers
from api_shim.declare import declare
from dispatchyard.state import asks, clock, deliveries, fire_stats, job_queries, peer_lookups
from dispatchyard.state.models import JOB_STATES

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


@blueprint.get("/favicon.ico")
@declare(open=True, listed=False)
def favicon() -> Response:
    return _static("favicon.ico")


class PeekQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    max_results: int = Field(50, ge=1, le=1000)


@blueprint.get("/peers/<ident>/deliveries")
@declare(query=PeekQuery, responses={200: message_answers.PendingDeliveries})
def peek_deliveries(ident: str) -> dict[str, Any]:
    """A polling peer's queued deliveries, oldest first, left on its queue."""
    q = bodies.validate(PeekQuery, request.args.to_dict(), loc="query")
    peer = peers.one(peer_lookups.lookup(r(), ident, request.args.get("circle") or None), ident)
    return {"deliveries": deliveries.peek(r(), peer["peer_id"], q.max_results)}


class FiresQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    minutes: int = Field(60, ge=1, le=fire_stats.MAX_MINUTES)


class FireMinute(Answer):
    at: str = Field(description="the minute's start")
    fires: int = Field(description="attempts acquired in that minute (due, run or retry)")
    due_fires: int = Field(description="of them, fires because the job was due")
    lateness_mean_s: float | None = Field(description="mean seconds from due_at to acquire")
    lateness_max_s: float | None = Field(description="the most late of them, seconds")


class FireStats(Answer):
    now: str
    minutes: list[FireMinute] = Field(description="oldest first, up to the current minute")


@blueprint.get("/stats/fires")
@declare(query=FiresQuery, responses={200: FireStats})
def fire_stats_route() -> dict[str, Any]:
    """Fires per minute over the last `minutes` (60 by default) and their lateness."""
    q = bodies.validate(FiresQuery, request.args.to_dict(), loc="query")
    now = clock.now_ms()
    minutes = []
    for m in fire_stats.last(r(), now, q.minutes):
        minutes.append(
            {
                "at": clock.iso(m.start_ms),
                "fires": m.fires,
                "due_fires": m.due,
                "lateness_mean_s": m.late_sum_ms / m.due / 1000 if m.due else None,
                "lateness_max_s": m.late_max_ms / 1000 if m.due else None,
            }
        )
    return {"now": clock.iso(now), "minutes": minutes}


class JobCounts(Answer):
    total: int = Field(description="jobs in any state")
    by_state: dict[str, int] = Field(description="every job state, with how many are in it")


@blueprint.get("/stats/jobs")
@declare(responses={200: JobCounts})
def job_counts() -> dict[str, Any]:
    """How many jobs are in each state, from the state indexes (no job is read)."""
    counts = job_queries.count_by_state(r(), tuple(str(s) for s in JOB_STATES))
    return {"total": sum(counts.values()), "by_state": counts}
