"""GET /api/sessions: the org's sessions (a project's, by query or by the dashboard page the
request came from), each with its health verdict, and the health summary."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import request

from api_shim import auth, bodies, budgets
from api_shim.context import r, settings
from api_shim.declare import declare
from api_shim.errors import ApiError
from api_shim.platform import blueprint, session_answers, views
from api_shim.platform.session_requests import ListQuery
from dispatchyard.settings import Settings
from dispatchyard.state import clock, health, orgs, sessions
from dispatchyard.state.clock import iso_ms
from dispatchyard.state.models import SLUG

REFERER_PROJECT = re.compile(rf"/projects/({SLUG})(?:[/?#]|$)")


def project_from_referer(referer: str | None) -> str | None:
    """The project slug a dashboard page names: `…/projects/<slug>…` or `?project=<slug>`.
    Anything malformed yields None (the whole org)."""
    if not referer or len(referer) > 4096:
        return None
    try:
        parts = urlsplit(referer)
        query = parse_qs(parts.query)
    except ValueError:
        return None
    slugs = query.get("project")
    if slugs and re.fullmatch(SLUG, slugs[0]):
        return slugs[0]
    match = REFERER_PROJECT.search(parts.path)
    return match.group(1) if match else None


@blueprint.get("/sessions")
@declare(query=ListQuery, responses={200: session_answers.SessionList, 429: budgets.OverBudget})
def list_sessions() -> dict[str, Any]:
    cred = auth.api_key()
    q = bodies.validate(ListQuery, request.args.to_dict(), loc="query")
    project = None
    if q.projectId:
        project = orgs.get_project(r(), cred.org_id, q.projectId)
    elif q.project:
        project = orgs.project_by_slug(r(), cred.org_id, q.project)
    else:
        slug = project_from_referer(request.headers.get("Referer"))
        project = orgs.project_by_slug(r(), cred.org_id, slug) if slug else None
        if slug and project is None:
            raise ApiError(404, f"Project not found: {slug}")
    if (q.projectId or q.project) and project is None:
        raise ApiError(404, "Project not found")
    if project is not None and not cred.may_use_project(project["id"]):
        raise ApiError(404, "Project not found")
    s = settings()
    now = clock.now_ms()
    # The key's projects select the sessions before the limit applies (a limited key reads only
    # its projects' indexes), so a page is never cut short by other projects' sessions.
    scope: list[str] | None = None
    if project is not None:
        scope = [project["id"]]
    elif cred.projects != "all":
        scope = list(cred.projects)
    records, hosts = sessions.list_for(r(), cred.org_id, scope, q.limit or s.session_list_limit)
    rows: list[dict[str, Any]] = []
    summary = {"green": 0, "yellow": 0, "red": 0}
    thresholds = health_thresholds(s)
    for record in records:
        verdict = health.assess(record, hosts.get(record.get("workerId", "")), now, thresholds)
        summary[verdict["level"]] += 1
        rows.append({**views.session(record), "health": verdict})
    return {
        "sessions": rows,
        "count": len(rows),
        "healthSummary": summary,
        "timestamp": iso_ms(now),
    }


def health_thresholds(s: Settings) -> health.Thresholds:
    return health.Thresholds(
        long_running_ms=int(s.health_long_running_s * 1000),
        stale_heartbeat_ms=int(s.health_stale_heartbeat_s * 1000),
        claim_stuck_ms=int(s.health_claim_stuck_s * 1000),
        tool_loop_ms=int(s.health_tool_loop_s * 1000),
        worker_offline_ms=int(s.worker_offline_after_s * 1000),
    )
