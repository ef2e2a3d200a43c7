"""`dispatchyard session`: agent sessions in the platform queue."""

from __future__ import annotations

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.options import command, fields
from dispatchyard.cli.output import emit

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


@click.group()
def session() -> None:
    """Agent sessions in the platform queue (/api/sessions)."""


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
        **fields(extra),
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
