"""Runtime JWTs for registered workers: minted here, verified with `alg` pinned."""

from __future__ import annotations

import functools
import secrets
from typing import Any

import jwt

from dispatchyard.settings import Settings
from dispatchyard.state import clock
from dispatchyard.state.models import RUNTIME_SCOPES


def mint(settings: Settings, worker: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A signed token for the worker, and its claims."""
    now = clock.now_ms() // 1000
    claims = {
        "jti": secrets.token_hex(16),
        "iss": settings.jwt_issuer,
        "sub": worker["id"],
        "org": worker["orgId"],
        "proj": worker["projects_list"],
        "reg": worker["regKeyId"],
        "scope": list(RUNTIME_SCOPES),
        "iat": now,
        "exp": now + settings.jwt_ttl_seconds,
    }
    token = jwt.encode(claims, settings.signing_key(), algorithm=settings.jwt_algorithm)
    return token, claims


def verify(settings: Settings, token: str) -> dict[str, Any]:
    """Claims of a valid token; raises jwt.InvalidTokenError otherwise."""
    claims = _signed_claims(
        token, settings.verifying_key(), settings.jwt_algorithm, settings.jwt_issuer
    )
    now, leeway = clock.now(), settings.jwt_leeway_seconds
    if not isinstance(claims["exp"], int | float) or claims["exp"] + leeway < now:
        raise jwt.ExpiredSignatureError("expired")
    if not isinstance(claims["iat"], int | float) or claims["iat"] - leeway > now:
        raise jwt.ImmatureSignatureError("issued in the future")
    if not isinstance(claims["sub"], str) or not isinstance(claims["org"], str):
        raise jwt.InvalidTokenError("bad claims")
    return dict(claims)


@functools.lru_cache(maxsize=16384)
def _signed_claims(token: str, key: str, algorithm: str, issuer: str) -> dict[str, Any]:
    """Signature and issuer checks, cached per exact token string: a token that verified once
    verifies again, and workers send the same token on every heartbeat and poll. Times and
    revocation are checked on every request, outside this cache."""
    return jwt.decode(
        token,
        key,
        algorithms=[algorithm],  # pinned: never trust the token's own `alg`
        issuer=issuer,
        options={
            "require": ["exp", "iat", "iss", "sub", "jti", "org"],
            # Times are checked by verify() against dispatchyard's clock, which tests can move.
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        },
    )
