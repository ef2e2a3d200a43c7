"""Session health: a pure function of a session record, its worker's record and a clock.

Signals (platform.md §3) and their levels; the session's level is the worst of its signals.
"""

from __future__ import annotations

from dataclasses import dataclass

from state.models import SESSION_ACTIVE

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


def _ms(record: dict, name: str) -> int | None:
    value = record.get(name)
    return int(value) if value not in (None, "") else None


def assess(session: dict, worker: dict | None, now_ms: int, t: Thresholds) -> dict:
    """`{"level": green|yellow|red, "signals": [names]}` for one session."""
    signals: list[str] = []
    status = session.get("status")
    if status in SESSION_ACTIVE:
        started, claimed = _ms(session, "startedAt"), _ms(session, "claimedAt")
        if status == "running" and started is not None and now_ms - started > t.long_running_ms:
            signals.append("LongRunning")
        if status == "claimed" and claimed is not None and now_ms - claimed > t.claim_stuck_ms:
            signals.append("ClaimStuck")
        since = _ms(session, "toolSince")
        if status == "running" and since is not None and now_ms - since > t.tool_loop_ms:
            signals.append("ToolLoopStuck")
        last = _ms(worker, "lastHeartbeat") if worker else None
        offline = (
            worker is None
            or worker.get("status") in ("offline", "deregistered")
            or last is None
            or now_ms - last > t.worker_offline_ms
        )
        if offline:
            signals.append("WorkerOffline")
        elif last is not None and now_ms - last > t.stale_heartbeat_ms:
            signals.append("StaleHeartbeat")
    level = max((SIGNAL_LEVEL[s] for s in signals), key=LEVELS.index, default="green")
    return {"level": level, "signals": signals}
