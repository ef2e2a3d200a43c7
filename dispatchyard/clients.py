"""The Redis clients every process builds from the settings: one URL names a single server or a
Sentinel-watched master (`sentinel://`), for the state client, Celery's broker and RedBeat alike.

redis is imported where a client is built, so commands that never connect start quickly.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from dispatchyard.redis_urls import SentinelUrl, sentinel_url
from dispatchyard.settings import Settings

if TYPE_CHECKING:
    import redis
    from redis.sentinel import SentinelConnectionPool


def _sentinel_kwargs(target: SentinelUrl) -> dict[str, Any]:
    """How the clients talk to the sentinels themselves: a dead sentinel is skipped quickly."""
    kwargs: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    if target.sentinel_password:
        kwargs["password"] = target.sentinel_password
    return kwargs


def redis_client(
    settings: Settings, max_connections: int | None = None, **overrides: Any
) -> redis.Redis:
    """A pooled client with short timeouts, so an outage is noticed quickly. With
    `max_connections`, callers beyond it wait for a free connection instead of failing.

    With a `sentinel://` URL every connection (pub/sub included) asks the sentinels where the
    master is when it connects, so after a failover the next command reaches the new one; a
    command during the failover fails like an outage does (ConnectionError)."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    opts = {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": settings.redis_socket_timeout_s,
        "health_check_interval": 30,
        # Two quick retries ride out a blip; an outage answers 503 in well under a second.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        **overrides,
    }
    target = sentinel_url(settings.redis_url)
    if target is not None:
        return _sentinel_client(target, max_connections, opts)
    if max_connections is None:
        return redis.Redis.from_url(settings.redis_url, **opts)
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=max_connections, timeout=5, **opts
    )
    return redis.Redis(connection_pool=pool)


def _sentinel_client(
    target: SentinelUrl, max_connections: int | None, opts: dict[str, Any]
) -> redis.Redis:
    from redis.sentinel import Sentinel

    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=_sentinel_kwargs(target))
    if max_connections is None:
        # redis-py leaves master_for's answer unannotated: it is a Redis of `redis_class`.
        client: redis.Redis = sentinel.master_for(
            target.master,
            db=target.db,
            username=target.username,
            password=target.password,
            **opts,
        )
        return client
    client = sentinel.master_for(
        target.master,
        connection_pool_class=_blocking_sentinel_pool(),
        db=target.db,
        max_connections=max_connections,
        timeout=5,
        username=target.username,
        password=target.password,
        **opts,
    )
    return client


@functools.cache
def _blocking_sentinel_pool() -> type[SentinelConnectionPool]:
    from redis import BlockingConnectionPool
    from redis.sentinel import SentinelConnectionPool

    class SentinelBlockingConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
        """Sentinel's master lookup on connect, BlockingConnectionPool's bounded waiting."""

    return SentinelBlockingConnectionPool


def celery_broker(redis_url: str) -> tuple[str, dict[str, Any]]:
    """Celery's `broker_url` for the setting, and the transport options it needs beside the
    caller's own: kombu's Sentinel form is `sentinel://h1:p1/db;sentinel://h2:p2/db` with the
    master's name as the `master_name` transport option."""
    target = sentinel_url(redis_url)
    if target is None:
        return redis_url, {}
    auth = ""
    if target.username or target.password:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password or '', safe='')}@"
    urls = [
        f"sentinel://{auth if i == 0 else ''}{_netloc(host, port)}/{target.db}"
        for i, (host, port) in enumerate(target.sentinels)
    ]
    return ";".join(urls), {
        "master_name": target.master,
        "sentinel_kwargs": _sentinel_kwargs(target),
    }


def redbeat_config(redis_url: str) -> dict[str, Any]:
    """RedBeat's settings for the setting: a single server by URL, or RedBeat's own Sentinel
    form (`redis-sentinel://` and the sentinels, master name and db as options)."""
    target = sentinel_url(redis_url)
    if target is None:
        return {"redbeat_redis_url": redis_url}
    host, port = target.sentinels[0]
    options: dict[str, Any] = {
        "sentinels": list(target.sentinels),
        "service_name": target.master,
        "db": target.db,
        "socket_timeout": 10,
        "sentinel_kwargs": _sentinel_kwargs(target),
    }
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    return {
        "redbeat_redis_url": f"redis-sentinel://{_netloc(host, port)}/{target.db}",
        "redbeat_redis_options": options,
    }


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
