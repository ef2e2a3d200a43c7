"""Asks, answers and questions (docs/api.md): /ask, /ack, /answer, /asks/pending,
/deliveries/pending, /ask-many and the no-ops old hooks still post. The routes that wait for
an answer (/asks/{id}/wait, /questions/ask-blocking, /query) are in ask_waits.py."""

from __future__ import annotations

import contextlib
import secrets
from typing import Any

from flask import request

from api_shim import bodies, budgets
from api_shim.answers import Ok
from api_shim.context import r
from api_shim.daemon import blueprint, message_answers, views
from api_shim.daemon.ask_requests import (
    ASK_MANY_MAX_PEERS,
    AckBody,
    Answer,
    AnswerBody,
    AskBody,
    AskManyBody,
    PendingQuery,
    answer_error,
)
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import asks, clock, deliveries, hops, messaging, peers


def ask_or_404(correlation_id: str, message: str = "No open ask with correlation_id") -> Any:
    record = asks.get(r(), correlation_id) if len(correlation_id) <= 100 else None
    if record is None:
        raise ApiError(404, f"{message}: {correlation_id}")
    return record


def _refs(items: list[Any]) -> list[dict[str, Any]]:
    return [a.model_dump(exclude_none=True) for a in items]


@blueprint.post("/ask")
@declare(body=AskBody, responses={200: message_answers.AskOpened, 429: budgets.PeerOverBudget})
@budgets.per_peer
def open_ask() -> dict[str, Any]:
    body = bodies.parse(AskBody)
    hops.begin()
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
        with contextlib.suppress(*messaging.Undeliverable):
            messaging.deliver_reply(r(), record, str(said), now)


@blueprint.post("/answer")
@declare(body=AnswerBody, responses={200: Ok})
def answer_question() -> dict[str, Any]:
    body = bodies.parse(AnswerBody)
    record = ask_or_404(body.correlation_id)
    if record["question"] is None:
        raise ApiError(422, f"Ask {body.correlation_id} is not a structured question; use /ack.")
    answer = Answer(
        option_id=body.option_id, text=body.text, outcome=body.outcome, message=body.message
    )
    _answer(record, answer, _refs(body.attachments))
    return views.OK


@blueprint.post("/ack")
@declare(body=AckBody, responses={200: Ok})
def ack_ask() -> dict[str, Any]:
    body = bodies.parse(AckBody)
    hops.begin()
    cid, now = body.correlation_id, clock.now_ms()
    attachments = _refs(body.attachments)
    # A reply to a plain open ask in one step; any other case takes the general path below.
    plain = body.message is not None and len(cid) <= 100
    if plain and messaging.reply(r(), cid, body.message or "", now, attachments):
        return views.OK
    record = ask_or_404(body.correlation_id)
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
@declare(query=PendingQuery, responses={200: message_answers.PendingAsks})
def pending_asks() -> dict[str, Any]:
    q = bodies.validate(PendingQuery, request.args.to_dict(), loc="query")
    if q.direction not in ("inbound", "outbound", "both"):
        raise ApiError(400, "direction must be one of: inbound, outbound, both")
    peer = _peer_for(q)
    return {"asks": asks.pending(r(), peer["peer_id"], peer["name"], q.direction)}


@blueprint.get("/deliveries/pending")
@declare(query=PendingQuery, responses={200: message_answers.PendingDeliveries})
def pending_deliveries() -> dict[str, Any]:
    q = bodies.validate(PendingQuery, request.args.to_dict(), loc="query")
    peer = _peer_for(q)
    return {"deliveries": deliveries.drain(r(), peer["peer_id"], q.max_results)}


@blueprint.post("/ask-many")
@declare(
    body=AskManyBody, responses={200: message_answers.AskManyOpened, 429: budgets.PeerOverBudget}
)
@budgets.per_peer
def ask_many() -> dict[str, Any]:
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
@declare(responses={200: message_answers.AskManyStatus})
def ask_many_result(parent_id: str) -> dict[str, Any]:
    result = asks.many_status(r(), parent_id, clock.now_ms()) if len(parent_id) <= 100 else None
    if result is None:
        raise ApiError(404, f"ask-many {parent_id} not found")
    return result


@blueprint.post("/asks/<correlation_id>/picked_up")
@blueprint.post("/asks/<correlation_id>/mark_reminded")
@declare(responses={200: Ok})
def deprecated_no_op(correlation_id: str) -> dict[str, Any]:
    """Kept as repowire keeps them: old hooks still post here."""
    bodies.raw_json(allow_empty=True)
    return views.OK
