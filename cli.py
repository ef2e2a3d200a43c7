"""`dispatchyard`: the command line for the control plane.

Every command but `org create`, `key create` (bootstrap: straight to Redis, before any key
exists) and `run` (the whole stack for development) talks to the HTTP API: `--url`, `--key` for
the /api routes, `--token` for the daemon routes. Tables by default, `--json` prints the API's
JSON; an error prints the API's message to stderr and exits 1 (2 for usage errors).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlparse

import click
import redis

if TYPE_CHECKING:
    from settings import Settings

ROOT = Path(__file__).resolve().parent
DEFAULT_URL = "http://127.0.0.1:8080"
JOB_TERMINAL = ("completed", "failed", "cancelled", "expired", "unavailable")
# `job wait` exit codes: 0 completed, 1 ended otherwise (or an error), 3 still going at timeout.
WAIT_TIMEOUT_EXIT = 3


def _redis(settings: Settings) -> redis.Redis:
    from settings import redis_client

    # The same client every process builds: a `sentinel://` setting works here too.
    return redis_client(settings)


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


# ---- the HTTP client ------------------------------------------------------------------------


@dataclass
class Api:
    """The shim over HTTP: the /api routes take the API key, the others the daemon token."""

    url: str
    key: str | None
    token: str | None
    as_json: bool = False

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        url = self.url.rstrip("/") + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json"}
        secret = self.key if path.startswith("/api/") else self.token
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            fail(f"{method} {path}: HTTP {e.code}: {_api_message(e.read(), e.reason)}")
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            fail(
                f"cannot reach dispatchyard at {self.url} ({reason}). Start the stack with "
                "`make run` (or `dispatchyard run`), or point --url / DISPATCHYARD_URL at it."
            )
        return json.loads(raw) if raw else {}


def _api_message(raw: bytes, reason: str) -> str:
    """The envelope's message: `{"error": …}` (platform) or `{"detail": …}` (daemon)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:500] or reason
    if not isinstance(body, dict):
        return str(body)
    message = body.get("error", body.get("detail", body))
    if isinstance(message, dict):
        inner = message.get("message") or message.get("error") or message.get("detail")
        extra = {k: v for k, v in message.items() if k not in ("message", "error", "detail")}
        message = f"{inner} {json.dumps(extra)}" if inner and extra else inner or message
    if isinstance(message, list):  # validation errors: [{"loc": [...], "msg": ...}, ...]
        parts = []
        for item in message:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        message = "; ".join(parts)
    return message if isinstance(message, str) else json.dumps(message)


# ---- output -----------------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, dict) and isinstance(value.get("level"), str):
        return value["level"]  # a session's health: its level in a table
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 48 else text[:47] + "…"


def table(rows: list[dict[str, Any]], columns: Iterable[str], empty: str = "(none)") -> None:
    """Aligned columns: the preferred columns the rows have (else their first scalar fields)."""
    if not rows:
        click.echo(empty)
        return
    cols = [c for c in columns if any(c in row for row in rows)]
    if not cols:
        first = rows[0]
        cols = [k for k, v in first.items() if not isinstance(v, dict | list)][:6]
    cells = [[_cell(row.get(c)) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def details(record: dict[str, Any]) -> None:
    """One `field  value` line a field; nested values as compact JSON."""
    if not record:
        click.echo("(empty)")
        return
    width = max(len(k) for k in record)
    for k, v in record.items():
        value = "-" if v is None else v
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        click.echo(f"{k.ljust(width)}  {value}")


def emit(
    api: Api,
    data: Any,
    *,
    rows: str | None = None,
    columns: Iterable[str] = (),
    record: str | None = None,
    message: Callable[[Any], str] | None = None,
) -> None:
    """`--json`: the API's JSON as is. Otherwise a table of data[rows], the details of
    data[record], or a one-line message."""
    if api.as_json:
        click.echo(json.dumps(data, indent=2))
    elif rows is not None:
        table(data.get(rows) or [], columns)
    elif message is not None:
        click.echo(message(data))
    else:
        details(data.get(record, data) if record else data)


# ---- the command groups ---------------------------------------------------------------------

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table."
)
pass_api = click.make_pass_decorator(Api)


def _with_json(f: Callable[..., Any]) -> Callable[..., Any]:
    """`--json` on a command: sets the output mode of the shared Api object."""

    def wrapper(ctx: click.Context, as_json: bool, **kwargs: Any) -> Any:
        api = ctx.ensure_object(Api)
        api.as_json = as_json or api.as_json
        return ctx.invoke(f, api, **kwargs)

    functools.update_wrapper(wrapper, f)
    # The options declared on f become the wrapper's, `--json` after them.
    wrapper.__click_params__ = list(getattr(f, "__click_params__", []))  # type: ignore[attr-defined]
    del wrapper.__wrapped__
    return click.pass_context(json_option(wrapper))


def command(group: click.Group, name: str, **kwargs: Any) -> Callable[..., Any]:
    """A command of `group` that receives the Api object first and takes `--json`."""

    def decorate(f: Callable[..., Any]) -> click.Command:
        return group.command(name, **kwargs)(_with_json(f))

    return decorate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="DISPATCHYARD_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The shim's base URL (env DISPATCHYARD_URL).",
)
@click.option(
    "--key",
    envvar="DISPATCHYARD_API_KEY",
    help="API key for the /api routes (env DISPATCHYARD_API_KEY).",
)
@click.option(
    "--token",
    envvar="DISPATCHYARD_DAEMON_AUTH_TOKEN",
    help="Bearer token for the daemon routes: jobs, schedules, peers, asks "
    "(env DISPATCHYARD_DAEMON_AUTH_TOKEN; without it the shim answers loopback clients only).",
)
@click.pass_context
def cli(ctx: click.Context, url: str, key: str | None, token: str | None) -> None:
    """dispatchyard: the control plane for fleets of AI coding agents.

    Settings for `org create`, `key create` and `run` come from DISPATCHYARD_* variables
    (DISPATCHYARD_REDIS_URL first). Exit codes: 0 ok, 1 an error (the API's message on
    stderr), 2 a usage error.
    """
    ctx.obj = Api(url=url, key=key, token=token)


