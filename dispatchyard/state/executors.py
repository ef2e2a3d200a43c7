"""The executor processes each machine started, by attempt id: what a worker restarting on
that machine, or the lease sweep, must reap when their attempt no longer runs."""

from __future__ import annotations

import json
from typing import TypedDict

from dispatchyard.state import keys, store
from dispatchyard.state.store import Redis


class ExecutorRecord(TypedDict):
    """What a machine remembers of an executor it started, by attempt id."""

    job_id: str
    pid: int
    started_ms: int


def remember(r: Redis, machine: str, attempt_id: str, record: ExecutorRecord) -> None:
    r.hset(keys.executors(machine), attempt_id, json.dumps(record))


def forget(r: Redis, machine: str, attempt_id: str) -> None:
    r.hdel(keys.executors(machine), attempt_id)


def on_machine(r: Redis, machine: str) -> dict[str, ExecutorRecord]:
    records: dict[str, ExecutorRecord] = {
        k: json.loads(v) for k, v in store.hgetall(r, keys.executors(machine)).items()
    }
    return records
