"""Durable jobs: /jobs (and the same routes under /work); the reference is docs/api.md.

Routes parse (job_requests.py), make one atomic state change, enqueue a fire by name
(enqueue.py) and answer (views.py); they never wait for a fire.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Response, request

from api_shim import bodies, enqueue
from api_shim.context import r, settings
from api_shim.daemon import blueprint, job_answers, views
from api_shim.daemon.job_requests import (
    LIST_FILTERS,
    PROMPT_FILE_MAX,
    CancelBody,
    CreateBody,
    ListQuery,
    PatchBody,
    RunBody,
    check_create,
    check_runnable,
    fields_of,
    request_of,
)
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import (
    clock,
    job_queries,
    job_shape,
    jobs,
    peers,
    template_rules,
    templates,
    traces,
)
from dispatchyard.state.clock import parse_ms
from dispatchyard.state.job_shape import JobDoc
from dispatchyard.state.models import (
    AGENT_BACKENDS,
    FIRE_FROM,
    JOB_STATES,
    TEMPLATE_STATES,
    TemplateState,
)
from dispatchyard.state.template_rules import TemplateDoc

JOB_ID = re.compile(r"^work-[0-9a-f]{12}$")
CAL_ID = re.compile(r"^cal-[0-9a-f]{12}$")


def routes(rule: str, **options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a view under /jobs and under /work."""

    def register(view: Callable[..., Any]) -> Callable[..., Any]:
        for prefix in ("/jobs", "/work"):
            endpoint = f"{view.__name__}_{prefix.strip('/')}"
            blueprint.add_url_rule(prefix + rule, endpoint, view, **options)
        return view

    return register


def _read_prompt_file(path: str) -> str:
    try:
        file = Path(path).expanduser()
        if file.stat().st_size > PROMPT_FILE_MAX:
            raise ApiError(400, f"prompt_file is larger than {PROMPT_FILE_MAX} bytes")
        return file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ApiError(400, f"prompt_file could not be read: {type(e).__name__}") from None


def _canonical_peer(name: str, circle: str | None) -> str:
    """A peer name -> its id (as repowire: `repow-…` ids are taken as given)."""
    if name.startswith("repow-"):
        return name
    found = peers.resolve(r(), name, circle)
    if found is None:
        detail = {"error": "assigned_peer_not_found", "peer": name}
        raise ApiError(404, "assigned_peer_not_found", detail=detail)
    if isinstance(found, list):
        candidates = [
            {"peer_id": p["peer_id"], "display_name": p["name"], "circle": p["circle"]}
            for p in found
        ]
        ambiguous = {"error": "ambiguous_assigned_peer", "peer": name, "candidates": candidates}
        raise ApiError(409, "ambiguous_assigned_peer", detail=ambiguous)
    peer_id: str = found["peer_id"]
    return peer_id


@routes("", methods=["POST"])
@declare(body=CreateBody, responses={200: job_answers.Created})
def create_job() -> dict[str, Any]:
    body = bodies.parse(CreateBody)
    check_create(body, list(dict.fromkeys([*AGENT_BACKENDS, *settings().backends])))
    if body.assigned_peer_id:
        peer_id = _canonical_peer(body.assigned_peer_id, body.circle)
        body = body.model_copy(update={"assigned_peer_id": peer_id})
    prompt_file = _read_prompt_file(body.prompt_file) if body.prompt_file else None
    request_doc = request_of(body, prompt_file)
    check_runnable(request_doc, list(settings().backends))
    fields = fields_of(body, request_doc)
    now = clock.now_ms()
    if body.cron is not None:
        template = templates.create(r(), template_rules.new_doc(fields, now), now)
        return views.created_template(template)
    doc = job_shape.new_doc(fields, now)
    due = parse_ms(body.due_at) or now
    jobs.create(r(), doc, now, due_ms=max(due, now))
    if due <= now:
        # The answer shows the job as created (queued); the fire goes out before it.
        enqueue.fire_when_ready(settings().redis_url, r(), doc, now)
    return views.created_job(doc)


@routes("", methods=["GET"])
@declare(query=ListQuery, responses={200: job_answers.JobList})
def list_jobs() -> Response:
    q = bodies.validate(ListQuery, request.args.to_dict(), loc="query")
    if q.view not in (None, "full", "summary"):
        raise ApiError(400, "view must be one of: full, summary")
    if q.state is not None and q.state not in JOB_STATES + TEMPLATE_STATES:
        states = sorted({str(s) for s in JOB_STATES + TEMPLATE_STATES})
        raise ApiError(400, f"state must be one of {states}")
    try:
        cursor = views.decode_cursor(q.cursor) if q.cursor is not None else None
    except ValueError as e:
        raise ApiError(400, str(e)) from None
    summary = q.view == "summary"
    filters = {name: getattr(q, name) for name in LIST_FILTERS if getattr(q, name) is not None}
    store = r()
    work: list[str] = []
    next_cursor = None
    if q.state is None or q.state in JOB_STATES:
        try:
            work, next_cursor = job_queries.list_ids(
                store, state=q.state, filters=filters, limit=q.limit, cursor=cursor
            )
        except ValueError as e:  # a `q` without a word
            raise ApiError(400, str(e)) from None
    recurring: list[str] = []
    # Templates have no session id; they come on the first page only.
    if (
        cursor is None
        and (q.state is None or q.state in TEMPLATE_STATES)
        and "repowire_session_id" not in filters
    ):
        recurring = templates.list_raw(store, state=q.state, filters=filters, summary=summary)
    chunks = job_queries.raw_chunks(store, work, summary=summary)
    stream = views.job_list(chunks, recurring, paged=q.limit is not None, next_cursor=next_cursor)
    return Response(stream, mimetype="application/json")


