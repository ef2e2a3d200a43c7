"""The Redis client tasks use for state (one pool per worker process)."""

from __future__ import annotations

import functools

import redis

from dispatchyard.clients import redis_client as _client
from dispatchyard.settings import get_settings


@functools.cache
def redis_client() -> redis.Redis:
    return _client(get_settings())
