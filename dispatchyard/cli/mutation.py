"""`dispatchyard mutation`: configuration changes delivered to hosts on their heartbeat."""

from __future__ import annotations

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.options import command, json_arg
from dispatchyard.cli.output import emit
from dispatchyard.state.models import MUTATION_STATUSES

MUTATION_COLUMNS = ("id", "op", "status", "workerHostId", "deliveryCount", "requestedAt")


@click.group()
def mutation() -> None:
    """Configuration changes delivered to hosts on their heartbeat (/api/daemon/mutations)."""


@command(mutation, "enqueue")
@click.option("--host", "host_id", required=True, help="The worker host id (wkr_…).")
@click.option("--op", required=True, help="e.g. project.add")
@click.option("--params", help='The op\'s parameters as JSON, e.g. \'{"id": "web"}\'.')
def mutation_enqueue(api: Api, host_id: str, op: str, params: str | None) -> None:
    """Queue a configuration change for a host (delivered on its next heartbeat)."""
    body = {"workerHostId": host_id, "op": op, "params": json_arg(params, "--params") or {}}
    emit(api, api.call("POST", "/api/daemon/mutations", body))


@command(mutation, "list")
@click.option("--host", "host_id", help="Only this host's mutations.")
@click.option("--status", type=click.Choice(MUTATION_STATUSES))
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
