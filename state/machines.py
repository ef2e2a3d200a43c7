"""Which Celery worker hosts are alive, and which executor processes each one started."""

from __future__ import annotations

import json
from typing import Any

import redis

from state import keys

ALIVE_WITHIN_MS = 15_000


def beat(r: redis.Redis, machine: str, hostname: str, now_ms: int) -> None:
    """A worker says it is alive (every few seconds, from its bootstep timer)."""
    pipe = r.pipeline(transaction=True)
    pipe.zadd(keys.MACHINES_ALIVE, {machine: now_ms})
    pipe.zadd(keys.WORKERS_ONLINE, {hostname: now_ms})
    pipe.execute()


def alive(r: redis.Redis, machine: str, now_ms: int) -> bool:
    seen = r.zscore(keys.MACHINES_ALIVE, machine)
    return seen is not None and now_ms - seen <= ALIVE_WITHIN_MS


def online_workers(r: redis.Redis, now_ms: int) -> int:
    return int(r.zcount(keys.WORKERS_ONLINE, now_ms - ALIVE_WITHIN_MS, "+inf"))


def remember_executor(r: redis.Redis, machine: str, attempt_id: str, record: dict) -> None:
    r.hset(keys.executors(machine), attempt_id, json.dumps(record))


def forget_executor(r: redis.Redis, machine: str, attempt_id: str) -> None:
    r.hdel(keys.executors(machine), attempt_id)


def executors(r: redis.Redis, machine: str) -> dict[str, dict[str, Any]]:
    raw: dict[str, str] = r.hgetall(keys.executors(machine))  # type: ignore[assignment]
    return {k: json.loads(v) for k, v in raw.items()}