def _job_or_404(job_id: str) -> JobDoc:
    doc = jobs.get(r(), job_id) if JOB_ID.match(job_id) else None
    if doc is None:
        raise ApiError(404, f"No work: {job_id}")
    return doc


def _template_or_404(template_id: str) -> TemplateDoc:
    doc = templates.get(r(), template_id) if CAL_ID.match(template_id) else None
    if doc is None:
        raise ApiError(404, f"No recurring job: {template_id}")
    return doc


@routes("/<job_id>", methods=["GET"])
@routes("/<job_id>/status", methods=["GET"])
@declare(responses={200: job_answers.DocumentAnswer})
def job_status(job_id: str) -> dict[str, Any] | Response:
    if job_id.startswith("cal-"):
        return {"status": _template_or_404(job_id)}
    raw = jobs.raw_doc(r(), job_id) if JOB_ID.match(job_id) else None
    if raw is None:
        raise ApiError(404, f"No work: {job_id}")
    return Response(views.status_json(raw), mimetype="application/json")


@routes("/<job_id>", methods=["PATCH"])
@declare(body=PatchBody, responses={200: job_answers.JobAnswer})
def patch_job(job_id: str) -> dict[str, Any]:
    body = bodies.parse(PatchBody)
    if not JOB_ID.match(job_id):
        raise ApiError(404, f"No work: {job_id}")
    return {"status": jobs.patch(r(), job_id, body.model_dump(), clock.now_ms())}


def _fire_again(job_id: str, why: str, verb: str) -> dict[str, Any]:
    bodies.parse(RunBody, allow_empty=True)
    if job_id.startswith("cal-"):
        raise ApiError(409, f"Recurring job templates cannot be {verb}")
    doc = _job_or_404(job_id)
    if doc["state"] not in FIRE_FROM[why]:
        raise ApiError(409, f"Job cannot be {verb} from state {doc['state']}")
    fire_key = f"{why}:{secrets.token_hex(8)}"
    enqueue.fire(settings().redis_url, job_id, job_shape.target_machine(doc), fire_key, why)
    return {"status": doc}


@routes("/<job_id>/run", methods=["POST"])
@declare(body=RunBody, optional_body=True, responses={200: job_answers.JobAnswer})
def run_job(job_id: str) -> dict[str, Any]:
    return _fire_again(job_id, "run", "run")


@routes("/<job_id>/retry", methods=["POST"])
@declare(body=RunBody, optional_body=True, responses={200: job_answers.JobAnswer})
def retry_job(job_id: str) -> dict[str, Any]:
    return _fire_again(job_id, "retry", "retried")


@routes("/<job_id>/cancel", methods=["POST"])
@declare(body=CancelBody, responses={200: job_answers.DocumentAnswer})
def cancel_job(job_id: str) -> dict[str, Any]:
    body = bodies.parse(CancelBody)
    now = clock.now_ms()
    if job_id.startswith("cal-"):
        _template_or_404(job_id)
        template = templates.set_state(r(), job_id, TemplateState.CANCELLED, now, body.reason)
        return {"status": template}
    _job_or_404(job_id)
    doc = jobs.request_cancel(
        r(), job_id, by=body.requested_by_peer_id, reason=body.reason, now_ms=now
    )
    return {"status": doc}


def _template_move(template_id: str, target: TemplateState, verb: str) -> dict[str, Any]:
    bodies.parse(RunBody, allow_empty=True)
    if not template_id.startswith("cal-"):
        _job_or_404(template_id)
        raise ApiError(409, f"Only recurring templates can be {verb}")
    _template_or_404(template_id)
    return {"status": templates.set_state(r(), template_id, target, clock.now_ms())}


@routes("/<template_id>/pause", methods=["POST"])
@declare(body=RunBody, optional_body=True, responses={200: job_answers.TemplateAnswer})
def pause_template(template_id: str) -> dict[str, Any]:
    return _template_move(template_id, TemplateState.PAUSED, "paused")


@routes("/<template_id>/resume", methods=["POST"])
@declare(body=RunBody, optional_body=True, responses={200: job_answers.TemplateAnswer})
def resume_template(template_id: str) -> dict[str, Any]:
    return _template_move(template_id, TemplateState.ACTIVE, "resumed")


@routes("/<job_id>/result", methods=["GET"])
@declare(responses={200: job_answers.Result})
def job_result(job_id: str) -> dict[str, Any]:
    if job_id.startswith("cal-"):
        return views.template_result(_template_or_404(job_id))
    return views.result(_job_or_404(job_id))


@blueprint.get("/traces/<trace_id>")
@declare(responses={200: job_answers.Trace})
def trace(trace_id: str) -> dict[str, Any]:
    stages = traces.read(r(), trace_id) if len(trace_id) <= 200 else []
    if not stages:
        raise ApiError(404, f"Trace not found: {trace_id}")
    return views.trace(trace_id, stages)
