"""Asks, questions and their answers, persisted in Redis (repowire keeps them in memory; here a
restart of any process loses none).

An ask is a hash `ask:{correlation_id}`: who asked whom, the text, an optional structured
question, how the reply reaches the asker (`push`: typed into its pane; `pull`: kept for
`POST /asks/{id}/wait`), and, once resolved, the answer. Open asks are indexed by recipient
(inbound) and by asker (outbound). Resolving is one script: the first ack or answer wins, and
it publishes the id so a waiter held by any shim process wakes at once.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

from dispatchyard.state import events, keys, store, traces
from dispatchyard.state.clock import iso
from dispatchyard.state.documents import dumps
from dispatchyard.state.errors import Gone, NotFound
from dispatchyard.state.peers import CROSS_CIRCLE_ROLES
from dispatchyard.state.scripts import scripts
from dispatchyard.state.store import Pipeline, Redis

PENDING_SHOWN = 10
SHOWN_FIELDS = ("correlation_id", "from_peer", "to_peer", "text", "created_at")
JSON_FIELDS = ("question", "answer", "attachments", "reply_attachments", "extra")
CLOSED_KEPT_S = 24 * 3600  # a closed ask answers acks, waits and traces for a day

Ask = dict[str, Any]


def new_id() -> str:
    return f"ask-{secrets.token_hex(4)}"


def open_ask(r: Redis, *, now_ms: int, **fields: Any) -> str:
    """Store an open ask (see `write_open` for the fields); its correlation id."""
    pipe = r.pipeline(transaction=True)
    correlation_id = write_open(pipe, now_ms=now_ms, **fields)
    pipe.execute()
    return correlation_id


def write_open(
    pipe: Pipeline,
    *,
    from_peer: str,
    to_peer_id: str,
    to_peer: str,
    text: str,
    now_ms: int,
    from_peer_id: str | None = None,
    correlation_id: str | None = None,
    kind: str = "ask",
    question: dict[str, Any] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    reply_to: str | None = None,
    parent_id: str | None = None,
    extra: dict[str, Any] | None = None,
    resolved: bool = False,
) -> str:
    """The commands that store an open ask from `from_peer` (a name; `from_peer_id` when the
    asker is a registered peer) to peer `to_peer_id` (named `to_peer`; '' for a question to
    whoever answers, such as a blocking question), with its `created` trace stage (and
    `resolved_peer` when `resolved`) and its event, for the caller's MULTI; its correlation
    id."""
    correlation_id = correlation_id or new_id()
    asker = from_peer_id or from_peer
    record = new_record(
        correlation_id,
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
    record |= {"from_peer_id": asker, "to_peer": to_peer, "to_peer_id": to_peer_id}
    store.hset_fields(pipe, keys.ask(correlation_id), record)
    if to_peer_id:
        pipe.zadd(keys.asks_inbound(to_peer_id), {correlation_id: now_ms})
    pipe.zadd(keys.asks_outbound(asker), {correlation_id: now_ms})
    pipe.zadd(keys.ASKS_OPEN, {correlation_id: now_ms})
    peer = to_peer_id or None
    traces.stage(pipe, correlation_id, "created", now_ms, peer_id=peer, from_peer_id=asker)
    if resolved:  # the caller resolved the recipient to a registered peer
        traces.stage(pipe, correlation_id, "resolved_peer", now_ms, peer_id=peer)
    summary = {"correlation_id": correlation_id, "from_peer": from_peer, "to_peer": to_peer}
    events.append(pipe, "ask", now_ms, {**summary, "text": text[:500], "kind": kind})
    return correlation_id


def new_record(
    correlation_id: str,
    *,
    from_peer: str,
    text: str,
    now_ms: int,
    kind: str = "ask",
    question: dict[str, Any] | None = None,
    attachments: list[dict[str, Any]] | None = None,
    reply_to: str | None = None,
    parent_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, str]:
    """An open ask's hash, but for who it is to and from (`to_peer`, `to_peer_id`,
    `from_peer_id`)."""
    return {
        "correlation_id": correlation_id,
        "kind": kind,
        "from_peer": from_peer,
        "text": text,
        "created_at": iso(now_ms),
        "status": "open",
        "reply_delivery": "push",
        "question": dumps(question) if question else "",
        "attachments": dumps(attachments or []),
        "reply_to": reply_to or "",
        "parent_id": parent_id or "",
        "extra": dumps(extra or {}),
    }


def send(
    r: Redis,
    record: dict[str, str],
    *,
    to_peer: str,
    circle: str | None,
    bypass_circle: bool,
    frame: dict[str, Any],
    own_node: str,
    now_ms: int,
) -> list[Any]:
    """Open the ask `record` (from `new_record`) to peer `to_peer` (id or name, in `circle`
    when given) and hand `frame` (all but its `to_peer`) to the process holding the
    recipient's socket, in one step (send_ask.lua): [outcome, recipient id, recipient name,
    holding node, queues when offline]. NotFound, Conflict (an ambiguous name), Forbidden (the
    circle rule); nothing written then."""
    cid = record["correlation_id"]
    summary = {
        "correlation_id": cid,
        "from_peer": record["from_peer"],
        "to_peer": "",
        "text": record["text"][:500],
        "kind": record["kind"],
    }
    event = {"type": "ask", "timestamp": iso(now_ms), "data": json.dumps(summary, default=str)}
    head = json.dumps(frame, separators=(",", ":"))[:-1]
    out: list[Any] = scripts(r).send_ask(
        args=[
            to_peer,
            circle or "",
            record["from_peer"],
            "1" if bypass_circle else "0",
            cid,
            json.dumps(record),
            now_ms,
            iso(now_ms),
            json.dumps(event),
            head,
            own_node,
            traces.TTL_S,
            events.MAXLEN,
            " ".join(CROSS_CIRCLE_ROLES),
        ]
    )
    return [int(out[0]), str(out[1]), str(out[2]), str(out[3]), out[4] == "1"]


def reply(
    r: Redis,
    correlation_id: str,
    message: str,
    *,
    fields: dict[str, Any],
    frame: dict[str, Any],
    own_node: str,
    now_ms: int,
) -> list[str]:
    """Reply to an open plain ask: hand the reply `frame` (all but `from_peer`, `to_peer`,
    `text`) to the asker's socket and close the ask with `fields`, in one step
    (reply_ask.lua): [outcome, asker name, responder name, holder node, asker id]; the
    outcomes are the script's."""
    now = iso(now_ms)
    data = dumps({"correlation_id": correlation_id, "reason": "ack_with_msg"})
    event = {"type": "ask_resolved", "timestamp": now, "data": data}
    stored = {k: v if isinstance(v, str) else dumps(v) for k, v in fields.items()}
    out = scripts(r).reply_ask(
        args=[
            correlation_id,
            message,
            dumps(stored),
            now,
            json.dumps(frame, separators=(",", ":"))[:-1],
            own_node,
            CLOSED_KEPT_S,
            traces.TTL_S,
            events.MAXLEN,
            dumps(event),
        ]
    )
    return [str(x) for x in out] + [""] * (5 - len(out))


