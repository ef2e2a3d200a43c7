"""The executor processes each machine started, by attempt id: what a worker restarting on
that machine, or the lease sweep, must reap when their attempt no longer runs.

A fire writes its record before it spawns the process (pid 0 until the spawn), so no executor
runs without one; the lease sweep writes one for an attempt it ends if none is there. A record
leaves only when its attempt's processes are known to be gone (the supervisor's end, a reap):
a record still present for an attempt that no longer runs is reap work not yet done, and the
lease sweep sends that reap again (`reap_due`), whoever held the first one.
"""

from __future__ import annotations

import json
from typing import NotRequired, TypedDict

from dispatchyard.state import keys, store
from dispatchyard.state.store import Pipeline, Redis


class ExecutorRecord(TypedDict):
    """What a machine remembers of an executor it started, by attempt id."""

    job_id: str
    pid: int  # 0: written before the spawn, or by the lease sweep for a record never written
    started_ms: int
    # When a lease sweep first saw the attempt no longer running, or last sent its reap again.
    reap_ms: NotRequired[int]


def remember(r: Redis, machine: str, attempt_id: str, record: ExecutorRecord) -> None:
    r.hset(keys.executors(machine), attempt_id, json.dumps(record))


def remember_missing(r: Redis, machine: str, attempt_id: str, job_id: str, now_ms: int) -> bool:
    """Record an attempt's executor if no record of it is there (the worker may have died
    before writing one): its processes, found by the attempt id, are then reaped as any
    other's. Whether a record was written."""
    record: ExecutorRecord = {"job_id": job_id, "pid": 0, "started_ms": now_ms}
    return bool(r.hsetnx(keys.executors(machine), attempt_id, json.dumps(record)))


def forget(r: Redis, machine: str, attempt_id: str) -> None:
    r.hdel(keys.executors(machine), attempt_id)


def on_machine(r: Redis, machine: str) -> dict[str, ExecutorRecord]:
    records: dict[str, ExecutorRecord] = {
        k: json.loads(v) for k, v in store.hgetall(r, keys.executors(machine)).items()
    }
    return records


def machines(r: Redis) -> list[str]:
    """Every machine a worker node ever said was alive (liveness's index): the only machines
    that can have started executors."""
    return store.zrange(r, keys.MACHINES_ALIVE)


def reap_due(r: Redis, machine: str, attempt_id: str, now_ms: int, every_ms: int) -> bool:
    """For a record whose attempt no longer runs: whether its reap is to be sent (again) now.
    The first sighting only notes the time (the reap that ended it, or the supervisor's own
    end, is under way); after that, once every `every_ms` while the record stays. One WATCH
    on the machine's hash: a record forgotten meanwhile is not written back."""
    key = keys.executors(machine)

    def decide(pipe: Pipeline) -> bool:
        raw = store.hget(pipe, key, attempt_id)
        if raw is None:
            return False
        record: ExecutorRecord = json.loads(raw)
        seen = record.get("reap_ms")
        due = seen is not None and now_ms - seen >= every_ms
        if seen is not None and not due:
            return False
        record["reap_ms"] = now_ms
        pipe.multi()
        pipe.hset(key, attempt_id, json.dumps(record))
        return due

    return store.transaction(r, decide, key)
