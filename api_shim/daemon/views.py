"""How the daemon group shows stored records on the wire (repowire's shapes): the answers of
the /jobs routes and of /traces. Stored job and template documents are already wire-shaped, so
most answers wrap them; the job list is joined from stored JSON without parsing it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any

from state.clock import iso, parse_ms
from state.models import JOB_TERMINAL, PeerState

Doc = dict[str, Any]


def created_job(doc: Doc) -> Doc:
    return {"job_id": doc["job_id"], "work_id": doc["job_id"], "status": doc}


def created_template(doc: Doc) -> Doc:
    cal_id = doc["calendar_id"]
    return {"calendar_id": cal_id, "recurring_id": cal_id, "calendar": doc}


def status_json(raw_doc: str) -> str:
    """`{"status": <stored document>}` without parsing the stored JSON."""
    return '{"status":' + raw_doc + "}"


def result(doc: Doc) -> Doc:
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


def template_result(doc: Doc) -> Doc:
    return {"result": {"result_state": "recurring_template", "calendar": doc}}


def trace(trace_id: str, stages: list[Doc]) -> Doc:
    kind = "job" if trace_id.startswith("work-") else "delivery"
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


def peer(peer: Doc, inbound: list[Doc], now_ms: int) -> Doc:
    """A peer as repowire lists it, with its inbound asks counted."""
    oldest = min((a["created_at"] for a in inbound), default=None)
    age = None
    if oldest:
        age = round((now_ms - (parse_ms(oldest) or 0)) / 1000, 1)
    last_seen = peer.get("last_seen")
    return {
        "peer_id": peer["peer_id"],
        "name": peer["name"],
        "display_name": peer["name"],
        "path": peer.get("path"),
        "machine": peer.get("machine"),
        "tmux_session": peer.get("tmux_session"),
        "backend": peer.get("backend") or "claude-code",
        "circle": peer.get("circle") or "global",
        "role": peer.get("role") or "agent",
        "status": peer.get("status") or PeerState.OFFLINE,
        "turn_state": peer.get("turn_state"),
        "last_seen": iso(int(last_seen)) if last_seen else None,
        "metadata": peer.get("metadata") or {},
        "description": "",
        "ws_connected": False,
        "pending_ask_count": len(inbound),
        "oldest_pending_age_seconds": age,
        "inbound_status": "queued" if inbound else "idle",
    }
