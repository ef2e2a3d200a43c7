"""Notifications, broadcasts and the event log (docs/api.md): /notify, /broadcast, /events,
/events/stream (Server-Sent Events) and /events/chat."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import redis
from flask import Response, request
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies, budgets
from api_shim.answers import Ok
from api_shim.context import r, settings
from api_shim.daemon import answers, blueprint, message_answers
from api_shim.daemon.ask_requests import AttachmentRef
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import clock, events, keys, messaging

INITIAL_EVENTS = 100  # what a new stream reader is sent before live events
OUTAGE_RETRY_S = 1.0  # a stream whose Redis is unreachable tries again this often
log = logging.getLogger("dispatchyard.events")


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
    out = messaging.broadcast(
        r(),
        from_peer=body.from_peer,
        text=body.text,
        now_ms=clock.now_ms(),
        exclude=body.exclude,
        bypass_circle=body.bypass_circle,
        circle=body.circle,
    )
    # As repowire 0.17 answers (and its MCP tool prints): the recipients' display names, and
    # each failure as {peer: name, error}.
    failed = [f["session_id"] for f in out["failed"]]
    names = _names(out["sent_to"] + failed)
    return {
        "ok": True,
        "sent_to": [names.get(peer_id, peer_id) for peer_id in out["sent_to"]],
        "failed": [
            {"peer": names.get(f["session_id"], f["session_id"]), "error": f["error"]}
            for f in out["failed"]
        ],
    }


def _names(peer_ids: list[str]) -> dict[str, str]:
    """Display names by peer id, in one round trip."""
    if not peer_ids:
        return {}
    pipe = r().pipeline(transaction=False)
    for peer_id in peer_ids:
        pipe.hget(keys.peer(peer_id), "name")
    return {p: n for p, n in zip(peer_ids, pipe.execute(), strict=True) if isinstance(n, str)}


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
    as it is written, with a comment line after `event_stream_keepalive_s` without one so both
    ends notice a dead connection. Each reader holds one request thread; each read waits at
    most half the Redis client's socket timeout (so an idle stream never times out) and holds
    a Redis connection only while it waits. While Redis is unreachable the stream stays open,
    sends its keepalives and resumes after the last event it sent."""
    store = r()
    keepalive_s = settings().event_stream_keepalive_s
    longest_ms = events.longest_block_ms(store)
    initial = events.recent(store, limit=INITIAL_EVENTS)
    last = initial[-1]["id"] if initial else events.last_id(store)

    def generate(last: str) -> Iterator[str]:
        for event in initial:
            yield f"data: {json.dumps(event)}\n\n"
        if not initial:
            yield ": stream open\n\n"  # the headers go out now, not with a first keepalive
        quiet_until = time.monotonic() + keepalive_s
        unreachable = False
        while True:
            left_ms = int((quiet_until - time.monotonic()) * 1000)
            if left_ms <= 0:
                yield ": keepalive\n\n"
                quiet_until = time.monotonic() + keepalive_s
                continue
            try:
                found = events.after(store, last, min(left_ms, longest_ms or left_ms))
            except redis.exceptions.RedisError as error:
                if not unreachable:
                    log.warning("event stream: Redis unreachable (%s); retrying", error)
                unreachable = True
                time.sleep(min(OUTAGE_RETRY_S, left_ms / 1000))
                continue
            if unreachable:
                log.warning("event stream: Redis reachable again")
                unreachable = False
            for event in found:
                yield f"data: {json.dumps(event)}\n\n"
            if found:
                last = found[-1]["id"]
                quiet_until = time.monotonic() + keepalive_s

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return Response(generate(last), mimetype="text/event-stream", headers=headers)
