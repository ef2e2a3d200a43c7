"""The Redis client tasks use for state (one pool per worker process)."""

from __future__ import annotations

import functools

import redis

from dispatchyard.settings import get_settings
from dispatchyard.settings import redis_client as _client


@functools.cache
def redis_client() -> redis.Redis:
    return _client(get_settings())
