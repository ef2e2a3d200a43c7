"""`dispatchyard job`: durable agent jobs (/jobs), and `--cron` templates."""

from __future__ import annotations

import itertools
import sys
import time
from typing import Any

import click

from dispatchyard.cli.client import Api, fail
from dispatchyard.cli.options import command, fields
from dispatchyard.cli.output import emit, state_of
from dispatchyard.state.models import JOB_TERMINAL, OVERLAP_POLICIES

JOB_COLUMNS = ("job_id", "state", "reason", "title", "backend", "machine", "due_at", "updated_at")
# `job wait` exit codes: 0 completed, 1 ended otherwise (or an error), 3 still going at timeout.
WAIT_TIMEOUT_EXIT = 3


@click.group()
def job() -> None:
    """Durable agent jobs (/jobs)."""


@command(job, "create")
@click.option("--prompt", help="What the agent is asked to do.")
@click.option("--title", default="", help="A short title.")
@click.option("--backend", help="claude-code, codex, gemini, opencode, shell, or a configured one.")
@click.option("--path", help="The working directory on the machine that runs it.")
@click.option("--machine", help="Run on this host's fire queue (fires.<machine>).")
@click.option("--due-at", help="ISO time to fire at (default: now).")
@click.option("--cron", help="Recurring: makes a template (cal-…) instead of a job.")
@click.option("--timezone", help="IANA timezone of --cron.")
@click.option("--overlap", type=click.Choice(OVERLAP_POLICIES))
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
    body = {k: v for k, v in body.items() if v is not None} | fields(extra)
    data = api.call("POST", "/jobs", body)
    if api.as_json:
        emit(api, data)
    elif "calendar_id" in data:
        cal = data.get("calendar") or {}
        click.echo(f"template {data['calendar_id']} ({cal.get('state', '-')}) cron {cron!r}")
    else:
        status = data.get("status") or {}
        click.echo(f"job {data.get('job_id')} {status.get('state', '-')}")


def list_jobs(api: Api, state: str | None, limit: int | None) -> dict[str, Any]:
    """GET /jobs: the summary view for tables, the full documents for `--json`."""
    query = {"state": state, "limit": limit, "view": None if api.as_json else "summary"}
    data: dict[str, Any] = api.call("GET", "/jobs", query=query)
    return data


@command(job, "list")
@click.option("--state", help="queued, running, completed, failed, … (a job state).")
@click.option("--limit", type=click.IntRange(1, 10_000), help="At most this many jobs.")
def job_list(api: Api, state: str | None, limit: int | None) -> None:
    """List jobs (recurring templates: `template list`)."""
    data = list_jobs(api, state, limit)
    if not api.as_json:
        data["work"] = [with_reason(job) for job in data.get("work") or []]
    emit(api, data, rows="work", columns=JOB_COLUMNS)


def with_reason(job: dict[str, Any]) -> dict[str, Any]:
    """A job with its `reason` column: why it failed (or ended otherwise, or waits), from its
    `state_reason`; nothing for a completed one."""
    reason = job.get("state_reason")
    return {**job, "reason": None if job.get("state") == "completed" else reason}


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
    emit(api, data, message=lambda d: f"{job_id} {state_of(d) or 'cancel requested'}")


@command(job, "run")
@click.argument("job_id")
def job_run(api: Api, job_id: str) -> None:
    """Fire a job now (a queued one early, or a failed one again)."""
    data = api.call("POST", f"/jobs/{job_id}/run", {})
    emit(api, data, message=lambda d: f"{job_id} {state_of(d) or 'fired'}")


@command(job, "retry")
@click.argument("job_id")
def job_retry(api: Api, job_id: str) -> None:
    """Start a new attempt of a failed, unavailable or delivered job."""
    data = api.call("POST", f"/jobs/{job_id}/retry", {})
    emit(api, data, message=lambda d: f"{job_id} {state_of(d) or 'retried'}")


@command(job, "result")
@click.argument("job_id")
def job_result(api: Api, job_id: str) -> None:
    """Show a job's outcome (`not_ready` until it ended)."""
    emit(api, api.call("GET", f"/jobs/{job_id}/result"), record="result")


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