@cli.group()
def org() -> None:
    """Organizations (bootstrap: straight to Redis)."""


@cli.group()
def key() -> None:
    """API keys: `create` is bootstrap (Redis); `list` and `revoke` use the API."""


@cli.group()
def project() -> None:
    """Projects of an org (/api/org/{org}/projects)."""


@cli.group()
def session() -> None:
    """Agent sessions in the platform queue (/api/sessions)."""


@cli.group()
def worker() -> None:
    """Daemon hosts registered as workers (/api/workers)."""


@cli.group()
def mutation() -> None:
    """Configuration changes delivered to hosts on their heartbeat (/api/daemon/mutations)."""


@cli.group()
def job() -> None:
    """Durable agent jobs (/jobs)."""


@cli.group()
def template() -> None:
    """Recurring job templates, `cal-…` (made by `job create --cron`)."""


@cli.group()
def schedule() -> None:
    """Scheduled messages between peers (/schedules)."""


@cli.group()
def peer() -> None:
    """Peers of the agent mesh (/peers)."""


@cli.group()
def ask() -> None:
    """Asks between peers of the mesh (/ask, /ack, /answer, /asks/pending)."""


ORG_OPTION = click.option(
    "--org",
    "org_id",
    envvar="DISPATCHYARD_ORG",
    required=True,
    help="Org id (env DISPATCHYARD_ORG).",
)
SLUG_RE = r"^[a-z0-9][a-z0-9-]{0,62}$"


def _json_arg(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint=what) from None


