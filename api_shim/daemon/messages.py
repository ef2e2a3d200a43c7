"""Notifications, broadcasts and the event log (docs/api.md): /notify, /broadcast, /events,
/events/stream (Server-Sent Events) and /events/chat."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask import Response, request
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies, budgets
from api_shim.answers import Ok
from api_shim.context import r
from api_shim.daemon import answers, blueprint, message_answers
from api_shim.daemon.ask_requests import AttachmentRef
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import clock, events, messaging

KEEPALIVE_MS = 15_000
INITIAL_EVENTS = 100  # what a new stream reader is sent before live events


class NotifyBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    from_peer: str = Field(max_length=200)
    to_peer: str = Field(max_length=200)
    text: str = Field(max_length=1_000_000)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=50)
    bypass_circle: bool = False
    circle: str | None = Field(None, max_length=64)


class BroadcastBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    from_peer: str = Field(max_length=200)
    text: str = Field(max_length=1_000_000)
    exclude: list[str] = Field(default_factory=list, max_length=1000)
    bypass_circle: bool = False
    circle: str | None = Field(None, max_length=64)


class ChatTurnBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    peer: str = Field(max_length=200)
    role: str = Field(max_length=50)
    text: str = Field(max_length=1_000_000)
    peer_id: str | None = Field(None, max_length=200)
    pane_id: str | None = Field(None, max_length=50)
    tool_calls: list[dict[str, Any]] | None = Field(None, max_length=200)


@blueprint.post("/notify")
@declare(body=NotifyBody, responses={200: message_answers.Notified, 429: budgets.PeerOverBudget})
@budgets.per_peer
def notify() -> dict[str, Any]:
    body = bodies.parse(NotifyBody)
    attachments = [a.model_dump(exclude_none=True) for a in body.attachments]
    return messaging.notify(
        r(),
        from_peer=body.from_peer,
        to_peer=body.to_peer,
        text=body.text,
        now_ms=clock.now_ms(),
        attachments=attachments,
        bypass_circle=body.bypass_circle,
        circle=body.circle,
    )


@blueprint.post("/broadcast")
@declare(
    body=BroadcastBody, responses={200: message_answers.Broadcast, 429: budgets.PeerOverBudget}
)
@budgets.per_peer
def broadcast() -> dict[str, Any]:
    body = bodies.parse(BroadcastBody)
    return messaging.broadcast(
        r(),
        from_peer=body.from_peer,
        text=body.text,
        now_ms=clock.now_ms(),
        exclude=body.exclude,
        bypass_circle=body.bypass_circle,
        circle=body.circle,
    )


@blueprint.get("/events")
@declare(responses={200: message_answers.Events})
def recent_events() -> Response:
    since = request.args.get("since")
    if since is not None and len(since) > 50:
        raise ApiError(400, "since is not an event id")
    return Response(json.dumps(events.recent(r(), since)), mimetype="application/json")


@blueprint.post("/events/chat")
@declare(body=ChatTurnBody, responses={200: Ok})
def chat_turn() -> dict[str, Any]:
    """A chat turn for the dashboard's view of a peer (repowire's ingest_chat_turn)."""
    body = bodies.parse(ChatTurnBody)
    events.append(r(), "chat_turn", clock.now_ms(), body.model_dump(exclude_none=True))
    return {"ok": True}


@blueprint.get("/events/stream")
@declare(responses={200: answers.EVENT_STREAM})
def stream_events() -> Response:
    """Server-Sent Events of mesh and job events: the recent window first, then each new one
    as it is written, with a comment line every 15 s so both ends notice a dead connection.
    Each reader holds one request thread and, while it waits, one Redis connection."""
    store = r()

    def generate() -> Iterator[str]:
        initial = events.recent(store, limit=INITIAL_EVENTS)
        for event in initial:
            yield f"data: {json.dumps(event)}\n\n"
        last = initial[-1]["id"] if initial else events.last_id(store)
        while True:
            found = events.after(store, last, KEEPALIVE_MS)
            if not found:
                yield ": keepalive\n\n"
                continue
            for event in found:
                yield f"data: {json.dumps(event)}\n\n"
            last = found[-1]["id"]

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(), mimetype="text/event-stream", headers=headers)
