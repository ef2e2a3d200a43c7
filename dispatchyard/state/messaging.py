"""Carrying asks, notifications, replies and broadcasts between peers: resolve the target,
apply the circle rule, hand the frame to the shim process holding the target's WebSocket, and
record each stage in the delivery's trace. Used alike by the shim's routes and by Celery tasks
(schedule fires, persistent jobs), so every caller gets the same answers and traces.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from dispatchyard.state import asks, connections, deliveries, events, hops, peers, traces
from dispatchyard.state.clock import iso
from dispatchyard.state.errors import Conflict, Forbidden, NotFound, Unavailable
from dispatchyard.state.scripts import scripts
from dispatchyard.state.store import Redis

# How /notify reports the two ways a notification goes (repowire's NotifyResponse fields).
SENT = {
    "status": "sent",
    "delivery_state": "delivered",
    "delivered": True,
    "queued": False,
    "reason": "transport_delivered",
}
QUEUED = {
    "status": "queued",
    "delivery_state": "queued",
    "delivered": False,
    "queued": True,
    "reason": "queued_delivery",
}
Peer = dict[str, Any]


# Why a message cannot go: an unknown peer, an ambiguous name, a circle boundary, no live
# transport.
Undeliverable = (NotFound, Conflict, Forbidden, Unavailable)


def new_delivery_id(kind: str = "notif") -> str:
    return f"{kind}-delivery-{secrets.token_hex(4)}"


def target(r: Redis, name: str, circle: str | None) -> Peer:
    """The peer a message is for, by id or name (in `circle` when given)."""
    found = peers.resolve(r, name, circle)
    if found is None:
        raise NotFound(f"Peer not found: {name}")
    if isinstance(found, list):
        candidates = [{"peer_id": p["peer_id"], "circle": p.get("circle")} for p in found]
        detail = {"error": "ambiguous_peer", "peer": name, "candidates": candidates}
        raise Conflict("ambiguous_peer", detail=detail)
    return found


def sender(r: Redis, name: str, circle: str | None) -> Peer | None:
    """The registered peer a message is from, preferring the target's circle; None for a
    sender that is not a peer (the CLI, an operator, the runner)."""
    return peers.resolve_preferring(r, name, circle)


def check_circle(source: Peer | None, dest: Peer, bypass: bool) -> None:
    """Agents talk within their circle; services, orchestrators and humans cross circles."""
    if bypass or source is None:
        return
    crossing = peers.CROSS_CIRCLE_ROLES
    if source.get("role") in crossing or dest.get("role") in crossing:
        return
    if (source.get("circle") or "global") != (dest.get("circle") or "global"):
        detail = f"Circle boundary: {source['name']} cannot reach {dest['name']}"
        raise Forbidden(detail)


def send_frame(r: Redis, peer: Peer, frame: dict[str, Any], trace_id: str, now_ms: int) -> bool:
    """Hand a frame to the peer's socket, tracing `routed` or `no_connection`."""
    return connections.send(r, peer["peer_id"], {"frame": frame}, now_ms, trace_id)


