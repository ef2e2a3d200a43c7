"""Short single-flight locks with an owner token: taken with SET NX PX, released only by the
holder that took them (a holder whose lock expired while it worked leaves the next holder's
lock alone)."""

from __future__ import annotations

import secrets

from dispatchyard.state.scripts import scripts
from dispatchyard.state.store import Redis


def acquire(r: Redis, key: str, ttl_ms: int) -> str | None:
    """Take the lock for `ttl_ms`; its token, or None when someone else holds it."""
    token = secrets.token_hex(8)
    return token if r.set(key, token, nx=True, px=ttl_ms) else None


def release(r: Redis, key: str, token: str) -> bool:
    """Release the lock if `token` still holds it; False when it had expired and was taken."""
    return int(scripts(r).release_lock(keys=[key], args=[token])) == 1
