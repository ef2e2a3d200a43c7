"""Delivery traces (`GET /traces/{id}`): the stages a job, an ask or a fire went through, each a
JSON entry in a list kept 24 h after its last stage."""

from __future__ import annotations

import json
from typing import Any, cast

from state import keys
from state.documents import dumps
from state.store import Pipeline, Redis

TTL_S = 24 * 3600


def append(pipe: Pipeline | Redis, trace_id: str, entry: dict[str, Any]) -> None:
    """Add a stage, in the caller's MULTI when given one."""
    pipe.rpush(keys.trace(trace_id), dumps(entry))
    pipe.expire(keys.trace(trace_id), TTL_S)


def read(r: Redis, trace_id: str) -> list[dict[str, Any]]:
    """The stages in order, numbered from 1 (`seq`); empty for an unknown or expired trace."""
    stages = cast(list[str], r.lrange(keys.trace(trace_id), 0, -1))
    return [{"seq": i + 1, **json.loads(s)} for i, s in enumerate(stages)]