def _load(raw: dict[str, str]) -> Ask:
    ask: Ask = dict(raw)
    for name in JSON_FIELDS:
        ask[name] = json.loads(raw[name]) if raw.get(name) else None
    return ask


def get(r: Redis, correlation_id: str) -> Ask | None:
    raw = store.hgetall(r, keys.ask(correlation_id))
    return _load(raw) if raw else None


def newest_open(r: Redis, count: int) -> list[str]:
    """The correlation ids of the newest open asks and questions, newest first."""
    return [cid for cid, _ in store.zrevrange_scored(r, keys.ASKS_OPEN, 0, count - 1)]


def get_many(r: Redis, correlation_ids: list[str]) -> list[Ask | None]:
    raws = store.hgetall_many(r, [keys.ask(c) for c in correlation_ids])
    return [_load(raw) if raw else None for raw in raws]


def pending(r: Redis, peer_id: str, peer_name: str, direction: str) -> list[dict[str, str]]:
    """Open asks to (inbound) and/or from (outbound) a peer, newest first, at most 10."""
    sources = []
    if direction in ("inbound", "both"):
        sources.append(("inbound", keys.asks_inbound(peer_id)))
    if direction in ("outbound", "both"):
        # Asks opened before the asker registered are filed under its name.
        sources += [
            ("outbound", keys.asks_outbound(a)) for a in dict.fromkeys([peer_id, peer_name])
        ]
    rows: list[tuple[float, str, str]] = []
    for kind, key in sources:
        found = store.zrevrange_scored(r, key, 0, PENDING_SHOWN - 1)
        rows += [(score, cid, kind) for cid, score in found]
    rows.sort(reverse=True)
    chosen = rows[:PENDING_SHOWN]
    records = store.hgetall_many(r, [keys.ask(cid) for _, cid, _ in chosen])
    return [
        {k: record[k] for k in SHOWN_FIELDS} | {"direction": kind}
        for (_, _, kind), record in zip(chosen, records, strict=True)
        if record
    ]


def inbound_count_and_oldest(r: Redis, peer_id: str) -> tuple[int, float | None]:
    """How many open asks wait for the peer, and when the oldest was opened (ms)."""
    pipe = r.pipeline(transaction=False)
    pipe.zcard(keys.asks_inbound(peer_id))
    pipe.zrange(keys.asks_inbound(peer_id), 0, 0, withscores=True)
    count, oldest = pipe.execute()
    return int(count), (float(oldest[0][1]) if oldest else None)


