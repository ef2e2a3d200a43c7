"""`dispatchyard worker`: daemon hosts (the platform API calls them workers)."""

from __future__ import annotations

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.options import command
from dispatchyard.cli.output import emit


@click.group()
def worker() -> None:
    """Daemon hosts registered as workers (/api/workers)."""


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
