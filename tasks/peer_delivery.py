"""A persistent job's fire: delivered as an ask over the live WebSocket of a peer, which PATCHes
the job `running` and then its result with the attempt id."""

from __future__ import annotations

import contextlib

import redis

from dispatchyard.state import asks, clock, jobs, messaging, peers
from dispatchyard.state.errors import StateError
from dispatchyard.state.job_shape import JobDoc
from dispatchyard.state.models import PEER_CONNECTED, JobState
from workers import attempts

RUNNER_PEER = "dispatchyard-runner"


def deliver(r: redis.Redis, doc: JobDoc, attempt_id: str) -> str:
    """Hand the attempt to a peer: the assigned one, or a connected peer working in the same
    path with the same backend in the same circle. The ask is opened and the job marked
    `delivered` in one transaction; a peer with no live socket (before or at the hand-off) ends
    the attempt `unavailable` / `assigned_peer_offline`. Returns what happened."""
    job_id = doc["job_id"]
    target = (doc.get("execution") or {}).get("target") or {}
    assigned = doc.get("assigned_peer_id") or target.get("assigned_peer_id")
    circle = doc.get("circle") or "global"
    if assigned:
        found = peers.resolve(r, assigned, None if assigned.startswith("repow-") else circle)
        peer = found if isinstance(found, dict) else None
    else:
        peer = peers.find_online(
            r, path=target.get("path"), backend=target.get("backend"), circle=circle
        )
    if peer is None or peer.get("status") not in PEER_CONNECTED or not peer.get("ws_connected"):
        return attempts.unavailable(r, job_id, attempt_id, "assigned_peer_offline")
    now = clock.now_ms()
    cid = asks.new_id()
    text = _ask_text(doc, attempt_id)
    extra = {"job_id": job_id, "attempt_id": attempt_id}

    def open_ask(pipe: redis.client.Pipeline) -> None:
        asks.write_open(
            pipe,
            from_peer=RUNNER_PEER,
            to_peer_id=peer["peer_id"],
            to_peer=peer["name"],
            text=text,
            now_ms=now,
            correlation_id=cid,
            extra=extra,
        )

    try:
        jobs.delivered(
            r,
            job_id,
            attempt_id,
            peer_id=peer["peer_id"],
            correlation_id=cid,
            now_ms=now,
            extra=open_ask,
        )
    except StateError:
        return "superseded"  # cancelled or ended meanwhile: nothing was opened
    frame = messaging.ask_frame(cid, RUNNER_PEER, peer["name"], text)
    if messaging.send_frame(r, peer, frame, cid, clock.now_ms()):
        return "delivered"
    # Its socket went away between the look and the hand-off.
    asks.close(r, cid, clock.now_ms(), reason="no_connection")
    with contextlib.suppress(StateError):
        jobs.finish_attempt(
            r,
            job_id,
            attempt_id,
            state=JobState.UNAVAILABLE,
            reason="assigned_peer_offline",
            error={"reason": "assigned_peer_offline"},
            now_ms=clock.now_ms(),
            from_states=(JobState.DELIVERED,),
        )
    return "assigned_peer_offline"


def _ask_text(doc: JobDoc, attempt_id: str) -> str:
    body = ((doc.get("execution") or {}).get("prompt") or {}).get("body") or doc.get("title")
    return (
        f"[dispatchyard durable job]\njob_id: {doc['job_id']}\nattempt_id: {attempt_id}\n\n"
        f"{body}\n\nFirst PATCH /jobs/{doc['job_id']} to state=running with this attempt_id, "
        "before longer work. When done, PATCH it to a terminal state with the same attempt_id. "
        "An ack only confirms receipt."
    )
