"""`dispatchyard peer`: peers of the agent mesh (/peers)."""

from __future__ import annotations

import urllib.parse

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.options import command
from dispatchyard.cli.output import emit


@click.group()
def peer() -> None:
    """Peers of the agent mesh (/peers)."""


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
