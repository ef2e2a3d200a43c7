"""How the daemon group shows stored records on the wire (repowire's shapes): the answers of
the /jobs routes and of /traces. Stored job and template documents are already wire-shaped, so
most answers wrap them; the job list is joined from stored JSON without parsing it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

from dispatchyard.state import peer_lookups
from dispatchyard.state.clock import iso
from dispatchyard.state.job_shape import JobDoc
from dispatchyard.state.models import JOB_TERMINAL, PeerState
from dispatchyard.state.template_rules import TemplateDoc

Doc = dict[str, Any]

# The body of a route that only says it worked (as repowire answers).
OK = {"ok": True}


def created_job(doc: JobDoc) -> Doc:
    return {"job_id": doc["job_id"], "work_id": doc["job_id"], "status": doc}


def created_template(doc: TemplateDoc) -> Doc:
    cal_id = doc["calendar_id"]
    return {"calendar_id": cal_id, "recurring_id": cal_id, "calendar": doc}


def status_json(raw_doc: str) -> str:
    """`{"status": <stored document>}` without parsing the stored JSON."""
    return '{"status":' + raw_doc + "}"


def result(doc: JobDoc) -> Doc:
    """GET /jobs/{id}/result: the outcome once the job ended, `not_ready` before."""
    job_id = doc["job_id"]
    if doc["state"] not in JOB_TERMINAL:
        return {
            "result": {
                "job_id": job_id,
                "work_id": job_id,
                "result_state": "not_ready",
                "status": doc,
            }
        }
    return {
        "result": {
            "job_id": job_id,
            "work_id": job_id,
            "state": doc["state"],
            "summary": doc.get("result_summary"),
            "data": doc.get("result_data") or {},
            "error": doc.get("error") or {},
            "artifacts": doc.get("artifacts") or [],
            "completed_at": doc.get("completed_at"),
            "provenance": doc.get("provenance") or {},
        }
    }


def template_result(doc: TemplateDoc) -> Doc:
    return {"result": {"result_state": "recurring_template", "calendar": doc}}


def trace(trace_id: str, stages: list[Doc]) -> Doc:
    # As repowire names them: `ask` (an ask's, query's or answer's correlation id), `notify`
    # (a notify's delivery id); a job's and a schedule's fires are ours.
    kind = "ask"
    if trace_id.startswith("work-"):
        kind = "job"
    elif trace_id.startswith("sched-"):
        kind = "schedule"
    elif trace_id.startswith("notif-delivery-"):
        kind = "notify"
    return {"trace_id": trace_id, "kind": kind, "stages": stages}


def encode_cursor(cursor: tuple[float, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(cursor).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[float, str]:
    """Raises ValueError for a cursor this server did not issue."""
    try:
        score, job_id = json.loads(base64.urlsafe_b64decode(text.encode() + b"=="))
        return float(score), str(job_id)
    except (ValueError, TypeError):
        raise ValueError("cursor is not one this server issued") from None


def job_list(
    work_chunks: Iterable[list[str | None]],
    recurring: list[str],
    *,
    paged: bool,
    next_cursor: tuple[float, str] | None,
) -> Iterator[str]:
    """`{"work": [...], "recurring": [...], "next_cursor": ..}` streamed: the stored JSON is
    joined as is, a chunk at a time, never parsed and never held whole."""
    yield '{"work":['
    separator = ""
    for chunk in work_chunks:
        if chunk:
            yield separator + ",".join(v for v in chunk if v)
            separator = ","
    yield '],"recurring":[' + ",".join(recurring) + "]"
    if paged:
        token = encode_cursor(next_cursor) if next_cursor is not None else None
        yield ',"next_cursor":' + json.dumps(token)
    yield "}"


def _inbound_status(peer: Doc, receipts: bool) -> str:
    """repowire's inbound reachability (compute_inbound_status): offline, no_hook (no live
    socket), legacy_unverified (a socket whose hook does not say it sends receipts), online.
    Pane safety and per-peer injection times are not probed here, so `pane_unsafe` and
    `inbound_degraded` never show."""
    if peer_lookups.wire_status(peer) == PeerState.OFFLINE:
        return "offline"
    if not peer.get("ws_connected"):
        return "no_hook"
    return "online" if receipts else "legacy_unverified"


def peer(peer: Doc, now_ms: int) -> Doc:
    """A peer as repowire's PeerInfo shows it; `peer` carries `ws_connected` and its inbound
    counts (state.peers.with_inbound). A description older than its TTL reads as empty, as
    repowire clears it on read."""
    oldest = peer.get("oldest_pending_ms")
    last_seen = peer.get("last_seen")
    metadata = peer.get("metadata") or {}
    capabilities = metadata.get("capabilities")
    receipts = isinstance(capabilities, list) and "delivery_receipts" in capabilities
    described_at = int(peer.get("description_set_at") or 0)
    fresh = now_ms - described_at < peer_lookups.DESCRIPTION_TTL_S * 1000
    return {
        "peer_id": peer["peer_id"],
        "name": peer["name"],
        "display_name": peer["name"],
        "path": peer.get("path"),
        "machine": peer.get("machine"),
        "tmux_session": peer.get("tmux_session"),
        "backend": peer.get("backend") or "claude-code",
        "model": peer.get("model"),
        "circle": peer.get("circle") or "global",
        "role": peer.get("role") or "agent",
        "status": peer_lookups.wire_status(peer),
        "turn_state": peer.get("turn_state"),
        "last_seen": iso(int(last_seen)) if last_seen else None,
        "metadata": metadata,
        "description": (peer.get("description") or "") if fresh else "",
        "ws_connected": bool(peer.get("ws_connected")),
        "hook_supports_receipts": receipts,
        "last_successful_injection_at": None,
        "last_injection_failure_at": None,
        "pending_ask_count": int(peer.get("pending_ask_count") or 0),
        "oldest_pending_age_seconds": None if oldest is None else (now_ms - oldest) / 1000,
        "pane_safe": None,
        "inbound_status": _inbound_status(peer, receipts),
    }


def orchestrator_status(circle: str, found: Doc | None) -> Doc:
    """GET /circles/{name}/orchestrator (repowire's OrchestratorStatusResponse)."""
    answer: Doc = {
        "circle": circle,
        "present": found is not None,
        "peer_id": None,
        "peer_name": None,
        "last_seen": None,
        "stale_after_seconds": peer_lookups.HEARTBEAT_TOLERANCE_S,
    }
    if found is not None:
        answer.update(
            peer_id=found["peer_id"], peer_name=found["name"], last_seen=iso(found["last_seen"])
        )
    return answer
