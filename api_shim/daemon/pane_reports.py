"""What the pane routes read: the orphan panes of the tmux server, and a peer's doctor report
(its record against its pane, its agent process, its hook and its pending asks)."""

from __future__ import annotations

from typing import Any

import redis

from api_shim.daemon import hook_processes as hooks
from api_shim.daemon import pane_names
from api_shim.daemon.peers import agent_alive
from dispatchyard import tmux
from dispatchyard.settings import Settings
from dispatchyard.state import asks, clock, panes, peer_lookups
from dispatchyard.state.clock import iso
from dispatchyard.state.models import PeerState

STALE_PENDING_S = 1800.0  # repowire's STALE_PENDING_THRESHOLD_SECONDS


def orphans(r: redis.Redis, s: Settings) -> list[dict[str, Any]]:
    """The panes of the tmux server no live peer holds, each with a backend hint."""
    found = tmux.list_panes(s.tmux_socket) or []  # no tmux server: no orphans, not an error
    held = panes.bound(r, [p["pane_id"] for p in found])
    listed = []
    for pane in found:
        if pane["pane_id"] in held:
            continue
        backend, confidence = pane_names.detect_backend(pane["command"])
        listed.append({**pane, "detected_backend": backend, "confidence": confidence})
    return listed


def _pid(value: Any) -> int | None:
    try:
        pid = int(value)
    except (TypeError, ValueError):
        return None
    return pid if pid > 0 else None


def doctor(r: redis.Redis, s: Settings, peer: dict[str, Any]) -> dict[str, Any]:
    """The doctor report of `peer` (repowire's shape); the local probes (pane, agent pid, hook
    metadata) are made only for a peer on this host."""
    peer_id = peer["peer_id"]
    now = clock.now_ms()
    local = pane_names.is_local(s, peer)
    recorded = panes.recorded_status(r, peer_id)
    ws_connected = bool(peer.get("ws_connected"))
    agent_pid = _pid(peer.get("agent_pid"))
    pane_id = peer.get("pane_id")
    pane_exists: bool | None = None
    evidence = None
    meta: dict[str, Any] = {}
    if local and pane_id:
        pane, conclusive = tmux.find_pane(s.tmux_socket, pane_id)
        pane_exists = (pane is not None) if conclusive else None
        if pane is not None:
            evidence = {
                "tmux_session": f"{pane['session']}:{pane['window']}",
                "current_path": pane["cwd"],
                "pane_pid": str(pane["pid"]),
            }
        meta = hooks.meta(s, pane_id)
    pid_alive = agent_alive(agent_pid) if local and agent_pid is not None else None
    count, oldest_ms = asks.inbound_count_and_oldest(r, peer_id)
    age = None if oldest_ms is None else max(0.0, (now - oldest_ms) / 1000)
    status = peer_lookups.wire_status({"status": recorded or PeerState.OFFLINE})
    found = []
    if local and panes.claims_connected(recorded) and not ws_connected:
        detail = f"peer is {status} but has no live WebSocket connection"
        found.append({"code": "ONLINE_BUT_NO_WS", "severity": "error", "detail": detail})
    if local and pane_id and pane_exists is False:
        detail = f"registry pane {pane_id} is not present in tmux"
        found.append({"code": "PANE_MISSING", "severity": "error", "detail": detail})
    if local and agent_pid is not None and pid_alive is False:
        detail = f"agent pid {agent_pid} is not a live process"
        found.append({"code": "AGENT_PID_DEAD", "severity": "error", "detail": detail})
    meta_peer = meta.get("peer_id") if isinstance(meta.get("peer_id"), str) else None
    oldest_cid = panes.oldest_inbound(r, peer_id) if count else None
    if age is not None and age > STALE_PENDING_S:
        detail = f"oldest pending inbound ask {oldest_cid} has been open ~{int(age // 60)}m"
        found.append({"code": "STALE_PENDING_ASK", "severity": "warning", "detail": detail})
    last_seen = peer.get("last_seen")
    name = meta.get("display_name")
    return {
        "peer_id": peer_id,
        "display_name": peer["name"],
        "status": status,
        "turn_state": peer.get("turn_state"),
        "last_seen": iso(int(last_seen)) if last_seen else None,
        "machine": peer.get("machine"),
        "backend": peer.get("backend") or "claude-code",
        "circle": peer.get("circle") or "global",
        "role": peer.get("role") or "agent",
        "pane_id": pane_id,
        "is_local_machine": local,
        "ws_connected": ws_connected,
        # The socket registers the pane it serves on the peer: while connected, it is this.
        "ws_pane_id": pane_id if ws_connected else None,
        "tmux_pane_exists": pane_exists,
        "tmux_evidence": evidence,
        "hook_meta_available": bool(meta),
        "hook_meta_peer_id": meta_peer,
        "hook_meta_display_name": name if isinstance(name, str) else None,
        "agent_pid": agent_pid,
        "agent_pid_alive": pid_alive,
        "pending_inbound_count": count,
        "oldest_pending_age_seconds": age,
        "oldest_pending_cid": oldest_cid,
        "contradictions": found,
    }