def resolve(
    r: Redis,
    correlation_id: str,
    now_ms: int,
    *,
    reason: str,
    fields: dict[str, Any] | None = None,
    responder: str | None = None,
) -> None:
    """Close an open ask with `fields` (answer, reply_text, ...) and `close_reason`; wakes its
    waiters. NotFound; Gone when it was closed already (the first resolution won)."""
    stored = {k: v if isinstance(v, str) else dumps(v) for k, v in (fields or {}).items()}
    stored["close_reason"] = reason
    if responder:
        stored["responder"] = responder
    now = iso(now_ms)
    stage = "acked" if reason.startswith("ack") else "closed"
    detail = {"reason": reason}
    entry = {"stage": stage, "status": "ok", "peer_id": responder, "ts": now, "detail": detail}
    data = dumps({"correlation_id": correlation_id, "reason": reason})
    event = {"type": "ask_resolved", "timestamp": now, "data": data}
    scripts(r).resolve_ask(
        keys=[keys.ask(correlation_id), keys.trace(correlation_id)],
        args=[
            correlation_id,
            dumps(stored),
            now,
            dumps(entry),
            dumps(event),
            CLOSED_KEPT_S,
            traces.TTL_S,
            events.MAXLEN,
        ],
    )


def close(
    r: Redis,
    correlation_id: str,
    now_ms: int,
    reason: str = "closed",
    *,
    fields: dict[str, Any] | None = None,
    responder: str | None = None,
) -> bool:
    """Resolve, where losing the race is fine (a bare ack, a timeout, a cancelled delivery):
    True when this call closed it, False when it was closed already or is unknown."""
    try:
        resolve(r, correlation_id, now_ms, reason=reason, fields=fields, responder=responder)
    except (Gone, NotFound):
        return False
    return True


def pull_replies(r: Redis, correlation_id: str) -> None:
    """The asker waits for the reply (`/asks/{id}/wait`) instead of having it typed in."""
    r.hset(keys.ask(correlation_id), "reply_delivery", "pull")


def record_many(
    r: Redis,
    parent_id: str,
    from_peer: str,
    text: str,
    timeout_s: int,
    children: list[dict[str, Any]],
    now_ms: int,
) -> None:
    """Remember an ask-many parent: its children (peer, correlation id or delivery error) and
    its lazy deadline. Kept as long as a closed ask."""
    record: dict[str, str | int] = {
        "parent_id": parent_id,
        "from_peer": from_peer,
        "text": text,
        "created_ms": now_ms,
        "timeout_s": timeout_s,
        "children": dumps(children),
    }
    pipe = r.pipeline(transaction=True)
    store.hset_fields(pipe, keys.ask_many(parent_id), record)
    pipe.expire(keys.ask_many(parent_id), CLOSED_KEPT_S)
    pipe.execute()


def _child_status(ask: Ask | None) -> str:
    if ask is None or ask.get("close_reason") in ("send_failed", "no_connection"):
        return "failed"
    if ask["status"] != "closed":
        return "pending"
    return "replied" if ask.get("reply_text") is not None else "acked"


def many_status(r: Redis, parent_id: str, now_ms: int) -> dict[str, Any] | None:
    """An ask-many parent as its children stand now (repowire's shape): `complete` when none is
    open, `partial` once the deadline passed with some open, else `pending`."""
    parent = store.hgetall(r, keys.ask_many(parent_id))
    if not parent:
        return None
    children = json.loads(parent["children"])
    found = get_many(r, [c["correlation_id"] for c in children if c["correlation_id"]])
    by_id = {a["correlation_id"]: a for a in found if a}
    counts = {"acked": 0, "replied": 0, "pending": 0, "failed": 0}
    views = []
    for child in children:
        ask = by_id.get(child["correlation_id"] or "")
        status = _child_status(ask)
        counts[status] += 1
        views.append(
            {
                "peer": child["peer"],
                "peer_id": ask["to_peer_id"] if ask else None,
                "correlation_id": child["correlation_id"],
                "status": status,
                "reply": ask.get("reply_text") if ask else None,
                "close_reason": ask.get("close_reason") if ask else None,
                "error": child.get("error"),
            }
        )
    created = int(parent["created_ms"])
    deadline = created + int(parent["timeout_s"]) * 1000
    timed_out = counts["pending"] > 0 and now_ms >= deadline
    state = "complete" if not counts["pending"] else "partial" if timed_out else "pending"
    return {
        "parent_id": parent_id,
        "from_peer": parent["from_peer"],
        "text": parent["text"],
        "created_at": iso(created),
        "deadline": iso(deadline),
        "state": state,
        "timed_out": timed_out,
        "rollup": {"total": len(children), **counts},
        "children": views,
    }