def notify(
    r: Redis,
    *,
    from_peer: str,
    to_peer: str,
    text: str,
    now_ms: int,
    attachments: list[dict[str, Any]] | None = None,
    bypass_circle: bool = False,
    circle: str | None = None,
) -> dict[str, Any]:
    """Send a notification: {delivered, status: sent|queued, delivery_id, peer ids}. A peer
    with no live socket gets it queued (`status: queued`, as repowire does for any peer): its
    next socket gets it pushed on connect, or `GET /deliveries/pending` drains it."""
    delivery_id = new_delivery_id()
    frame: dict[str, Any] = {"type": "notify", "delivery_id": delivery_id, "from_peer": from_peer}
    frame["text"] = text
    if attachments:
        frame["attachments"] = attachments
    frame = hops.carry(frame)
    summary = {"delivery_id": delivery_id, "from_peer": from_peer, "to_peer": ""}
    data = json.dumps({**summary, "text": text[:500]}, default=str)
    event = {"type": "notify", "timestamp": iso(now_ms), "data": data}
    own = connections.own_node()
    # Resolving, the circle rule, the trace, the hand-off and the event in one script; a
    # recipient with no socket gets the notification queued (as repowire does for any peer):
    # its next socket gets it pushed on connect, or `GET /deliveries/pending` drains it. Its
    # trace then reads created, resolved_peer, pending, as repowire traces it, so `repowire
    # trace` exits 0 for it.
    out = scripts(r).send_notify(
        args=[
            to_peer,
            circle or "",
            from_peer,
            "1" if bypass_circle else "0",
            delivery_id,
            iso(now_ms),
            json.dumps(frame, separators=(",", ":"))[:-1],
            own,
            traces.TTL_S,
            events.MAXLEN,
            " ".join(peers.CROSS_CIRCLE_ROLES),
            json.dumps(event),
        ]
    )
    outcome, dest_id, dest_name, source_id, node = int(out[0]), *(str(x) for x in out[1:])
    frame["to_peer"] = dest_name
    answer = {
        "ok": True,
        "delivery_id": delivery_id,
        "from_peer_id": source_id or None,
        "from_peer_name": from_peer,
        "to_peer_id": dest_id,
        "to_peer_name": dest_name,
    }
    if outcome == 2:
        connections.hand_over(dest_id, {"frame": frame})
    elif outcome == 0:
        connections.disconnect(r, dest_id, node, now_ms)
    if outcome > 0:
        return answer | SENT
    queue(r, {"peer_id": dest_id, "name": dest_name}, frame, delivery_id, now_ms)
    return answer | QUEUED


def queue(r: Redis, dest: Peer, frame: dict[str, Any], trace_id: str, now_ms: int) -> None:
    deliveries.push(r, dest["peer_id"], frame, now_ms)
    traces.stage(r, trace_id, "pending", now_ms, peer_id=dest["peer_id"])


def ask_frame(ask_id: str, from_peer: str, to_name: str, text: str, **extra: Any) -> dict[str, Any]:
    """The `ask` frame: the text with a hint of how to close it, as repowire types it."""
    verb = "answer" if extra.get("question") else "ack"
    hint = (
        f'↳ answer("{ask_id}", option_id=...) or answer("{ask_id}", text="...")'
        if verb == "answer"
        else f'↳ ack("{ask_id}") or ack("{ask_id}", "reply")'
    )
    frame = {
        "type": "ask",
        "delivery_id": new_delivery_id("ask"),
        "correlation_id": ask_id,
        "from_peer": from_peer,
        "to_peer": to_name,
        "text": f"{text.rstrip()}\n{hint}",
    }
    return frame | {k: v for k, v in extra.items() if v}


