"""Durable jobs: /jobs (and the same routes under /work), daemon.md §2.

Routes validate, make one atomic state change, and enqueue a fire; they never wait for one.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path
from typing import Any

from flask import Response, request
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies
from api_shim.context import r, settings
from api_shim.daemon import blueprint
from api_shim.errors import ApiError
from state import clock, cron, jobs, peers, templates
from state.models import (
    AGENT_BACKENDS,
    CONTINUITIES,
    FIRE_FROM,
    JOB_STATES,
    OVERLAP_POLICIES,
    TEMPLATE_STATES,
)

JOB_ID = re.compile(r"^work-[0-9a-f]{12}$")
CAL_ID = re.compile(r"^cal-[0-9a-f]{12}$")
PROMPT_FILE_MAX = 1_048_576
Short = Field(None, max_length=500)


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field("", max_length=2000)
    kind: str = Field("general", max_length=200)
    created_by_peer_id: str | None = Short
    owner_peer_id: str | None = Short
    assigned_peer_id: str | None = Short
    repowire_session_id: str | None = Short
    correlation_id: str | None = Short
    circle: str | None = Short
    source_kind: str | None = Short
    source_id: str | None = Short
    scope: str | None = Short
    visibility: str = Field("circle", max_length=100)
    request: dict[str, Any] = Field(default_factory=dict)
    deadline_at: str | None = Field(None, max_length=100)
    expires_at: str | None = Field(None, max_length=100)
    provenance: dict[str, Any] = Field(default_factory=dict)
    prompt: str | None = Field(None, max_length=1_000_000)
    prompt_file: str | None = Field(None, max_length=4096)
    path: str | None = Field(None, max_length=4096)
    backend: str | None = Field(None, max_length=100)
    profile: str | None = Short
    machine: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    due_at: str | None = Field(None, max_length=100)
    cron: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=100)
    overlap: str | None = Field(None, max_length=50)
    result_surface: str | None = Short
    process_scope: str | None = Field(None, max_length=50)
    continuity: str | None = Field(None, max_length=50)


class PatchBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: str = Field(max_length=50)
    attempt_id: str | None = Field(None, max_length=100)
    state_reason: str | None = Field(None, max_length=2000)
    phase: str | None = Field(None, max_length=200)
    progress: dict[str, Any] | None = None
    progress_note: str | None = Field(None, max_length=20_000)
    result_summary: str | None = Field(None, max_length=200_000)
    result_data: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    artifacts: list[Any] | None = None
    provenance: dict[str, Any] | None = None


class CancelBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    requested_by_peer_id: str | None = Short
    reason: str = Field("cancel_requested", max_length=2000)


class RunBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    requested_by_peer_id: str | None = Short


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    state: str | None = None
    owner_peer_id: str | None = Short
    created_by_peer_id: str | None = Short
    repowire_session_id: str | None = Short
    circle: str | None = Short
    view: str | None = None
    limit: int | None = Field(None, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=500)


def routes(rule: str, **options: Any):
    """Register a view under /jobs and under /work."""

    def register(view):
        for prefix in ("/jobs", "/work"):
            endpoint = f"{view.__name__}_{prefix.strip('/')}"
            blueprint.add_url_rule(prefix + rule, endpoint, view, **options)
        return view

    return register


def raw_json(body: str, status: int = 200) -> Response:
    return Response(body, status=status, mimetype="application/json")


def _execution(body: CreateBody) -> dict[str, Any]:
    """Merge the execution inputs into `request.execution` (repowire's shape, plus machine)."""
    merged = dict(body.request)
    execution = dict(merged.get("execution") or {})
    prompt = dict(execution.get("prompt") or {})
    if body.prompt_file:
        prompt.update(body=_read_prompt_file(body.prompt_file), source="file",
                      source_path=body.prompt_file)  # fmt: skip
    elif body.prompt is not None:
        prompt.update(body=body.prompt, source="inline")
    elif not prompt:
        prompt.update(body=body.title, source="title")
    target = dict(execution.get("target") or {})
    for name in ("path", "backend", "profile", "machine", "assigned_peer_id"):
        value = getattr(body, name)
        if value is not None:
            target[name] = value
    schedule = dict(execution.get("schedule") or {})
    if body.due_at is not None:
        schedule["due_at"] = body.due_at
    delivery = {"kind": "ask", **(execution.get("delivery") or {})}
    if body.result_surface is not None:
        delivery["result_surface"] = body.result_surface
    scope = body.process_scope or execution.get("process_scope")
    if scope is None and not body.assigned_peer_id and target.get("path") and target.get("backend"):
        scope = "per_fire"
    if scope is not None:
        scope = "per_fire" if scope == "per-fire" else scope
        if scope not in ("per_fire", "persistent"):
            raise ApiError(400, "process_scope must be one of: per_fire, persistent")
        execution["process_scope"] = scope
    continuity = body.continuity or execution.get("continuity")
    if continuity is None and scope == "per_fire":
        continuity = "resume" if body.cron else "fresh"
    if continuity is not None:
        if continuity not in CONTINUITIES:
            raise ApiError(400, "continuity must be one of: resume, fresh")
        execution["continuity"] = continuity
    execution.update(prompt=prompt, target=target, schedule=schedule, delivery=delivery)
    merged["execution"] = execution
    return merged


def _read_prompt_file(path: str) -> str:
    try:
        file = Path(path).expanduser()
        if file.stat().st_size > PROMPT_FILE_MAX:
            raise ApiError(400, f"prompt_file is larger than {PROMPT_FILE_MAX} bytes")
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ApiError(400, f"prompt_file could not be read: {type(e).__name__}") from None


def _canonical_peer(body: CreateBody) -> str:
    """A peer name -> its id (as repowire: `repow-…` ids are taken as given)."""
    name = body.assigned_peer_id or ""
    found = peers.resolve(r(), name, body.circle)
    if found is None:
        detail = {"error": "assigned_peer_not_found", "peer": name}
        raise ApiError(404, "assigned_peer_not_found", detail=detail)
    if isinstance(found, list):
        candidates = [
            {"peer_id": p["peer_id"], "display_name": p["name"], "circle": p["circle"]}
            for p in found
        ]
        detail = {"error": "ambiguous_assigned_peer", "peer": name, "candidates": candidates}
        raise ApiError(409, "ambiguous_assigned_peer", detail=detail)
    return found["peer_id"]


def _check_time(name: str, value: str | None) -> None:
    if value is not None and jobs.parse_ms(value) is None:
        raise ApiError(400, f"{name} must be an ISO-8601 timestamp")


@routes("", methods=["POST"])
def create_job():
    body = bodies.parse(CreateBody)
    known = dict.fromkeys([*AGENT_BACKENDS, *settings().backends])
    if body.backend is not None and body.backend not in known:
        names = ", ".join(f"'{name}'" for name in known)
        detail = [{"loc": ["body", "backend"], "msg": f"Input should be {names}", "type": "enum"}]
        raise ApiError(422, "invalid backend", detail=detail)
    if body.due_at is not None and body.cron is not None:
        raise ApiError(400, "provide due_at or cron, not both")
    for name in ("due_at", "deadline_at", "expires_at"):
        _check_time(name, getattr(body, name))
    if body.overlap is not None and body.overlap not in OVERLAP_POLICIES:
        raise ApiError(400, f"overlap must be one of: {', '.join(OVERLAP_POLICIES)}")
    if body.assigned_peer_id and not body.assigned_peer_id.startswith("repow-"):
        body = body.model_copy(update={"assigned_peer_id": _canonical_peer(body)})
    if body.timezone is not None:
        try:
            cron.zone(body.timezone)
        except cron.CronError as e:
            raise ApiError(400, str(e)) from None
    request_body = _execution(body)
    fields = body.model_dump(exclude={"request", "prompt", "prompt_file", "path", "backend"})
    fields["request"] = request_body
    now = clock.now_ms()
    if body.cron is not None:
        try:
            cron.validate(body.cron, body.timezone)
        except cron.CronError as e:
            raise ApiError(400, str(e)) from None
        doc = templates.create(r(), templates.new_doc(fields, now), now)
        return {"calendar_id": doc["calendar_id"], "recurring_id": doc["calendar_id"],
                "calendar": doc}  # fmt: skip
    doc = jobs.new_doc(fields, now)
    due = jobs.parse_ms(body.due_at) or now
    from tasks.scheduler import dispatch_now

    if due <= now:
        jobs.create(r(), doc, now, due_ms=now)
        dispatch_now(r(), doc, now)  # the answer shows the job as created: queued
    else:
        jobs.create(r(), doc, now, due_ms=due)
    return {"job_id": doc["job_id"], "work_id": doc["job_id"], "status": doc}


def _cursor(text: str | None) -> tuple[float, str] | None:
    if text is None:
        return None
    try:
        score, job_id = json.loads(base64.urlsafe_b64decode(text.encode() + b"=="))
        return float(score), str(job_id)
    except (ValueError, TypeError):
        raise ApiError(400, "cursor is not one this server issued") from None


@routes("", methods=["GET"])
def list_jobs():
    q = bodies.validate(ListQuery, request.args.to_dict(), loc="query")
    if q.view not in (None, "full", "summary"):
        raise ApiError(400, "view must be one of: full, summary")
    if q.state is not None and q.state not in JOB_STATES + TEMPLATE_STATES:
        raise ApiError(400, f"state must be one of {sorted(set(JOB_STATES + TEMPLATE_STATES))}")
    summary = q.view == "summary"
    filters = {
        name: getattr(q, name)
        for name in ("owner_peer_id", "created_by_peer_id", "repowire_session_id", "circle")
        if getattr(q, name) is not None
    }
    work: list[str] = []
    next_cursor = None
    if q.state is None or q.state in JOB_STATES:
        work, next_cursor = jobs.list_ids(
            r(), state=q.state, filters=filters, limit=q.limit, cursor=_cursor(q.cursor)
        )
    recurring: list[str] = []
    # Templates have no session id; they come on the first page only.
    if (
        q.cursor is None
        and (q.state is None or q.state in TEMPLATE_STATES)
        and "repowire_session_id" not in filters
    ):
        recurring = templates.list_raw(r(), state=q.state, filters=filters, summary=summary)
    tail = '],"recurring":[' + ",".join(recurring) + "]"
    if q.limit is not None:
        token = None
        if next_cursor is not None:
            token = base64.urlsafe_b64encode(json.dumps(next_cursor).encode()).decode()
        tail += ',"next_cursor":' + json.dumps(token.rstrip("=") if token else None)
    store = r()

    def stream():
        # The stored JSON is joined as is, a chunk at a time: never parsed, never held whole.
        yield '{"work":['
        separator = ""
        for chunk in jobs.raw_chunks(store, work, summary=summary):
            if chunk:
                yield separator + ",".join(chunk)
                separator = ","
        yield tail + "}"

    return Response(stream(), mimetype="application/json")


def _job_or_404(job_id: str) -> dict[str, Any]:
    doc = jobs.get(r(), job_id) if JOB_ID.match(job_id) else None
    if doc is None:
        raise ApiError(404, f"No work: {job_id}")
    return doc


def _template_or_404(template_id: str) -> dict[str, Any]:
    doc = templates.get(r(), template_id) if CAL_ID.match(template_id) else None
    if doc is None:
        raise ApiError(404, f"No recurring job: {template_id}")
    return doc


@routes("/<job_id>", methods=["GET"])
@routes("/<job_id>/status", methods=["GET"])
def job_status(job_id: str):
    if job_id.startswith("cal-"):
        return {"status": _template_or_404(job_id)}
    raw = jobs.raw_doc(r(), job_id) if JOB_ID.match(job_id) else None
    if raw is None:
        raise ApiError(404, f"No work: {job_id}")
    return raw_json('{"status":' + raw + "}")


@routes("/<job_id>", methods=["PATCH"])
def patch_job(job_id: str):
    body = bodies.parse(PatchBody)
    if not JOB_ID.match(job_id):
        raise ApiError(404, f"No work: {job_id}")
    try:
        doc = jobs.patch(r(), job_id, body.model_dump(), clock.now_ms())
    except jobs.Refused as refused:
        if refused.reason == "stale_attempt":
            raise ApiError(409, "stale attempt_id") from None
        raise ApiError(400, refused.reason) from None
    if doc is None:
        raise ApiError(404, f"No work: {job_id}")
    return {"status": doc}


def _fire_again(job_id: str, why: str, verb: str):
    bodies.parse(RunBody, allow_empty=True)
    if job_id.startswith("cal-"):
        raise ApiError(409, f"Recurring job templates cannot be {verb}")
    doc = _job_or_404(job_id)
    if doc["state"] not in FIRE_FROM[why]:
        raise ApiError(409, f"Job cannot be {verb} from state {doc['state']}")
    from tasks.jobs import send_fire, target_machine

    send_fire(job_id, target_machine(doc), f"{why}:{secrets.token_hex(8)}", why)
    return {"status": doc}


@routes("/<job_id>/run", methods=["POST"])
def run_job(job_id: str):
    return _fire_again(job_id, "run", "run")


@routes("/<job_id>/retry", methods=["POST"])
def retry_job(job_id: str):
    return _fire_again(job_id, "retry", "retried")


@routes("/<job_id>/cancel", methods=["POST"])
def cancel_job(job_id: str):
    body = bodies.parse(CancelBody)
    now = clock.now_ms()
    if job_id.startswith("cal-"):
        _template_or_404(job_id)
        return {"status": templates.set_state(r(), job_id, "cancelled", now, body.reason)}
    _job_or_404(job_id)
    doc = jobs.request_cancel(
        r(), job_id, by=body.requested_by_peer_id, reason=body.reason, now_ms=now
    )
    return {"status": doc}


def _template_move(template_id: str, target: str, verb: str):
    bodies.parse(RunBody, allow_empty=True)
    if not template_id.startswith("cal-"):
        _job_or_404(template_id)
        raise ApiError(409, f"Only recurring templates can be {verb}")
    _template_or_404(template_id)
    try:
        doc = templates.set_state(r(), template_id, target, clock.now_ms())
    except jobs.Refused as refused:
        raise ApiError(409, f"Template cannot be {verb} from state {refused.state}") from None
    return {"status": doc}


@routes("/<template_id>/pause", methods=["POST"])
def pause_template(template_id: str):
    return _template_move(template_id, "paused", "paused")


@routes("/<template_id>/resume", methods=["POST"])
def resume_template(template_id: str):
    return _template_move(template_id, "active", "resumed")


@routes("/<job_id>/result", methods=["GET"])
def job_result(job_id: str):
    if job_id.startswith("cal-"):
        template = _template_or_404(job_id)
        return {"result": {"result_state": "recurring_template", "calendar": template}}
    doc = _job_or_404(job_id)
    if doc["state"] not in ("completed", "failed", "cancelled", "expired", "unavailable"):
        return {"result": {"job_id": job_id, "work_id": job_id, "result_state": "not_ready",
                           "status": doc}}  # fmt: skip
    return {
        "result": {
            "job_id": job_id,
            "work_id": job_id,
            "state": doc["state"],
            "summary": doc.get("result_summary"),
            "data": doc.get("result_data") or {},
            "error": doc.get("error") or {},
            "artifacts": doc.get("artifacts") or [],
            "completed_at": doc.get("completed_at"),
            "provenance": doc.get("provenance") or {},
        }
    }


@blueprint.get("/traces/<trace_id>")
def trace(trace_id: str):
    stages = jobs.trace(r(), trace_id) if len(trace_id) <= 200 else []
    if not stages:
        raise ApiError(404, f"Trace not found: {trace_id}")
    kind = "job" if trace_id.startswith("work-") else "delivery"
    return {"trace_id": trace_id, "kind": kind, "stages": stages}
