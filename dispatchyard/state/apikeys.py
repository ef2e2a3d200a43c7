"""API keys: only the SHA-256 of a secret is stored, with a 12-character display prefix."""

from __future__ import annotations

import hashlib
import json
import secrets

import redis

from dispatchyard.state import keys, store
from dispatchyard.state.orgs import new_id
from dispatchyard.state.scripts import scripts

SECRET_PREFIX = "rsk_live_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_hex(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    r: redis.Redis,
    org_id: str,
    *,
    name: str,
    role: str,
    projects: str | list[str],
    scopes: list[str],
    now_ms: int,
    created_by: str | None = None,
) -> tuple[dict[str, str | int], str]:
    """Mint a key. Returns (stored record, the secret) — the secret is never stored."""
    secret = new_secret()
    key_id = new_id("key")
    digest = hash_secret(secret)
    record: dict[str, str | int] = {
        "id": key_id,
        "orgId": org_id,
        "name": name,
        "role": role,
        "projects": json.dumps(projects),
        "scopes": json.dumps(scopes),
        "keyPrefix": secret[:12],
        "hash": digest,
        "createdAt": now_ms,
        "createdBy": created_by or "",
        "revokedAt": "",
    }
    pipe = r.pipeline(transaction=True)
    # A copy, so redis-py types it as its own mapping (whose key type is invariant).
    pipe.hset(keys.apikey(key_id), mapping={k: v for k, v in record.items()})
    pipe.set(keys.apikey_hash(digest), key_id)
    pipe.zadd(keys.org_keys(org_id), {key_id: now_ms})
    pipe.execute()
    return record, secret


def resolve(r: redis.Redis, secret: str) -> dict[str, str] | None:
    """The live (unrevoked) key record for a secret, or None."""
    flat = scripts(r).resolve_key(keys=[keys.apikey_hash(hash_secret(secret))])
    if not flat:
        return None
    record = dict(zip(flat[::2], flat[1::2], strict=True))
    return None if record.get("revokedAt") else record


def get_key(r: redis.Redis, org_id: str, key_id: str) -> dict[str, str] | None:
    record = store.hgetall(r, keys.apikey(key_id))
    return record if record and record.get("orgId") == org_id else None


def list_keys(r: redis.Redis, org_id: str) -> list[dict[str, str]]:
    ids = store.zrange(r, keys.org_keys(org_id))
    return [k for k in store.hgetall_many(r, [keys.apikey(key_id) for key_id in ids]) if k]


def revoke(r: redis.Redis, org_id: str, key_id: str, now_ms: int) -> None:
    """Revoke a key (again: nothing changes). NotFound (unknown, another org's)."""
    scripts(r).revoke_key(keys=[keys.apikey(key_id)], args=[now_ms, org_id])
