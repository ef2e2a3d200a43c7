"""The ask routes that wait for an answer, holding their request thread up to a cap
(docs/api.md): /asks/{id}/wait, /questions/ask-blocking and /query.

The wait is on this process's hub: the answer may be posted to any shim process, and the wait
ends at its cap.
"""

from __future__ import annotations

from typing import Any

from api_shim import bodies, budgets, hub
from api_shim.context import r
from api_shim.daemon import blueprint, message_answers
from api_shim.daemon.ask_requests import (
    BLOCKING_DEFAULT_S,
    BLOCKING_MAX_S,
    QUERY_MAX_S,
    WAIT_DEFAULT_S,
    WAIT_MAX_S,
    AskBlockingBody,
    QueryBody,
    WaitBody,
    blocking_question,
    wait_cap,
)
from api_shim.daemon.asks import ask_or_404
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import asks, clock, messaging, peers


def _resolved(cid: str) -> dict[str, Any] | None:
    record = asks.get(r(), cid)
    return record if record is not None and record["status"] == "closed" else None


def _wait(cid: str, seconds: float) -> dict[str, Any] | None:
    return hub.get(r()).wait(cid, seconds, lambda: _resolved(cid))


@blueprint.post("/asks/<correlation_id>/wait")
@declare(body=WaitBody, responses={200: message_answers.WaitAnswer})
def wait_on_ask(correlation_id: str) -> dict[str, Any]:
    body = bodies.parse(WaitBody)
    record = ask_or_404(correlation_id, "No ask with correlation_id")
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
@declare(
    body=AskBlockingBody,
    responses={200: message_answers.BlockingAnswer, 429: budgets.PeerOverBudget},
)
@budgets.per_peer
def ask_blocking() -> dict[str, Any]:
    """Ask a blocking question and hold the request until it is answered or its wait ends (then
    its default answer: `denied` for a `tool_permission` question, `timed_out` otherwise). The
    wait is `timeout_seconds` (45 s when absent) capped at 55 s, as repowire's daemon clamps it:
    a longer wait is not refused (repowire's hook denies the tool on any answer but 200), and the
    answer's `timeout_seconds` is the wait the shim used, so a client that asked for 900 sees 55.
    A retry with the same `correlation_id` waits on the same question, or answers its recorded
    answer at once."""
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
        "timeout_seconds": seconds,
    }


@blueprint.post("/query")
@declare(body=QueryBody, responses={200: message_answers.QueryAnswer, 429: budgets.PeerOverBudget})
@budgets.per_peer
def query() -> dict[str, Any]:
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
