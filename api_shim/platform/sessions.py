"""The session queue: enqueue, claim, status, activity, lock refresh, completion, nack,
cloud-runner detail, and the enriched list."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from flask import make_response, request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api_shim import auth, bodies
from api_shim.context import r, settings
from api_shim.errors import ApiError
from api_shim.platform import blueprint, views
from api_shim.platform.hosts import load_host
from dispatchyard.state import clock, health, orgs, sessions
from dispatchyard.state.clock import iso_ms
from dispatchyard.state.errors import Conflict, Forbidden
from dispatchyard.state.models import SESSION_STATUSES, SLUG, WORK_TYPES

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
REPORTABLE = tuple(s for s in SESSION_STATUSES if s not in ("queued", "claimed"))


class EnqueueBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    issueId: str = Field(min_length=1, max_length=200)
    issueIdentifier: str = Field(min_length=1, max_length=200)
    projectId: str | None = Field(None, max_length=100)
    project: str | None = Field(None, max_length=100)
    priority: int = Field(3, ge=1, le=5)
    prompt: str = Field(min_length=1, max_length=200_000)
    workType: Literal[WORK_TYPES] = "development"  # type: ignore[valid-type]
    sourceSessionId: str | None = Field(None, max_length=200)
    trackerSessionId: str | None = Field(None, pattern=SESSION_ID.pattern)
    linearSessionId: str | None = Field(None, pattern=SESSION_ID.pattern)
    providerSessionId: str | None = Field(None, max_length=200)
    kits: dict = Field(default_factory=dict)
    systemPrompt: str | None = Field(None, max_length=200_000)
    model: str | None = Field(None, max_length=200)
    provider: str | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _project_named(self):
        if not self.projectId and not self.project:
            raise ValueError("projectId or project is required")
        if (
            self.trackerSessionId
            and self.linearSessionId
            and self.trackerSessionId != self.linearSessionId
        ):
            raise ValueError("trackerSessionId and linearSessionId differ")
        return self


class WorkerBody(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    workerId: str = Field(min_length=1, max_length=100)


class RunnerBody(BaseModel):
    """A body the session's runner posts. Its `workerId` may be empty or absent: the runner
    copies it from its session detail, which the cloud-runner detail does not carry, and sends
    it with `omitempty` on lock-refresh and completion (RenseiAI/donmai)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    workerId: str | None = Field(None, max_length=100)


