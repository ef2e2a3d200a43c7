"""Typed reads over redis-py, whose stubs answer `Awaitable[T] | T` for every command (the same
client class serves sync and async). Every client here is synchronous with
`decode_responses=True`, so each helper narrows the answer once (a `cast` here) instead of at
every call site.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

import redis

Redis = redis.Redis
Pipeline = redis.client.Pipeline
T = TypeVar("T")


def hgetall(r: Redis | Pipeline, key: str) -> dict[str, str]:
    """A hash as a dict (empty when the key does not exist)."""
    return cast(dict[str, str], r.hgetall(key))


def hgetall_many(r: Redis, keys: list[str]) -> list[dict[str, str]]:
    """Many hashes in one round trip, in the order of `keys` (empty dicts for missing ones)."""
    if not keys:
        return []
    pipe = r.pipeline(transaction=False)
    for key in keys:
        pipe.hgetall(key)
    return cast(list[dict[str, str]], pipe.execute())


def hget(r: Redis | Pipeline, key: str, field: str) -> str | None:
    return cast(str | None, r.hget(key, field))


def hmget(r: Redis, key: str, fields: list[str]) -> list[str | None]:
    if not fields:
        return []
    return cast(list[str | None], r.hmget(key, fields))


def get(r: Redis | Pipeline, key: str) -> str | None:
    return cast(str | None, r.get(key))


def smembers(r: Redis | Pipeline, key: str) -> set[str]:
    return cast(set[str], r.smembers(key))


def zrange(r: Redis, key: str, start: int = 0, end: int = -1) -> list[str]:
    return cast(list[str], r.zrange(key, start, end))


def zrangebyscore(
    r: Redis, key: str, low: float | str, high: float | str, limit: int | None = None
) -> list[str]:
    """Members scored in [low, high], lowest first, at most `limit` of them."""
    if limit is None:
        return cast(list[str], r.zrangebyscore(key, low, high))
    return cast(list[str], r.zrangebyscore(key, low, high, 0, limit))


def zrangebyscore_scored(
    r: Redis, key: str, low: float | str, high: float | str, limit: int
) -> list[tuple[str, float]]:
    return cast(list[tuple[str, float]], r.zrangebyscore(key, low, high, 0, limit, withscores=True))


def zrevrange_scored(r: Redis, key: str, start: int, end: int) -> list[tuple[str, float]]:
    return cast(list[tuple[str, float]], r.zrevrange(key, start, end, withscores=True))


def zscore(r: Redis, key: str, member: str) -> float | None:
    score: float | None = r.zscore(key, member)
    return score


def hset_fields(pipe: Redis | Pipeline, key: str, fields: Mapping[str, str | int]) -> None:
    """HSET several fields (redis-py's stubs want the mapping's keys as a wide union)."""
    pipe.hset(key, mapping=cast(Any, fields))


def watch(pipe: Pipeline, *keys: str) -> None:
    """WATCH more keys from inside a transaction function (redis-py leaves it untyped)."""
    # redis-py leaves Pipeline.watch unannotated: it returns nothing we use.
    watch_keys = cast(Callable[..., object], pipe.watch)
    watch_keys(*keys)


def transaction(r: Redis, func: Callable[[Pipeline], T], *watch: str) -> T:
    """`r.transaction(func, *watch)` returning what `func` returned (retried on a WATCH
    conflict)."""
    # redis-py types `func` as returning None, though value_from_callable hands back its value.
    run = cast(Callable[[Pipeline], None], func)
    return cast(T, r.transaction(run, *watch, value_from_callable=True))
