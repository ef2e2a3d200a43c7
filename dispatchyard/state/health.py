"""Session health: a pure function of a session record, its host's record and a clock.

Signals (shown by `GET /api/sessions`, docs/api.md) and their levels; the session's level is the
worst of its signals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dispatchyard.state.models import SESSION_ACTIVE, HostState

LEVELS = ("green", "yellow", "red")
SIGNAL_LEVEL = {
    "LongRunning": "yellow",
    "StaleHeartbeat": "yellow",
    "ClaimStuck": "red",
    "ToolLoopStuck": "red",
    "WorkerOffline": "red",
}


@dataclass(frozen=True)
class Thresholds:
    long_running_ms: int
    stale_heartbeat_ms: int
    claim_stuck_ms: int
    tool_loop_ms: int
    worker_offline_ms: int


def _ms(record: Mapping[str, Any], name: str) -> int | None:
    value = record.get(name)
    return int(value) if value not in (None, "") else None


def assess(
    session: Mapping[str, Any], host: Mapping[str, Any] | None, now_ms: int, t: Thresholds
) -> dict[str, Any]:
    """`{"level": green|yellow|red, "signals": [names]}` for one session; `host` holds its
    host's `lastHeartbeat` and `status` (None: unknown host)."""
    signals: list[str] = []
    status = session.get("status")
    if status in SESSION_ACTIVE:
        started, claimed = _ms(session, "startedAt"), _ms(session, "claimedAt")
        if status == "running" and started is not None and now_ms - started > t.long_running_ms:
            signals.append("LongRunning")
        if status == "claimed" and claimed is not None and now_ms - claimed > t.claim_stuck_ms:
            signals.append("ClaimStuck")
        # Moved by record_activity.lua only when an event names a different tool: thoughts and
        # other tool-less events in between do not reset it.
        since = _ms(session, "toolSince")
        if status == "running" and since is not None and now_ms - since > t.tool_loop_ms:
            signals.append("ToolLoopStuck")
        last = _ms(host, "lastHeartbeat") if host else None
        offline = (
            host is None
            or host.get("status") in (HostState.OFFLINE, HostState.DEREGISTERED)
            or last is None
            or now_ms - last > t.worker_offline_ms
        )
        if offline:
            signals.append("WorkerOffline")
        elif last is not None and now_ms - last > t.stale_heartbeat_ms:
            signals.append("StaleHeartbeat")
    level = max((SIGNAL_LEVEL[s] for s in signals), key=LEVELS.index, default="green")
    return {"level": level, "signals": signals}