def _fields(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--field name=value` pairs; a value that parses as JSON is taken as JSON."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--field")
        try:
            out[name] = json.loads(value)
        except ValueError:
            out[name] = value
    return out


# ---- org / key bootstrap -------------------------------------------------------------------


@org.command("create")
@click.argument("name")
@click.option("--slug", required=True, help=f"The org's slug, {SLUG_RE}.")
@json_option
def org_create(name: str, slug: str, as_json: bool) -> None:
    """Create an org and print its first owner key (shown once). Straight to Redis."""
    from settings import get_settings
    from state import apikeys, clock, orgs

    if not re.match(SLUG_RE, slug):
        raise click.BadParameter(f"must match {SLUG_RE}", param_hint="--slug")
    r = _redis(get_settings())
    created = orgs.create_org(r, name, slug, clock.now_ms())
    if created is None:
        fail(f"an org with slug {slug!r} already exists")
    _, secret = apikeys.create_key(
        r,
        created["id"],
        name="owner (bootstrap)",
        role="owner",
        projects="all",
        scopes=["*"],
        now_ms=clock.now_ms(),
    )
    if as_json:
        click.echo(json.dumps({"orgId": created["id"], "slug": created["slug"], "key": secret}))
    else:
        click.echo(f"org {created['id']} ({created['slug']}) created")
        click.echo(f"owner key (shown once, store it now): {secret}")


@key.command("create")
@click.option("--org", "org_ref", required=True, help="Org id or slug.")
@click.option("--name", required=True, help="A name for the key.")
@click.option(
    "--role",
    default="member",
    show_default=True,
    type=click.Choice(["auditor", "member", "admin", "owner"]),
)
@click.option("--scope", multiple=True, help="Repeatable, e.g. worker:register.")
@json_option
def key_create(org_ref: str, name: str, role: str, scope: tuple[str, ...], as_json: bool) -> None:
    """Mint an API key for an org (shown once). Straight to Redis: works before any key."""
    from settings import get_settings
    from state import apikeys, clock, orgs

    r = _redis(get_settings())
    org_id = orgs.resolve_org(r, org_ref)
    if org_id is None:
        fail(f"no org {org_ref!r}")
    record, secret = apikeys.create_key(
        r,
        org_id,
        name=name,
        role=role,
        projects="all",
        scopes=list(scope),
        now_ms=clock.now_ms(),
    )
    if as_json:
        click.echo(json.dumps({"id": record["id"], "orgId": org_id, "role": role, "key": secret}))
    else:
        click.echo(f"key {record['id']} ({role}) for {org_id}: {secret}")


@command(key, "list")
@ORG_OPTION
def key_list(api: Api, org_id: str) -> None:
    """List an org's API keys (never their secrets)."""
    data = api.call("GET", f"/api/org/{org_id}/keys")
    emit(
        api,
        data,
        rows="keys",
        columns=("id", "keyPrefix", "name", "role", "scopes", "createdAt", "revokedAt"),
    )


@command(key, "revoke")
@ORG_OPTION
@click.argument("key_id")
def key_revoke(api: Api, org_id: str, key_id: str) -> None:
    """Revoke an API key."""
    data = api.call("DELETE", f"/api/org/{org_id}/keys/{key_id}")
    emit(api, data, message=lambda _: f"key {key_id} revoked")


# ---- projects, sessions, workers, mutations -------------------------------------------------


@command(project, "create")
@ORG_OPTION
@click.option("--slug", required=True, help=f"{SLUG_RE}")
@click.option("--name", required=True)
@click.option("--repository", help="e.g. github.com/acme/web")
def project_create(api: Api, org_id: str, slug: str, name: str, repository: str | None) -> None:
    """Create a project."""
    body = {"slug": slug, "name": name, "repository": repository}
    emit(api, api.call("POST", f"/api/org/{org_id}/projects", body), record="project")


@command(project, "list")
@ORG_OPTION
def project_list(api: Api, org_id: str) -> None:
    """List an org's projects."""
    data = api.call("GET", f"/api/org/{org_id}/projects")
    emit(api, data, rows="projects", columns=("id", "slug", "name", "repository", "createdAt"))


SESSION_COLUMNS = (
    "id",
    "status",
    "identifier",
    "projectId",
    "priority",
    "workType",
    "workerId",
    "health",
    "updatedAt",
)


@command(session, "enqueue")
@click.option("--project", required=True, help="Project slug or id.")
@click.option("--issue-id", required=True, help="The tracker's issue id.")
@click.option("--issue", "issue_identifier", required=True, help="The issue's key, e.g. WEB-12.")
@click.option("--prompt", required=True)
@click.option("--priority", type=click.IntRange(1, 5), default=3, show_default=True)
@click.option("--work-type", default="development", show_default=True)
@click.option("--field", "extra", multiple=True, help="More body fields, NAME=VALUE (JSON).")
def session_enqueue(
    api: Api,
    project: str,
    issue_id: str,
    issue_identifier: str,
    prompt: str,
    priority: int,
    work_type: str,
    extra: tuple[str, ...],
) -> None:
    """Enqueue an agent session for workers to claim."""
    body = {
        "project": project,
        "issueId": issue_id,
        "issueIdentifier": issue_identifier,
        "prompt": prompt,
        "priority": priority,
        "workType": work_type,
        **_fields(extra),
    }
    emit(api, api.call("POST", "/api/sessions", body))


@command(session, "list")
@click.option("--project", help="Project slug or id.")
@click.option("--limit", type=click.IntRange(1, 1000))
def session_list(api: Api, project: str | None, limit: int | None) -> None:
    """List sessions (with their health)."""
    data = api.call("GET", "/api/sessions", query={"project": project, "limit": limit})
    emit(api, data, rows="sessions", columns=SESSION_COLUMNS)


@command(session, "show")
@click.argument("session_id")
def session_show(api: Api, session_id: str) -> None:
    """Show a queued session (the cloud-runner detail; only while it is queued)."""
    emit(api, api.call("GET", f"/api/daemon/sessions/{session_id}"))


@command(worker, "list")
def worker_list(api: Api) -> None:
    """List registered daemon hosts."""
    data = api.call("GET", "/api/workers")
    columns = ("id", "hostname", "status", "hostStatus", "capacity", "activeCount", "lastHeartbeat")
    emit(api, data, rows="workers", columns=columns)


@command(worker, "deregister")
@click.argument("worker_id")
def worker_deregister(api: Api, worker_id: str) -> None:
    """Deregister a host; its claimed sessions go back to the queue."""
    data = api.call("DELETE", f"/api/workers/{worker_id}")
    emit(
        api,
        data,
        message=lambda d: (
            f"{worker_id} deregistered; {d.get('unclaimedSessions', 0)} "
            "session(s) back in the queue"
        ),
    )


MUTATION_COLUMNS = ("id", "op", "status", "workerHostId", "deliveryCount", "requestedAt")


@command(mutation, "enqueue")
@click.option("--host", "host_id", required=True, help="The worker host id (wkr_…).")
@click.option("--op", required=True, help="e.g. project.add")
@click.option("--params", help='The op\'s parameters as JSON, e.g. \'{"id": "web"}\'.')
def mutation_enqueue(api: Api, host_id: str, op: str, params: str | None) -> None:
    """Queue a configuration change for a host (delivered on its next heartbeat)."""
    body = {"workerHostId": host_id, "op": op, "params": _json_arg(params, "--params") or {}}
    emit(api, api.call("POST", "/api/daemon/mutations", body))


@command(mutation, "list")
@click.option("--host", "host_id", help="Only this host's mutations.")
@click.option(
    "--status", type=click.Choice(["pending", "delivered", "applied", "failed", "cancelled"])
)
def mutation_list(api: Api, host_id: str | None, status: str | None) -> None:
    """List mutations."""
    query = {"workerHostId": host_id, "status": status}
    data = api.call("GET", "/api/daemon/mutations", query=query)
    emit(api, data, rows="mutations", columns=MUTATION_COLUMNS)


@command(mutation, "show")
@click.argument("mutation_id")
def mutation_show(api: Api, mutation_id: str) -> None:
    """Show a mutation."""
    emit(api, api.call("GET", f"/api/daemon/mutations/{mutation_id}"), record="mutation")


@command(mutation, "cancel")
@click.argument("mutation_id")
def mutation_cancel(api: Api, mutation_id: str) -> None:
    """Cancel a mutation that was not delivered yet."""
    emit(api, api.call("DELETE", f"/api/daemon/mutations/{mutation_id}"), record="mutation")


# ---- jobs and templates ---------------------------------------------------------------------

JOB_COLUMNS = ("job_id", "state", "title", "backend", "machine", "due_at", "updated_at")
TEMPLATE_COLUMNS = ("calendar_id", "state", "title", "cron", "timezone", "next_due_at", "backend")


@command(job, "create")
@click.option("--prompt", help="What the agent is asked to do.")
@click.option("--title", default="", help="A short title.")
@click.option("--backend", help="claude-code, codex, gemini, opencode, shell, or a configured one.")
@click.option("--path", help="The working directory on the machine that runs it.")
@click.option("--machine", help="Run on this host's fire queue (fires.<machine>).")
@click.option("--due-at", help="ISO time to fire at (default: now).")
@click.option("--cron", help="Recurring: makes a template (cal-…) instead of a job.")
@click.option("--timezone", help="IANA timezone of --cron.")
@click.option("--overlap", type=click.Choice(["skip", "buffer_one", "allow"]))
@click.option("--assigned-peer", help="Deliver to this peer (a persistent job).")
@click.option("--circle")
@click.option("--field", "extra", multiple=True, help="More body fields, NAME=VALUE (JSON).")
def job_create(
    api: Api,
    prompt: str | None,
    title: str,
    backend: str | None,
    path: str | None,
    machine: str | None,
    due_at: str | None,
    cron: str | None,
    timezone: str | None,
    overlap: str | None,
    assigned_peer: str | None,
    circle: str | None,
    extra: tuple[str, ...],
) -> None:
    """Create a job (fired now or at --due-at), or a recurring template with --cron."""
    body = {
        "prompt": prompt,
        "title": title,
        "backend": backend,
        "path": path,
        "machine": machine,
        "due_at": due_at,
        "cron": cron,
        "timezone": timezone,
        "overlap": overlap,
        "assigned_peer_id": assigned_peer,
        "circle": circle,
    }
    body = {k: v for k, v in body.items() if v is not None} | _fields(extra)
    data = api.call("POST", "/jobs", body)
    if api.as_json:
        emit(api, data)
    elif "calendar_id" in data:
        cal = data.get("calendar") or {}
        click.echo(f"template {data['calendar_id']} ({cal.get('state', '-')}) cron {cron!r}")
    else:
        status = data.get("status") or {}
        click.echo(f"job {data.get('job_id')} {status.get('state', '-')}")


def _jobs(api: Api, state: str | None, limit: int | None) -> dict[str, Any]:
    query = {"state": state, "limit": limit, "view": None if api.as_json else "summary"}
    return api.call("GET", "/jobs", query=query)


@command(job, "list")
@click.option("--state", help="queued, running, completed, failed, … (a job state).")
@click.option("--limit", type=click.IntRange(1, 10_000), help="At most this many jobs.")
def job_list(api: Api, state: str | None, limit: int | None) -> None:
    """List jobs (recurring templates: `template list`)."""
    emit(api, _jobs(api, state, limit), rows="work", columns=JOB_COLUMNS)


@command(job, "show")
@click.argument("job_id")
def job_show(api: Api, job_id: str) -> None:
    """Show a job's (or a template's) document."""
    emit(api, api.call("GET", f"/jobs/{job_id}"), record="status")


@command(job, "cancel")
@click.argument("job_id")
@click.option("--reason", default="cancel_requested", show_default=True)
def job_cancel(api: Api, job_id: str, reason: str) -> None:
    """Cancel a job (its executor gets SIGTERM, then SIGKILL after the grace)."""
    data = api.call("POST", f"/jobs/{job_id}/cancel", {"reason": reason})
    emit(api, data, message=lambda d: f"{job_id} {_state(d) or 'cancel requested'}")


@command(job, "run")
@click.argument("job_id")
def job_run(api: Api, job_id: str) -> None:
    """Fire a job now (a queued one early, or a failed one again)."""
    data = api.call("POST", f"/jobs/{job_id}/run", {})
    emit(api, data, message=lambda d: f"{job_id} {_state(d) or 'fired'}")


@command(job, "retry")
@click.argument("job_id")
def job_retry(api: Api, job_id: str) -> None:
    """Start a new attempt of a failed, unavailable or delivered job."""
    data = api.call("POST", f"/jobs/{job_id}/retry", {})
    emit(api, data, message=lambda d: f"{job_id} {_state(d) or 'retried'}")


@command(job, "result")
@click.argument("job_id")
def job_result(api: Api, job_id: str) -> None:
    """Show a job's outcome (`not_ready` until it ended)."""
    emit(api, api.call("GET", f"/jobs/{job_id}/result"), record="result")


def _state(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    for k in ("status", "job", "work", "calendar"):
        if isinstance(data.get(k), dict) and "state" in data[k]:
            return data[k]["state"]
    return data.get("state") if isinstance(data.get("state"), str) else None


@command(job, "wait")
@click.argument("job_id")
@click.option(
    "--timeout", type=click.FloatRange(0), default=600, show_default=True, help="Seconds."
)
@click.option("--interval", type=click.FloatRange(0.05), default=1.0, show_default=True)
def job_wait(api: Api, job_id: str, timeout: float, interval: float) -> None:
    """Wait until a job ends, with a progress line on stderr.

    Exits 0 when it completed, 1 when it ended otherwise (failed, cancelled, expired,
    unavailable), 3 when it is still going after --timeout.
    """
    started = time.monotonic()
    spinner = itertools.cycle("|/-\\")
    live = sys.stderr.isatty()
    last: str | None = None
    while True:
        doc = api.call("GET", f"/jobs/{job_id}").get("status") or {}
        state = doc.get("state", "?")
        elapsed = time.monotonic() - started
        if live:
            click.echo(
                f"\r{next(spinner)} {job_id} {state} {elapsed:5.0f}s\033[K", nl=False, err=True
            )
        elif state != last:
            click.echo(f"{job_id} {state} ({elapsed:.0f}s)", err=True)
        last = state
        if state in JOB_TERMINAL:
            if live:
                click.echo("", err=True)
            emit(api, {"status": doc}, message=lambda d: f"{job_id} {d['status']['state']}")
            sys.exit(0 if state == "completed" else 1)
        if elapsed >= timeout:
            if live:
                click.echo("", err=True)
            fail(f"timed out after {timeout:g} s: {job_id} is still {state}", WAIT_TIMEOUT_EXIT)
        time.sleep(min(interval, max(timeout - elapsed, 0.05)))


@command(template, "list")
@click.option("--state", help="active, paused, cancelled, … (a template state).")
def template_list(api: Api, state: str | None) -> None:
    """List recurring job templates."""
    emit(api, _jobs(api, state, None), rows="recurring", columns=TEMPLATE_COLUMNS)


def _template_action(action: str) -> Callable[..., None]:
    def run(api: Api, template_id: str) -> None:
        data = api.call("POST", f"/jobs/{template_id}/{action}", {})
        emit(api, data, message=lambda d: f"{template_id} {_state(d) or action}")

    return run


for _action, _help in (
    ("pause", "Pause a template: no fires until it is resumed."),
    ("resume", "Resume a paused template."),
    ("cancel", "Cancel a template: it fires no more."),
):
    _fn = _template_action(_action)
    _fn.__name__ = f"template_{_action}"
    _fn.__doc__ = _help
    click.argument("template_id")(_fn)
    command(template, _action)(_fn)


# ---- schedules, peers, asks -----------------------------------------------------------------


@command(schedule, "create")
@click.option("--from", "from_peer", required=True, help="Sending peer (name or id).")
@click.option("--to", "to_peer", required=True, help="Receiving peer (name or id).")
@click.option("--text", required=True)
@click.option("--fire-at", help="ISO time, for a one-shot.")
@click.option("--cron", help="Recurring.")
@click.option("--timezone", help="IANA timezone of --cron.")
@click.option("--kind", default="notify", show_default=True, help="notify or ask.")
@click.option("--circle")
def schedule_create(
    api: Api,
    from_peer: str,
    to_peer: str,
    text: str,
    fire_at: str | None,
    cron: str | None,
    timezone: str | None,
    kind: str,
    circle: str | None,
) -> None:
    """Schedule a message: once (--fire-at) or recurring (--cron)."""
    body = {
        "from_peer": from_peer,
        "to_peer": to_peer,
        "text": text,
        "fire_at": fire_at,
        "cron": cron,
        "timezone": timezone,
        "kind": kind,
        "circle": circle,
    }
    data = api.call("POST", "/schedules", {k: v for k, v in body.items() if v is not None})
    emit(api, data, record="schedule")


@command(schedule, "list")
@click.option("--from", "from_peer", help="Only this sender's schedules.")
def schedule_list(api: Api, from_peer: str | None) -> None:
    """List pending scheduled messages."""
    data = api.call("GET", "/schedules", query={"from_peer": from_peer})
    columns = ("schedule_id", "kind", "from_peer", "to_peer", "fire_at", "cron", "text")
    emit(api, data, rows="schedules", columns=columns)


@command(schedule, "delete")
@click.argument("schedule_id")
def schedule_delete(api: Api, schedule_id: str) -> None:
    """Delete a scheduled message."""
    data = api.call("DELETE", f"/schedules/{schedule_id}")
    emit(api, data, message=lambda _: f"schedule {schedule_id} deleted")


@command(peer, "list")
@click.option("--circle", help="Only this circle's peers.")
@click.option("--status", type=click.Choice(["online", "busy", "offline"]))
def peer_list(api: Api, circle: str | None, status: str | None) -> None:
    """List peers of the mesh."""
    data = api.call("GET", "/peers", query={"circle": circle, "status": status})
    columns = ("peer_id", "display_name", "name", "status", "circle", "backend", "last_seen")
    emit(api, data, rows="peers", columns=columns)


@command(peer, "show")
@click.argument("peer")
def peer_show(api: Api, peer: str) -> None:
    """Show a peer (by name or id)."""
    emit(api, api.call("GET", f"/peers/{urllib.parse.quote(peer, safe='')}"), record="peer")


@command(peer, "offline")
@click.argument("peer")
def peer_offline(api: Api, peer: str) -> None:
    """Mark a peer offline (its pending queries are cancelled)."""
    data = api.call("POST", f"/peers/{urllib.parse.quote(peer, safe='')}/offline", {})
    emit(api, data, message=lambda _: f"{peer} offline")


@command(ask, "send")
@click.option("--from", "from_peer", required=True, help="Asking peer.")
@click.option("--to", "to_peer", required=True, help="Asked peer.")
@click.option("--text", required=True)
@click.option("--circle")
def ask_send(api: Api, from_peer: str, to_peer: str, text: str, circle: str | None) -> None:
    """Send an ask; prints its correlation id."""
    body = {"from_peer": from_peer, "to_peer": to_peer, "text": text}
    if circle:
        body["circle"] = circle
    data = api.call("POST", "/ask", body)
    emit(api, data, message=lambda d: str(d.get("correlation_id", json.dumps(d))))


@command(ask, "pending")
@click.option("--peer", "peer_id", required=True, help="The peer whose asks to list.")
@click.option(
    "--direction",
    type=click.Choice(["inbound", "outbound", "both"]),
    default="inbound",
    show_default=True,
)
def ask_pending(api: Api, peer_id: str, direction: str) -> None:
    """List a peer's open asks."""
    data = api.call("GET", "/asks/pending", query={"peer_id": peer_id, "direction": direction})
    columns = ("correlation_id", "from_peer", "to_peer", "status", "text", "created_at")
    emit(api, data, rows="asks", columns=columns)


@command(ask, "ack")
@click.argument("correlation_id")
@click.option("--message", help="A reply.")
@click.option("--from", "from_peer", help="The acknowledging peer.")
def ask_ack(api: Api, correlation_id: str, message: str | None, from_peer: str | None) -> None:
    """Acknowledge (close) an ask, optionally with a reply."""
    body = {"correlation_id": correlation_id, "message": message, "from_peer": from_peer}
    data = api.call("POST", "/ack", {k: v for k, v in body.items() if v is not None})
    emit(api, data, message=lambda _: f"{correlation_id} acknowledged")


@command(ask, "answer")
@click.argument("correlation_id")
@click.option("--text", help="A free-text answer.")
@click.option("--option", "option_id", help="The chosen option's id.")
@click.option("--outcome", default="answered", show_default=True)
def ask_answer(
    api: Api, correlation_id: str, text: str | None, option_id: str | None, outcome: str
) -> None:
    """Answer a blocking question."""
    body = {"correlation_id": correlation_id, "text": text, "option_id": option_id}
    body = {k: v for k, v in body.items() if v is not None} | {"outcome": outcome}
    data = api.call("POST", "/answer", body)
    emit(api, data, message=lambda _: f"{correlation_id} answered")


# ---- a local redis-server ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_argv(
    port: int, data_dir: Path, *, conf: Path | None = None, persist: bool = True
) -> list[str]:
    """The redis-server command for 127.0.0.1:port with its files in data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server"]
    if conf is not None:
        argv.append(str(conf))
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve())]
    argv += ["--daemonize", "no", "--logfile", str((data_dir / "redis.log").resolve())]
    if not persist:
        argv += ["--save", "", "--appendonly", "no"]
    return argv


def start_redis(
    port: int, data_dir: Path, *, conf: Path | None = None, persist: bool = True
) -> subprocess.Popen:
    """Start a redis-server on 127.0.0.1:port with its files in data_dir; waits until it answers."""
    argv = redis_argv(port, data_dir, conf=conf, persist=persist)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            client.ping()
            return proc
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {data_dir / 'redis.log'}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not answer within 15 s")


# ---- run: the whole stack --------------------------------------------------------------------


def procfile() -> dict[str, str]:
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            out[name.strip()] = command.strip()
    return out


# A child that exits is started again after this delay, doubled on each quick exit up to the
# maximum; one that ran for STABLE_AFTER_S starts from the shortest delay again.
RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0
STABLE_AFTER_S = 30.0


# The supervisor's /health probes carry this query string, so their access-log lines are not shown.
PROBE_MARK = "probe=dispatchyard-run"


class Printer:
    """honcho's output, without honcho's stop-all: every line as `name | line`, the names
    padded to one width and coloured like honcho's (only on a terminal)."""

    COLOURS = ("36", "33", "32", "35", "34", "31", "96", "93", "92", "95")

    def __init__(
        self,
        names: Iterable[str],
        stream: IO[str] | None = None,
        routine: Iterable[str] = (),
    ) -> None:
        self.stream = stream or sys.stdout
        # INFO lines naming one of these tasks (beat's "Sending due task", the worker's
        # "received"/"succeeded") are routine ticks: not shown (`run --verbose` shows them).
        self.routine = tuple(routine)
        self.width = max(len(n) for n in [*names, "system"])
        self.colour = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.lock = threading.Lock()
        self.codes: dict[str, str] = {}

    def write(self, name: str, line: str) -> None:
        if PROBE_MARK in line:  # the access-log line of the supervisor's own readiness probe
            return
        if "INFO/" in line and any(task in line for task in self.routine):
            return
        prefix = f"{name.ljust(self.width)} | "
        if self.colour:
            code = self.codes.setdefault(name, self.COLOURS[len(self.codes) % len(self.COLOURS)])
            prefix = f"\033[{code}m{prefix}\033[0m"
        with self.lock:
            self.stream.write(prefix + line.rstrip("\r\n") + "\n")
            self.stream.flush()

    def system(self, text: str) -> None:
        for line in text.splitlines() or [""]:
            self.write("system", line)

    def pump(self, name: str, pipe: IO[bytes]) -> None:
        """Copy a child's output, a line at a time, until it closes (on a thread)."""
        with pipe:
            for raw in iter(pipe.readline, b""):
                self.write(name, raw.decode(errors="replace"))


@dataclass
class Child:
    """One supervised process: how to start it, and when it is due to start again."""

    name: str
    launch: Callable[[], subprocess.Popen]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = RESTART_DELAY_S
    restart_at: float | None = None
    printer: Printer | None = field(default=None, repr=False)

    def start(self) -> None:
        self.proc = self.launch()
        self.started_at = time.monotonic()
        self.restart_at = None
        if self.printer is not None and self.proc.stdout is not None:
            args = (self.name, self.proc.stdout)
            threading.Thread(target=self.printer.pump, args=args, daemon=True).start()

    def check(self, now: float) -> None:
        """Restart it when due; note (one line) that it exited and when it starts again."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        code = self.proc.poll() if self.proc is not None else None
        if code is None:
            return
        if now - self.started_at >= STABLE_AFTER_S:
            self.delay = RESTART_DELAY_S
        line = f"{self.name} exited with {code}; restarting it in {self.delay:g} s"
        if self.printer is not None:
            self.printer.system(line)
        else:
            print(line, file=sys.stderr, flush=True)
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, RESTART_DELAY_MAX_S)


def _health(url: str) -> dict[str, Any] | None:
    """/health's body when it answers 200, else None."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return json.loads(response.read()) if response.status == 200 else None
    except (OSError, ValueError):
        return None


def _not_up(body: dict[str, Any] | None) -> list[str]:
    """What /health says is not answering yet: the shim itself, a worker node, beat."""
    if body is None:
        return ["the shim"]
    missing = []
    if not (body.get("workers") or {}).get("online"):
        missing.append("a worker")
    if not (body.get("beat") or {}).get("alive"):
        missing.append("beat")
    return missing


# The banner waits this long for a worker and beat to show in /health, then says what is late.
BANNER_WAIT_S = 60.0


def banner(port: int, flower: bool) -> str:
    base = f"http://127.0.0.1:{port}"
    me = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        me = me.resolve().relative_to(Path.cwd())
    first_key = shlex.join([str(me), "org", "create", "Acme", "--slug", "acme"])
    return (
        "\ndispatchyard is up:\n"
        f"  API        {base}/api  and  {base}/jobs\n"
        f"  dashboard  {base}/dashboard\n"
        f"  health     {base}/health\n"
        + ("  flower     http://127.0.0.1:5555\n" if flower else "")
        + "\nFirst API key (shown once):\n"
        f"  {first_key}\n"
        "A process that exits is restarted; Ctrl-C stops everything.\n"
    )


@cli.command("run")
@click.option("--port", type=int, default=8080, show_default=True, help="The shim's port.")
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also show the routine ticks (beat sending the scheduler tick, the liveness tick and "
    "the sweeps, and the worker running them), hidden by default.",
)
def run(port: int, no_flower: bool, verbose: bool) -> None:
    """Start Redis (if none answers) and the Procfile's processes: the shim, a worker, beat and
    Flower, each line prefixed with its process's name. A process that exits is started again
    with backoff while the others keep running; Ctrl-C stops them all. The URLs and the
    first-key command are printed once /health answers."""
    sys.exit(cmd_run(port, no_flower, verbose))


def routine_tasks(settings: Settings) -> set[str]:
    """The static periodic entries' tasks: the half-second scheduler tick, beat's liveness
    tick, the sweeps."""
    import beat_schedule

    return {entry["task"] for entry in beat_schedule.entries(settings).values()}


def cmd_run(port: int, no_flower: bool, verbose: bool = False) -> int:
    from settings import get_settings, sentinel_url

    settings = get_settings()
    commands = {n: c for n, c in procfile().items() if not (n == "flower" and no_flower)}
    printer = Printer(["redis", *commands], routine=() if verbose else routine_tasks(settings))
    children: dict[str, Child] = {}
    try:
        _redis(settings).ping()
        printer.system(f"redis: using {settings.redis_url}")
    except redis.exceptions.ConnectionError:
        url = urlparse(settings.redis_url)
        local = url.hostname in ("127.0.0.1", "localhost", "::1")
        if not local or sentinel_url(settings.redis_url) is not None:
            print(f"error: no Redis answers at {settings.redis_url}", file=sys.stderr)
            return 1
        data = settings.data_dir / "redis"
        redis_port = url.port or 6379
        # Started and waited for once; a restart reloads the same AOF in the same data dir.
        redis_cmd = redis_argv(redis_port, data, conf=ROOT / "redis.conf")
        children["redis"] = Child(
            "redis",
            lambda: subprocess.Popen(
                redis_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ),
            proc=start_redis(redis_port, data, conf=ROOT / "redis.conf"),
            started_at=time.monotonic(),
            printer=printer,
        )
        printer.system(
            f"redis: started a project-local redis-server on port {redis_port}, "
            f"data in {data} (its log: {data / 'redis.log'})"
        )

    # The children (gunicorn, celery) live in the same venv as this command; their output
    # comes through a pipe, so Python must not hold it in a buffer.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PORT": str(port), "PATH": path, "PYTHONUNBUFFERED": "1"}
    for name, command in commands.items():
        argv = ["sh", "-c", f"exec {command}"]
        children[name] = Child(
            name,
            # Own session: Ctrl-C reaches this supervisor, which stops each child in order.
            lambda argv=argv: subprocess.Popen(
                argv,
                env=env,
                cwd=ROOT,
                start_new_session=True,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ),
            printer=printer,
        )
        children[name].start()
    health = f"http://127.0.0.1:{port}/health"
    probe = f"{health}?{PROBE_MARK}"
    printer.system(
        f"started {', '.join(commands)}; the URLs follow once {health} answers "
        "(routine ticks hidden; --verbose shows them). Ctrl-C stops everything."
    )
    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    announced = False
    next_probe = 0.0
    started = time.monotonic()
    while not stopping:
        # One process dying (beat through a Redis outage, a crashed worker) must not take the
        # others down: it is restarted with backoff while the rest keep running.
        now = time.monotonic()
        for child in children.values():
            if stopping:
                break
            child.check(now)
        if not announced and now >= next_probe and not stopping:
            # Last, once everything answers: /health 200 with a worker node and beat alive.
            next_probe = now + 0.5
            missing = _not_up(_health(probe))
            late = now - started >= BANNER_WAIT_S and missing != ["the shim"]
            if not missing or late:
                announced = True
                text = banner(port, "flower" in commands)
                if missing:
                    text += f"(still not answering after {BANNER_WAIT_S:g} s: "
                    text += f"{', '.join(missing)})\n"
                printer.system(text)
        time.sleep(0.2)
    printer.system("stopping")
    _terminate({c.name: c.proc for c in children.values() if c.proc is not None})
    return 0


def _terminate(children: dict[str, subprocess.Popen]) -> None:
    # Redis last, so the workers can ack what they were doing.
    order = [n for n in children if n != "redis"] + (["redis"] if "redis" in children else [])
    for name in order:
        proc = children[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM) if name != "redis" else proc.terminate()
    deadline = time.monotonic() + 15
    for name in order:
        proc = children[name]
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop; killing it", file=sys.stderr)
            proc.kill()


def main(argv: list[str] | None = None) -> int:
    """The console script: click's exit codes (0, 1 on errors, 2 on usage errors)."""
    try:
        cli.main(args=argv, prog_name="dispatchyard", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
