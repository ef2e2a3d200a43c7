"""What the /jobs routes accept: the request models, and the pure rules that turn a create
request into a job's or a template's fields (validation policy, execution defaults). No I/O
here: the route reads a prompt file and resolves a peer name, then calls these."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from api_shim.errors import ApiError
from dispatchyard.state import cron
from dispatchyard.state.clock import parse_ms
from dispatchyard.state.models import CONTINUITIES, OVERLAP_POLICIES, PROCESS_SCOPES

Short = Field(None, max_length=500)
PROMPT_FILE_MAX = 1_048_576


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
    # Beyond repowire (state/job_search.py): the backend, the peer a job is assigned or was
    # delivered to, and words of the title (all of them, whole words, any case).
    backend: str | None = Field(None, max_length=100, description="execution.target.backend")
    peer: str | None = Field(
        None, max_length=500, description="the peer id a job is assigned or was delivered to"
    )
    q: str | None = Field(
        None, max_length=500, description="words of the title: whole words, all of them, any case"
    )
    view: str | None = None
    limit: int | None = Field(None, ge=1, le=1000)
    cursor: str | None = Field(None, max_length=500)


LIST_FILTERS = (
    "owner_peer_id",
    "created_by_peer_id",
    "repowire_session_id",
    "circle",
    "backend",
    "peer",
    "q",
)


def check_create(body: CreateBody, backends: list[str]) -> None:
    """Refuse a create request the contract does not allow (422 for an unknown backend, as
    repowire's enum check answers; 400 for the rest)."""
    if body.backend is not None and body.backend not in backends:
        names = ", ".join(f"'{name}'" for name in backends)
        detail = [{"loc": ["body", "backend"], "msg": f"Input should be {names}", "type": "enum"}]
        raise ApiError(422, "invalid backend", detail=detail)
    if body.due_at is not None and body.cron is not None:
        raise ApiError(400, "provide due_at or cron, not both")
    for name in ("due_at", "deadline_at", "expires_at"):
        if getattr(body, name) is not None and parse_ms(getattr(body, name)) is None:
            raise ApiError(400, f"{name} must be an ISO-8601 timestamp")
    if body.overlap is not None and body.overlap not in OVERLAP_POLICIES:
        raise ApiError(400, f"overlap must be one of: {', '.join(OVERLAP_POLICIES)}")
    try:
        if body.timezone is not None:
            cron.zone(body.timezone)
        if body.cron is not None:
            cron.validate(body.cron, body.timezone)
    except cron.CronError as e:
        raise ApiError(400, str(e)) from None


def check_runnable(request: dict[str, Any], runnable: list[str]) -> None:
    """Refuse (422, with the list this deployment can run) a `per_fire` job whose backend has
    no command here: repowire's agent types pass the enum check, but only a persistent peer
    can run one that is not configured, and a fire of it would end `invalid_backend`."""
    execution = request.get("execution") or {}
    backend = (execution.get("target") or {}).get("backend")
    if execution.get("process_scope") != "per_fire" or backend is None or backend in runnable:
        return
    names = ", ".join(f"'{name}'" for name in runnable)
    msg = (
        f"backend {backend!r} has no command on this deployment: a per_fire job runs one of "
        f"{names} (DISPATCHYARD_BACKENDS configures more)"
    )
    detail = [
        {
            "loc": ["body", "backend"],
            "msg": msg,
            "type": "backend_not_runnable",
            "input": backend,
            "ctx": {"runnable": runnable},
        }
    ]
    raise ApiError(422, "backend not runnable", detail=detail)


def _process_scope(body: CreateBody, execution: dict[str, Any], target: dict[str, Any]) -> Any:
    """As given (`per-fire` read as `per_fire`); else `per_fire` when the request names a path
    and a backend and no peer, since only a process of ours can run it."""
    scope = body.process_scope or execution.get("process_scope")
    if scope is None and not body.assigned_peer_id and target.get("path") and target.get("backend"):
        scope = "per_fire"
    if scope is None:
        return None
    scope = "per_fire" if scope == "per-fire" else scope
    if scope not in PROCESS_SCOPES:
        raise ApiError(400, "process_scope must be one of: per_fire, persistent")
    return scope


def _continuity(body: CreateBody, execution: dict[str, Any], scope: Any) -> Any:
    """As given; else a recurring per_fire job resumes its previous session, a one-shot starts
    fresh."""
    continuity = body.continuity or execution.get("continuity")
    if continuity is None and scope == "per_fire":
        continuity = "resume" if body.cron else "fresh"
    if continuity is not None and continuity not in CONTINUITIES:
        raise ApiError(400, "continuity must be one of: resume, fresh")
    return continuity


def request_of(body: CreateBody, prompt_file_text: str | None) -> dict[str, Any]:
    """The stored `request`: the body's own `request` with the top-level execution inputs
    merged into `request.execution` (repowire's shape, plus `machine`)."""
    merged = dict(body.request)
    execution = dict(merged.get("execution") or {})
    prompt = dict(execution.get("prompt") or {})
    if prompt_file_text is not None:
        prompt.update(body=prompt_file_text, source="file", source_path=body.prompt_file)
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
    scope = _process_scope(body, execution, target)
    if scope is not None:
        execution["process_scope"] = scope
    continuity = _continuity(body, execution, scope)
    if continuity is not None:
        execution["continuity"] = continuity
    execution.update(prompt=prompt, target=target, schedule=schedule, delivery=delivery)
    merged["execution"] = execution
    return merged


def fields_of(body: CreateBody, request: dict[str, Any]) -> dict[str, Any]:
    """The fields a new job or template document is made from."""
    fields = body.model_dump(exclude={"request", "prompt", "prompt_file", "path", "backend"})
    fields["request"] = request
    return fields
