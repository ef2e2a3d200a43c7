"""The session queue: enqueue, claim, status, activity, lock refresh, completion, nack and the
cloud-runner detail (the list: session_list.py)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from flask import Response, make_response

from api_shim import auth, bodies, budgets
from api_shim.context import r, settings
from api_shim.declare import declare
from api_shim.errors import ApiError
from api_shim.platform import blueprint, session_answers, views
from api_shim.platform.hosts import load_host
from api_shim.platform.session_requests import (
    SESSION_ID,
    ActivityBody,
    CompletionBody,
    EnqueueBody,
    LockRefreshBody,
    StatusBody,
    WorkerBody,
)
from dispatchyard.state import clock, orgs, sessions
from dispatchyard.state.errors import Conflict, Forbidden

Record = dict[str, Any]


def _session_for_worker(session_id: str, cred: auth.Credential) -> Record:
    record = sessions.get(r(), session_id, cred.org_id) if SESSION_ID.match(session_id) else None
    if record is None:
        raise ApiError(404, "Session not found")
    return record


def _worker_for_body(body: WorkerBody, cred: auth.Credential) -> Record:
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


def _unheld(record: Record) -> ApiError:
    """A runner token names a session no host holds (queued again, or never claimed)."""
    return ApiError(
        409, f"Session is {record['status']}; no worker holds it", current=record["status"]
    )


@blueprint.post("/sessions")
@declare(body=EnqueueBody, responses={201: session_answers.Enqueued, 429: budgets.OverBudget})
def enqueue() -> tuple[dict[str, Any], int]:
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
@declare(responses={200: session_answers.SessionDetail, 429: budgets.OverBudget})
def cloud_runner_detail(session_id: str) -> Response:
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
@declare(body=WorkerBody, responses={200: session_answers.ClaimAnswer, 429: budgets.OverBudget})
def claim(session_id: str) -> dict[str, Any]:
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
    assert record is not None, "a session just claimed has a record"  # sessions are kept
    return {"claimed": True, "session": views.session(record), "work": work}


@blueprint.post("/sessions/<session_id>/status")
@declare(body=StatusBody, responses={200: session_answers.StatusUpdated, 429: budgets.OverBudget})
def status(session_id: str) -> dict[str, Any]:
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
@declare(
    body=ActivityBody, responses={200: session_answers.ActivityRecorded, 429: budgets.OverBudget}
)
def activity(session_id: str) -> dict[str, Any]:
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
@declare(
    body=LockRefreshBody, responses={200: session_answers.LockRefreshed, 429: budgets.OverBudget}
)
def lock_refresh(session_id: str) -> dict[str, Any]:
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
@declare(
    body=CompletionBody, responses={200: session_answers.CompletionPosted, 429: budgets.OverBudget}
)
def completion(session_id: str) -> dict[str, Any]:
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
@declare(body=WorkerBody, responses={200: session_answers.Nacked, 429: budgets.OverBudget})
def nack(session_id: str) -> dict[str, Any]:
    cred = auth.worker("worker:session", None)
    body = bodies.parse(WorkerBody)
    _worker_for_body(body, cred)
    _session_for_worker(session_id, cred)
    sessions.nack(r(), body.workerId, session_id, clock.now_ms())
    return {"nacked": True, "sessionId": session_id, "requeued": True}
