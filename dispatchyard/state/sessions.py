"""The session work queue: enqueue, pop-and-claim, claim, nack, status, activity.

Public layout (workers and tools outside this project read these keys): `work:items` holds a
session's payload only while it is queued; `work:queue` orders queued sessions by `priority * 1e13 +
queuedAt`; `agent:session:{id}` is the lifecycle record, kept after claim; `work:claim:{id}` is the
SET NX claim marker. We also keep per-org and per-project copies of `work:queue` so a poll only
looks at work the host may take.
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Sequence
from typing import Any, NamedTuple

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.models import SessionState
from dispatchyard.state.scripts import scripts

PRIORITY_WEIGHT = 10**13


def score(priority: int, queued_at_ms: int) -> int:
    return priority * PRIORITY_WEIGHT + queued_at_ms


def enqueue(
    r: redis.Redis,
    *,
    org_id: str,
    project_id: str,
    session_id: str,
    payload: dict[str, Any],
    record: dict[str, Any],
    now_ms: int,
) -> None:
    """Queue a session. Conflict when the id is already known."""
    s = score(int(payload["priority"]), now_ms)
    record = {
        **record,
        "id": session_id,
        "orgId": org_id,
        "projectId": project_id,
        "status": SessionState.QUEUED,
        "priority": payload["priority"],
        "score": s,
        "queuedAt": now_ms,
        "updatedAt": now_ms,
    }
    flat = [str(x) for pair in record.items() for x in pair]
    scripts(r).enqueue_session(
        keys=[
            keys.WORK_ITEMS,
            keys.WORK_QUEUE,
            keys.org_queue(org_id),
            keys.project_queue(project_id),
            keys.session(session_id),
            keys.org_sessions(org_id),
            keys.project_sessions(project_id),
        ],
        args=[session_id, json.dumps(payload), s, now_ms, *flat],
    )


def poll(
    r: redis.Redis,
    host_id: str,
    org_id: str,
    now_ms: int,
    batch_max: int,
    revoked_key: str = "",
) -> list[dict[str, Any]]:
    """Pop and claim what the host has room for, from the projects it serves, in one round
    trip. NotFound for an unknown host (or another org's); Unauthorized when `revoked_key` (the
    caller's token revocation key) exists."""
    out = scripts(r).poll(
        keys=[keys.host(host_id), keys.host_sessions(host_id)],
        args=[now_ms, batch_max, revoked_key, org_id],
    )
    return [json.loads(p) for p in out]


def claim(r: redis.Redis, host_id: str, session_id: str, now_ms: int) -> dict[str, Any]:
    """Claim a named session; its payload. NotFound for an unknown host, Forbidden when the
    host does not serve its project, Conflict when it is not available."""
    out = scripts(r).claim_session(
        keys=[keys.host(host_id), keys.session(session_id)], args=[session_id, now_ms]
    )
    payload: dict[str, Any] = json.loads(out)
    return payload


def nack(r: redis.Redis, host_id: str, session_id: str, now_ms: int) -> None:
    """Back to the queue with its original score. Forbidden when another host holds it,
    Conflict when it is not claimed."""
    scripts(r).requeue_session(keys=[keys.session(session_id)], args=[session_id, host_id, now_ms])


def set_status(
    r: redis.Redis,
    host_id: str,
    session_id: str,
    status: str,
    fields: dict[str, Any],
    now_ms: int,
) -> dict[str, str]:
    """Move the session to `status` (the table SESSION_TRANSITIONS decides); the record after
    it. NotFound, Forbidden (another host's), Conflict (an illegal move; `current` in its
    fields)."""
    out = scripts(r).set_session_status(
        keys=[keys.session(session_id), keys.host_sessions(host_id)],
        args=[
            host_id,
            status,
            now_ms,
            # As strings: Lua would print a number through its own %.14g (1e+15 tokens, a cost
            # cut to 14 digits), which the views could not read back.
            json.dumps({k: str(v) for k, v in fields.items() if v is not None}),
        ],
    )
    return dict(zip(out[::2], out[1::2], strict=True))


def record_activity(
    r: redis.Redis,
    host_id: str,
    session_id: str,
    now_ms: int,
    *,
    tool: str | None,
    activity_type: str | None = None,
) -> None:
    """One agent activity: its type (thought, action, response, ...) and the tool it names, if
    any. NotFound, Forbidden (another host's)."""
    scripts(r).record_activity(
        keys=[keys.session(session_id)], args=[host_id, tool or "", now_ms, activity_type or ""]
    )


def refresh_lock(r: redis.Redis, host_id: str, session_id: str, issue_id: str, now_ms: int) -> bool:
    """The runner's lock refresh: True while the host holds the active session (its
    `lockRefreshedAt` is stamped), False when the session moved on (terminal, requeued,
    another issue). NotFound, Forbidden (another host's)."""
    refreshed = scripts(r).refresh_session_lock(
        keys=[keys.session(session_id), keys.claim(session_id)],
        args=[session_id, host_id, issue_id, now_ms],
    )
    return bool(refreshed)


def record_completion(
    r: redis.Redis, host_id: str, session_id: str, summary: str, now_ms: int
) -> None:
    """Keep the runner's completion summary on the session. `host_id` is the host that holds
    it ('' for a session nobody holds). NotFound, Forbidden (another host's)."""
    scripts(r).record_completion(keys=[keys.session(session_id)], args=[host_id, summary, now_ms])


class RunnerBinding(NamedTuple):
    """What the per-session runner token is checked against."""

    org_id: str
    token_hash: str
    worker_id: str  # the host holding the session ('' when none does)


def runner_binding(r: redis.Redis, session_id: str) -> RunnerBinding | None:
    org_id, token_hash, worker_id = store.hmget(
        r, keys.session(session_id), ["orgId", "authTokenHash", "workerId"]
    )
    if not org_id or not token_hash:
        return None
    return RunnerBinding(org_id, token_hash, worker_id or "")


def get(r: redis.Redis, session_id: str, org_id: str | None = None) -> dict[str, str] | None:
    record = store.hgetall(r, keys.session(session_id))
    if not record or (org_id is not None and record.get("orgId") != org_id):
        return None
    return record


def queued_payload(r: redis.Redis, session_id: str) -> dict[str, Any] | None:
    """The full payload, present only while the session is queued."""
    raw = store.hget(r, keys.WORK_ITEMS, session_id)
    payload: dict[str, Any] | None = json.loads(raw) if raw else None
    return payload


def queue_length(r: redis.Redis, org_id: str) -> int:
    return int(r.zcard(keys.org_queue(org_id)))


def newest_ids(
    r: redis.Redis, org_id: str, project_ids: Sequence[str] | None, limit: int
) -> list[str]:
    """The ids of the newest `limit` sessions of the org (`project_ids` None) or of those
    projects, newest first. For projects, each project's own index is read up to `limit` in one
    round trip and the heads are merged, so the limit applies after the project filter and the
    work is bounded by `len(project_ids) * limit`, whatever else the org holds."""
    if project_ids is None:
        return [
            sid for sid, _ in store.zrevrange_scored(r, keys.org_sessions(org_id), 0, limit - 1)
        ]
    if not project_ids:
        return []
    pipe = r.pipeline(transaction=False)
    for project_id in project_ids:
        pipe.zrevrange(keys.project_sessions(project_id), 0, limit - 1, withscores=True)
    heads: list[list[tuple[str, float]]] = pipe.execute()
    # Each head is newest first; ties in one millisecond go by id, descending, as ZREVRANGE has
    # it, so one project and the merge of several order alike.
    merged = heapq.merge(*heads, key=lambda item: (item[1], item[0]), reverse=True)
    return [sid for sid, _ in itertools.islice(merged, limit)]


def list_for(
    r: redis.Redis, org_id: str, project_ids: Sequence[str] | None, limit: int
) -> tuple[list[dict[str, str]], dict[str, dict[str, str | None]]]:
    """The newest `limit` sessions of an org (`project_ids` None) or of some of its projects,
    and their hosts' liveness (`lastHeartbeat`, `status`) by host id."""
    ids = newest_ids(r, org_id, project_ids, limit)
    sessions = store.hgetall_many(r, [keys.session(session_id) for session_id in ids])
    records = [s for s in sessions if s and s.get("orgId") == org_id]
    host_ids = sorted({s["workerId"] for s in records if s.get("workerId")})
    # Two fields, not the whole record: a host's record holds its allowlist.
    pipe = r.pipeline(transaction=False)
    for host_id in host_ids:
        pipe.hmget(keys.host(host_id), "lastHeartbeat", "status")
    hosts = {
        host_id: {"lastHeartbeat": last, "status": status}
        for host_id, (last, status) in zip(host_ids, pipe.execute(), strict=True)
        if status is not None
    }
    return records, hosts
