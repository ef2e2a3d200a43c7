"""Runtime JWTs for registered workers: minted here, verified with `alg` pinned."""

from __future__ import annotations

import secrets

import jwt

from settings import Settings
from state import clock
from state.models import RUNTIME_SCOPES


def mint(settings: Settings, worker: dict) -> tuple[str, dict]:
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


def verify(settings: Settings, token: str) -> dict:
    """Claims of a valid token; raises jwt.InvalidTokenError otherwise."""
    claims = jwt.decode(
        token,
        settings.verifying_key(),
        algorithms=[settings.jwt_algorithm],  # pinned: never trust the token's own `alg`
        issuer=settings.jwt_issuer,
        options={
            "require": ["exp", "iat", "iss", "sub", "jti", "org"],
            # Times are checked below against dispatchyard's clock, which tests can move.
            "verify_exp": False,
            "verify_iat": False,
            "verify_nbf": False,
        },
    )
    now, leeway = clock.now(), settings.jwt_leeway_seconds
    if not isinstance(claims["exp"], int | float) or claims["exp"] + leeway < now:
        raise jwt.ExpiredSignatureError("expired")
    if not isinstance(claims["iat"], int | float) or claims["iat"] - leeway > now:
        raise jwt.ImmatureSignatureError("issued in the future")
    if not isinstance(claims["sub"], str) or not isinstance(claims["org"], str):
        raise jwt.InvalidTokenError("bad claims")
    return claims
