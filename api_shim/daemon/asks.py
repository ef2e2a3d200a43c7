"""Asks, answers and questions (docs/api.md): /ask, /ack, /answer, /asks/pending,
/deliveries/pending, /asks/{id}/wait, /questions/ask-blocking, /query, /ask-many.

A request that waits for an answer (a blocking question, an ask-wait, a query) waits on this
process's hub: the answer may be posted to any shim process, and the wait ends at its cap.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from flask import request

from api_shim import bodies, hub
from api_shim.context import r
from api_shim.daemon import blueprint, views
from api_shim.daemon.ask_requests import (
    ASK_MANY_MAX_PEERS,
    BLOCKING_DEFAULT_S,
    BLOCKING_MAX_S,
    QUERY_MAX_S,
    WAIT_DEFAULT_S,
    WAIT_MAX_S,
    AckBody,
    Answer,
    AnswerBody,
    AskBlockingBody,
    AskBody,
    AskManyBody,
    PendingQuery,
    QueryBody,
    WaitBody,
    answer_error,
    blocking_question,
    wait_cap,
)
from api_shim.errors import ApiError
from dispatchyard.state import asks, clock, deliveries, messaging, peers


def _ask_or_404(correlation_id: str, message: str = "No open ask with correlation_id") -> Any:
    record = asks.get(r(), correlation_id) if len(correlation_id) <= 100 else None
    if record is None:
        raise ApiError(404, f"{message}: {correlation_id}")
    return record


def _refs(items: list[Any]) -> list[dict[str, Any]]:
    return [a.model_dump(exclude_none=True) for a in items]


@blueprint.post("/ask")
def open_ask():
    body = bodies.parse(AskBody)
    question = body.question.model_dump() if body.question else None
    cid = messaging.ask(
        r(),
        from_peer=body.from_peer,
        to_peer=body.to_peer,
        text=body.text,
        now_ms=clock.now_ms(),
        attachments=_refs(body.attachments),
        reply_to=body.reply_to,
        bypass_circle=body.bypass_circle,
        circle=body.circle,
        question=question,
    )
    return {"correlation_id": cid, "error": None}


def _answer(record: dict[str, Any], answer: Answer, attachments: list[dict[str, Any]]) -> None:
    """Record the first answer to a question (410 if it was not the first), then best-effort
    tell a push-mode asker what was answered."""
    cid = record["correlation_id"]
    if record["status"] == "closed":
        raise ApiError(410, f"Ask {cid} is already answered/closed.")
    error = answer_error(record["question"] or {}, answer)
    if error:
        raise ApiError(422, error)
    fields = {"answer": answer.model_dump(), "reply_attachments": attachments}
    if answer.text is not None:
        fields["reply_text"] = answer.text
    now = clock.now_ms()
    asks.resolve(
        r(),
        cid,
        now,
        reason=answer.outcome,
        fields=fields,
        responder=record.get("to_peer_id") or None,
    )
    scope = (record["question"] or {}).get("scope")
    if record.get("reply_delivery") == "push" and scope != "tool_permission":
        said = answer.text or answer.option_id or answer.outcome
        # The answer is recorded either way; an asker away reads it from /asks/{id}/wait.
        with contextlib.suppress(messaging.Undeliverable):
            messaging.deliver_reply(r(), record, str(said), now)


@blueprint.post("/answer")
def answer_question():
    body = bodies.parse(AnswerBody)
    record = _ask_or_404(body.correlation_id)
    if record["question"] is None:
        raise ApiError(422, f"Ask {body.correlation_id} is not a structured question; use /ack.")
    answer = Answer(
        option_id=body.option_id, text=body.text, outcome=body.outcome, message=body.message
    )
    _answer(record, answer, _refs(body.attachments))
    return views.OK


@blueprint.post("/ack")
def ack_ask():
    body = bodies.parse(AckBody)
    record = _ask_or_404(body.correlation_id)
    cid, now = body.correlation_id, clock.now_ms()
    attachments = _refs(body.attachments)
    replying = body.message is not None or bool(attachments)
    if record["question"] is not None and record["status"] == "open":
        outcome = "answered" if body.message else "acknowledged"
        _answer(record, Answer(text=body.message, outcome=outcome), attachments)
        return views.OK
    if record["status"] == "closed":
        if replying:
            raise ApiError(
                410,
                f"Ask {cid} is already closed; reply message was not delivered. "
                "Send a new notify/ask instead.",
            )
        return views.OK  # a bare ack again is idempotent
    if not replying:
        asks.close(r(), cid, now, reason="ack", responder=record.get("to_peer_id"))
        return views.OK
    if record.get("reply_delivery") != "pull":
        extra = {"attachments": attachments} if attachments else {}
        messaging.deliver_reply(r(), record, body.message or "", now, **extra)
    fields = {"reply_text": body.message or "", "reply_attachments": attachments}
    asks.close(
        r(), cid, now, reason="ack_with_msg", fields=fields, responder=record.get("to_peer_id")
    )
    return views.OK


def _peer_for(q: PendingQuery) -> dict[str, Any]:
    if not q.pane_id and not q.peer_id:
        raise ApiError(400, "Must provide pane_id or peer_id")
    if q.pane_id and q.peer_id:
        raise ApiError(400, "Provide only one of pane_id or peer_id")
    if q.pane_id:
        peer = peers.by_pane(r(), q.pane_id)
        if peer is None:
            raise ApiError(404, f"No peer for pane: {q.pane_id}")
        return peer
    found = peers.resolve(r(), q.peer_id or "")
    if not isinstance(found, dict):
        raise ApiError(404, f"No peer with id: {q.peer_id}")
    return found


@blueprint.get("/asks/pending")
def pending_asks():
    q = bodies.validate(PendingQuery, request.args.to_dict(), loc="query")
    if q.direction not in ("inbound", "outbound", "both"):
        raise ApiError(400, "direction must be one of: inbound, outbound, both")
    peer = _peer_for(q)
    return {"asks": asks.pending(r(), peer["peer_id"], peer["name"], q.direction)}


@blueprint.get("/deliveries/pending")
def pending_deliveries():
    q = bodies.validate(PendingQuery, request.args.to_dict(), loc="query")
    peer = _peer_for(q)
    return {"deliveries": deliveries.drain(r(), peer["peer_id"], q.max_results)}


def _resolved(cid: str) -> dict[str, Any] | None:
    record = asks.get(r(), cid)
    return record if record is not None and record["status"] == "closed" else None


def _wait(cid: str, seconds: float) -> dict[str, Any] | None:
    return hub.get(r()).wait(cid, seconds, lambda: _resolved(cid))


@blueprint.post("/asks/<correlation_id>/wait")
def wait_on_ask(correlation_id: str):
    body = bodies.parse(WaitBody)
    record = _ask_or_404(correlation_id, "No ask with correlation_id")
    if body.peer_id not in (record["from_peer_id"], record["from_peer"]):
        detail = {
            "error": "not_the_asker",
            "correlation_id": correlation_id,
            "asker": record["from_peer"],
        }
        raise ApiError(403, "not_the_asker", detail=detail)
    if record["status"] == "open":
        asks.pull_replies(r(), correlation_id)
    done = _wait(correlation_id, wait_cap(body.timeout_seconds, WAIT_DEFAULT_S, WAIT_MAX_S))
    if done is None:
        return {"correlation_id": correlation_id, "status": "pending"}
    answer = done["answer"] or {}
    return {
        "correlation_id": correlation_id,
        "status": "resolved",
        "reply": done.get("reply_text")
        if done.get("reply_text") is not None
        else answer.get("text"),
        "outcome": answer.get("outcome"),
        "option_id": answer.get("option_id"),
        "message": answer.get("message"),
        "close_reason": done.get("close_reason"),
        "responder": done.get("to_peer"),
        "attachments": done.get("reply_attachments"),
    }


@blueprint.post("/questions/ask-blocking")
def ask_blocking():
    body = bodies.parse(AskBlockingBody)
    if body.scope == "tool_permission" and not body.options:
        raise ApiError(422, "tool_permission question requires at least one allow-capable option")
    seconds = wait_cap(body.timeout_seconds, BLOCKING_DEFAULT_S, BLOCKING_MAX_S)
    question = blocking_question(body, seconds)
    cid = body.correlation_id or asks.new_id()
    now = clock.now_ms()
    if asks.get(r(), cid) is None:  # a caller's retry with the same id waits on the same one
        origin = body.from_peer or "external"
        asks.open_ask(
            r(),
            from_peer=origin,
            to_peer_id="",
            to_peer="",
            text=body.prompt,
            now_ms=now,
            correlation_id=cid,
            kind="question",
            question=question,
            extra={"origin": body.origin} if body.origin else None,
        )
    done = _wait(cid, seconds)
    if done is None:
        # Fail-closed: the default answer is recorded as any answer is, so if a real answer
        # raced the deadline, the first one wins and is what we return.
        default = question["default_answer"]
        asks.close(r(), cid, clock.now_ms(), reason=default["outcome"], fields={"answer": default})
        done = _resolved(cid)
    answer = (done or {}).get("answer") or {}
    return {
        "correlation_id": cid,
        "outcome": answer.get("outcome", "timed_out"),
        "option_id": answer.get("option_id"),
        "message": answer.get("message"),
    }


@blueprint.post("/query")
def query():
    body = bodies.parse(QueryBody)
    found = peers.resolve(r(), body.to_peer, body.circle)
    if not isinstance(found, dict):
        return {"text": None, "error": f"Unknown peer: {body.to_peer}", "status": None}
    if found.get("status") in ("busy", "offline", "retired"):
        status = "busy" if found["status"] == "busy" else "offline"
        return {"text": None, "error": f"Peer '{body.to_peer}' is {status}", "status": status}
    try:
        cid = messaging.ask(
            r(),
            from_peer=body.from_peer or "cli",
            to_peer=found["peer_id"],
            text=body.text,
            now_ms=clock.now_ms(),
            bypass_circle=body.bypass_circle or body.from_peer is None,
            kind="query",
        )
    except messaging.Undeliverable as e:
        return {"text": None, "error": str(e.detail), "status": None}
    done = _wait(cid, min(body.timeout, QUERY_MAX_S))
    if done is None:
        asks.close(r(), cid, clock.now_ms(), reason="timed_out")
        return {"text": None, "error": f"Timeout waiting for {body.to_peer}", "status": None}
    answer = done["answer"] or {}
    text = done.get("reply_text") if done.get("reply_text") is not None else answer.get("text")
    if text is None:  # closed without a reply: its peer went away, or it was acked bare
        error = f"Peer '{body.to_peer}' closed the query without a reply ({done['close_reason']})"
        return {"text": None, "error": error, "status": None}
    return {"text": text, "error": None, "status": None}


@blueprint.post("/ask-many")
def ask_many():
    body = bodies.parse(AskManyBody)
    if not body.to_peers:
        raise ApiError(422, "to_peers must not be empty")
    if len(body.to_peers) > ASK_MANY_MAX_PEERS:
        raise ApiError(422, f"to_peers exceeds the {ASK_MANY_MAX_PEERS}-peer limit")
    parent_id = f"askm-{secrets.token_hex(4)}"
    now = clock.now_ms()
    children, seen = [], set()
    for name in dict.fromkeys(body.to_peers):
        child: dict[str, Any] = {
            "peer": name,
            "correlation_id": None,
            "delivered": False,
            "error": None,
        }
        try:
            dest = messaging.target(r(), name, body.circle)
            if dest["peer_id"] in seen:
                continue
            seen.add(dest["peer_id"])
            child["peer"] = dest["name"]
            child["correlation_id"] = messaging.ask(
                r(),
                from_peer=body.from_peer,
                to_peer=dest["peer_id"],
                text=body.text,
                now_ms=now,
                bypass_circle=body.bypass_circle,
                parent_id=parent_id,
            )
            child["delivered"] = True
        except messaging.Undeliverable as e:
            child["error"] = str(e.detail)
        children.append(child)
    asks.record_many(r(), parent_id, body.from_peer, body.text, body.timeout_seconds, children, now)
    return {"parent_id": parent_id, "children": children}


@blueprint.get("/ask-many/<parent_id>")
def ask_many_result(parent_id: str):
    result = asks.many_status(r(), parent_id, clock.now_ms()) if len(parent_id) <= 100 else None
    if result is None:
        raise ApiError(404, f"ask-many {parent_id} not found")
    return result


@blueprint.post("/asks/<correlation_id>/picked_up")
@blueprint.post("/asks/<correlation_id>/mark_reminded")
def deprecated_no_op(correlation_id: str):
    """Kept as repowire keeps them: old hooks still post here."""
    bodies.raw_json(allow_empty=True)
    return views.OK