def ask(
    r: Redis,
    *,
    from_peer: str,
    to_peer: str,
    text: str,
    now_ms: int,
    attachments: list[dict[str, Any]] | None = None,
    reply_to: str | None = None,
    bypass_circle: bool = False,
    circle: str | None = None,
    question: dict[str, Any] | None = None,
    kind: str = "ask",
    parent_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """Open an ask and hand it to the target's socket; its correlation id. Raises
    one of Undeliverable; with no live socket the ask is closed (`no_connection`, not kept
    open), except for a peer that polls, whose ask waits in its queue. Resolving both peers,
    the circle rule, storing the ask and publishing its frame are one script
    (asks.send)."""
    ask_id = asks.new_id()
    record = asks.new_record(
        ask_id,
        from_peer=from_peer,
        text=text,
        now_ms=now_ms,
        kind=kind,
        question=question,
        attachments=attachments,
        reply_to=reply_to,
        parent_id=parent_id,
        extra=extra,
    )
    if kind == "query":
        frame = {"type": "query", "correlation_id": ask_id, "from_peer": from_peer, "text": text}
    else:
        frame = ask_frame(
            ask_id,
            from_peer,
            "",
            text,
            reply_to=reply_to,
            question=question,
            attachments=attachments,
        )
        del frame["to_peer"]  # the script adds the recipient's name
    frame = hops.carry(frame)
    own = connections.own_node()
    outcome, dest_id, dest_name, node, queues = asks.send(
        r,
        record,
        to_peer=to_peer,
        circle=circle,
        bypass_circle=bypass_circle,
        frame=frame,
        own_node=own,
        now_ms=now_ms,
    )
    if reply_to:
        asks.close(r, reply_to, now_ms, reason="replied")
    if outcome == 2:
        connections.hand_over(dest_id, {"frame": {**frame, "to_peer": dest_name}})
    elif outcome == 0:
        connections.disconnect(r, dest_id, node, now_ms)
    if outcome > 0:
        return ask_id
    dest = {"peer_id": dest_id, "name": dest_name}
    if queues and kind != "query":
        queue(r, dest, {**frame, "to_peer": dest_name}, ask_id, now_ms)
        return ask_id
    asks.close(r, ask_id, now_ms, reason="no_connection")
    raise Unavailable(f"Peer {dest_name} has no live connection")


def deliver_reply(r: Redis, record: asks.Ask, message: str, now_ms: int, **extra: Any) -> bool:
    """Type an ack's reply into the asker's pane (as a notify from the responder). False when
    the asker is no registered peer (nobody to deliver to); Unavailable when it is but
    has no live socket (the ask stays open for a retry)."""
    asker = peers.get(r, record["from_peer_id"]) if record.get("from_peer_id") else None
    if asker is None:
        return False
    text = f"[ack #{record['correlation_id']} from @{record['to_peer']}] {message}"
    frame = {
        "type": "notify",
        "delivery_id": new_delivery_id(),
        "from_peer": record["to_peer"],
        "to_peer": asker["name"],
        "text": text,
        **extra,
    }
    if not send_frame(r, asker, hops.carry(frame), record["correlation_id"], now_ms):
        detail = (
            f"Reply delivery failed for {asker['name']}: no live connection. "
            "Ask remains open; retry when the asker reconnects."
        )
        raise Unavailable(detail)
    return True


def reply(
    r: Redis,
    correlation_id: str,
    message: str,
    now_ms: int,
    attachments: list[dict[str, Any]] | None = None,
) -> bool:
    """`POST /ack` with a reply to an open plain ask, in one step: the reply typed into the
    asker's pane (as `deliver_reply`) and the ask closed. False when the ask is not that case
    (unknown, closed, a question, replied to by pull): nothing was done, the caller takes its
    general path. Unavailable when the asker has no live socket (the ask stays open)."""
    extra = {"attachments": attachments} if attachments else {}
    frame = hops.carry({"type": "notify", "delivery_id": new_delivery_id(), **extra})
    fields = {"reply_text": message, "reply_attachments": attachments or []}
    outcome, asker, responder, node, asker_id = asks.reply(
        r,
        correlation_id,
        message,
        fields=fields,
        frame=frame,
        own_node=connections.own_node(),
        now_ms=now_ms,
    )
    if outcome in ("other", "not_found"):
        return False
    if outcome in ("offline", "gone"):
        if outcome == "gone":
            connections.disconnect(r, asker_id, node, now_ms)
        detail = (
            f"Reply delivery failed for {asker}: no live connection. "
            "Ask remains open; retry when the asker reconnects."
        )
        raise Unavailable(detail)
    if outcome == "own":
        text = f"[ack #{correlation_id} from @{responder}] {message}"
        full = {**frame, "from_peer": responder, "to_peer": asker, "text": text}
        connections.hand_over(asker_id, {"frame": full})
    return True


def broadcast(
    r: Redis,
    *,
    from_peer: str,
    text: str,
    now_ms: int,
    exclude: list[str] | None = None,
    bypass_circle: bool = False,
    circle: str | None = None,
) -> dict[str, Any]:
    """Send to every connected peer the sender may reach, but itself and `exclude`:
    {ok, sent_to: [peer ids], failed: [{session_id, error}]}."""
    source = sender(r, from_peer, circle)
    skipped = set(exclude or ()) | {from_peer}
    if source:
        skipped.add(source["peer_id"])
    frame = {"type": "broadcast", "from_peer": from_peer, "text": text}
    sent, failed = [], []
    for peer in peers.list_all(r):
        if not peer.get("ws_connected") or skipped & {peer["peer_id"], peer["name"]}:
            continue
        if circle and peer.get("circle") != circle and not bypass_circle:
            continue
        try:
            check_circle(source, peer, bypass_circle)
        except Undeliverable:
            continue
        if connections.send(r, peer["peer_id"], {"frame": frame}, now_ms):
            sent.append(peer["peer_id"])
        else:
            failed.append({"session_id": peer["peer_id"], "error": "no live connection"})
    summary = {"from_peer": from_peer, "text": text[:500], "sent_to": sent}
    events.append(r, "broadcast", now_ms, summary)
    return {"ok": True, "sent_to": sent, "failed": failed}
