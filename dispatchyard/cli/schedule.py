"""`dispatchyard schedule`: scheduled messages between peers (/schedules)."""

from __future__ import annotations

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.options import command
from dispatchyard.cli.output import emit


@click.group()
def schedule() -> None:
    """Scheduled messages between peers (/schedules)."""


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