class StatusError(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    message: str = Field(max_length=20_000)


class StatusBody(RunnerBody):
    status: Literal[REPORTABLE]  # type: ignore[valid-type]
    providerSessionId: str | None = Field(None, max_length=200)
    worktreePath: str | None = Field(None, max_length=4096)
    error: StatusError | None = None
    totalCostUsd: float | None = Field(None, ge=0, allow_inf_nan=False)
    inputTokens: int | None = Field(None, ge=0)
    outputTokens: int | None = Field(None, ge=0)
    provider: str | None = Field(None, max_length=100)


class AgentActivity(BaseModel):
    """One event of the runner's activity stream (donmai runtime/activity `payload`): `type` is
    thought | action | response | error | context; only some events name a tool. Its other
    fields (toolInput, toolOutput, toolUseId, ...) are accepted and not kept."""

    model_config = ConfigDict(extra="ignore", strict=True)
    type: str = Field(min_length=1, max_length=100)
    content: str = Field(min_length=1)
    toolName: str | None = Field(None, max_length=200)


class ActivityBody(RunnerBody):
    """`{workerId, activity: {type, content, toolName?}}` as the runner posts it, or the older
    flat `{workerId, toolName}`."""

    __messages__ = {"activity": "activity with type and content is required"}
    activity: AgentActivity | None = None
    toolName: str | None = Field(None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_shape(self):
        if self.activity is None and self.toolName is None:
            raise ValueError("activity with type and content is required")
        return self


class LockRefreshBody(RunnerBody):
    issueId: str = Field(min_length=1, max_length=200)


class CompletionBody(RunnerBody):
    """Bounded by the body limit only: a summary refused here would be a lost result."""

    __messages__ = {"summary": "summary is required"}
    summary: str = Field(min_length=1)


def _session_for_worker(session_id: str, cred: auth.Credential) -> dict:
    record = sessions.get(r(), session_id, cred.org_id) if SESSION_ID.match(session_id) else None
    if record is None:
        raise ApiError(404, "Session not found")
    return record


def _worker_for_body(body: WorkerBody, cred: auth.Credential) -> dict:
    if cred.kind == "jwt" and cred.worker_id != body.workerId:
        raise auth.forbidden("Token does not belong to this worker")
    return load_host(body.workerId, cred)


def _acting_host(worker_id: str | None, cred: auth.Credential) -> str:
    """The host a runner call acts for. A runtime JWT acts for its own worker (`workerId`, when
    given, must be it); the legacy key must name one; a session's runner token acts for the
    host holding that session ('' when none does), and a `workerId` it names must be that one."""
    if cred.kind == "runner":
        if worker_id and cred.session_holder and worker_id != cred.session_holder:
            raise auth.forbidden("Session belongs to another worker")
        return cred.session_holder
    if cred.kind == "jwt":
        worker_id = worker_id or cred.worker_id
        if worker_id != cred.worker_id:
            raise auth.forbidden("Token does not belong to this worker")
    if not worker_id:
        raise ApiError(400, "workerId is required")
    load_host(worker_id, cred)
    return worker_id


def _unheld(record: dict) -> ApiError:
    """A runner token names a session no host holds (queued again, or never claimed)."""
    return ApiError(
        409, f"Session is {record['status']}; no worker holds it", current=record["status"]
    )


@blueprint.post("/sessions")
def enqueue():
    cred = auth.api_key("member")
    body = bodies.parse(EnqueueBody)
    project = (
        orgs.get_project(r(), cred.org_id, body.projectId)
        if body.projectId
        else orgs.project_by_slug(r(), cred.org_id, body.project or "")
    )
    if project is None:
        raise ApiError(404, "Project not found")
    if not cred.may_use_project(project["id"]):
        raise auth.forbidden("Key has no access to this project")
    tracker_id = body.trackerSessionId or body.linearSessionId
    session_id = tracker_id or f"ses_{secrets.token_hex(12)}"
    now = clock.now_ms()
    auth_token = f"rst_{secrets.token_hex(32)}"
    payload = {
        "sessionId": session_id,
        "issueId": body.issueId,
        "issueIdentifier": body.issueIdentifier,
        "priority": body.priority,
        "queuedAt": now,
        "prompt": body.prompt,
        "workType": body.workType,
        "sourceSessionId": body.sourceSessionId,
        "projectId": project["id"],
        "projectName": project["name"],
        "repository": project.get("repository") or None,
        "kits": body.kits,
        "platformUrl": settings().platform_url,
        "organizationId": cred.org_id,
        "linearSessionId": tracker_id,
        "providerSessionId": body.providerSessionId,
        "authToken": auth_token,
        "systemPrompt": body.systemPrompt,
        "model": body.model,
        # The names the real daemon reads (donmai PollWorkItem): it has no `prompt` and no
        # `systemPrompt`, and would run the agent on the issue identifier alone.
        "promptContext": body.prompt,
        "systemPromptOverride": body.systemPrompt,
    }
    record = {
        "issueId": body.issueId,
        "issueIdentifier": body.issueIdentifier,
        "workType": body.workType,
        "provider": body.provider or "",
        "providerSessionId": body.providerSessionId or "",
        "authTokenHash": hashlib.sha256(auth_token.encode()).hexdigest(),
        "enqueuedBy": cred.key_id or "",
    }
    sessions.enqueue(
        r(),
        org_id=cred.org_id,
        project_id=project["id"],
        session_id=session_id,
        payload=payload,
        record=record,
        now_ms=now,
    )
    return {"sessionId": session_id, "status": "queued", "queuedAt": now}, 201


DETAIL_FIELDS = (
    "sessionId",
    "issueId",
    "issueIdentifier",
    "priority",
    "queuedAt",
    "prompt",
    "workType",
    "sourceSessionId",
    "projectName",
    "repository",
    "kits",
    "platformUrl",
    "organizationId",
    "linearSessionId",
    "providerSessionId",
    "authToken",
    "systemPrompt",
)


@blueprint.get("/daemon/sessions/<session_id>")
def cloud_runner_detail(session_id: str):
    """Full payload only while queued; the body carries secrets, so it is never cached."""
    cred = auth.authenticate("jwt", "legacy")
    payload = sessions.queued_payload(r(), session_id) if SESSION_ID.match(session_id) else None
    if payload is None or payload.get("organizationId") != cred.org_id:
        raise ApiError(404, "Session not found", headers={"Cache-Control": "no-store"})
    resp = make_response({k: payload.get(k) for k in DETAIL_FIELDS})
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


@blueprint.post("/sessions/<session_id>/claim")
def claim(session_id: str):
    cred = auth.worker("worker:session", None)
    body = bodies.parse(WorkerBody)
    _worker_for_body(body, cred)
    _session_for_worker(session_id, cred)  # another org's session is 404, as an unknown one
    try:
        work = sessions.claim(r(), body.workerId, session_id, clock.now_ms())
    except (Conflict, Forbidden) as lost:
        # Not the error envelope: a claim that is not granted is an answer, with its reason.
        return {"claimed": False, "reason": lost.message}
    record = sessions.get(r(), session_id)
    return {"claimed": True, "session": views.session(record), "work": work}


@blueprint.post("/sessions/<session_id>/status")
def status(session_id: str):
    cred = auth.session_worker("worker:session", session_id)
    body = bodies.parse(StatusBody)
    host_id = _acting_host(body.workerId, cred)
    record = _session_for_worker(session_id, cred)
    if not host_id:
        raise _unheld(record)
    fields = {
        "providerSessionId": body.providerSessionId,
        "worktreePath": body.worktreePath,
        "error": json.dumps(body.error.model_dump()) if body.error else None,
        "totalCostUsd": body.totalCostUsd,
        "inputTokens": body.inputTokens,
        "outputTokens": body.outputTokens,
        "provider": body.provider,
    }
    record = sessions.set_status(r(), host_id, session_id, body.status, fields, clock.now_ms())
    return {"updated": True, "session": views.session(record, with_summary=True)}


@blueprint.post("/sessions/<session_id>/activity")
def activity(session_id: str):
    cred = auth.session_worker("worker:session", session_id)
    body = bodies.parse(ActivityBody)
    host_id = _acting_host(body.workerId, cred)
    record = _session_for_worker(session_id, cred)
    if not host_id:
        raise _unheld(record)
    event = body.activity
    kind = event.type if event else None
    # A tool named by the event, else the flat body's; an empty name is no tool.
    tool = (event.toolName if event else body.toolName) or None
    sessions.record_activity(
        r(), host_id, session_id, clock.now_ms(), tool=tool, activity_type=kind
    )
    return {"recorded": True, "sessionId": session_id, "type": kind, "toolName": tool}


@blueprint.post("/sessions/<session_id>/lock-refresh")
def lock_refresh(session_id: str):
    """`{refreshed}`: true while the worker still holds the active session (its last-seen is
    stamped); false once it has moved on, which the runner counts as a strike (three abort the
    session). Another worker's session is 403, as in agentfactory."""
    cred = auth.session_worker("worker:session", session_id)
    body = bodies.parse(LockRefreshBody)
    host_id = _acting_host(body.workerId, cred)
    _session_for_worker(session_id, cred)
    refreshed = sessions.refresh_lock(r(), host_id, session_id, body.issueId, clock.now_ms())
    return {"refreshed": refreshed}


@blueprint.post("/sessions/<session_id>/completion")
def completion(session_id: str):
    """The runner's completion summary, posted before its terminal status. agentfactory posts it
    to the tracker as comments; here the session record is where it goes (`summary`), so the
    answer keeps agentfactory's shape with the one part recorded."""
    cred = auth.session_worker("worker:session", session_id)
    body = bodies.parse(CompletionBody)
    host_id = _acting_host(body.workerId, cred)
    record = _session_for_worker(session_id, cred)
    if not host_id:
        raise _unheld(record)
    sessions.record_completion(r(), host_id, session_id, body.summary, clock.now_ms())
    return {"posted": True, "partsPosted": 1, "totalParts": 1}


@blueprint.post("/sessions/<session_id>/nack")
def nack(session_id: str):
    cred = auth.worker("worker:session", None)
    body = bodies.parse(WorkerBody)
    _worker_for_body(body, cred)
    _session_for_worker(session_id, cred)
    sessions.nack(r(), body.workerId, session_id, clock.now_ms())
    return {"nacked": True, "sessionId": session_id, "requeued": True}


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    projectId: str | None = Field(None, max_length=100)
    project: str | None = Field(None, max_length=100)
    limit: int | None = Field(None, ge=1, le=1000)


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
def list_sessions():
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
    rows = []
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


def health_thresholds(s) -> health.Thresholds:
    return health.Thresholds(
        long_running_ms=int(s.health_long_running_s * 1000),
        stale_heartbeat_ms=int(s.health_stale_heartbeat_s * 1000),
        claim_stuck_ms=int(s.health_claim_stuck_s * 1000),
        tool_loop_ms=int(s.health_tool_loop_s * 1000),
        worker_offline_ms=int(s.worker_offline_after_s * 1000),
    )
