"""`dispatchyard ask`: asks between peers of the mesh (/ask, /ack, /answer, /asks/pending)."""

from __future__ import annotations

import json

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.options import command
from dispatchyard.cli.output import emit


@click.group()
def ask() -> None:
    """Asks between peers of the mesh (/ask, /ack, /answer, /asks/pending)."""


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
    given = {"correlation_id": correlation_id, "text": text, "option_id": option_id}
    body = {k: v for k, v in given.items() if v is not None} | {"outcome": outcome}
    data = api.call("POST", "/answer", body)
    emit(api, data, message=lambda _: f"{correlation_id} answered")
