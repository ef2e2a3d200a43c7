"""Runtime JWTs for registered workers: minted here with the `kid` of the current key, verified
with `alg` pinned by the key their `kid` names.

The keys: the current one (`JWT_SECRET`, or `JWT_PUBLIC_KEY` for RS256/ES256) signs and
verifies; `JWT_VERIFY_SECRETS` (`JWT_VERIFY_PUBLIC_KEYS`) only verify: the previous key during a
rotation, or the next one before it becomes current. A key's `kid` is derived from the key (a
hash), so no key needs a name and every shim derives the same `kid` from the same key. A token
without a `kid` (minted before kids) is tried against every key, the current one first; a `kid`
no configured key has is refused. docs/operations.md says how to rotate.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization

from dispatchyard.settings import Settings
from dispatchyard.state import clock
from dispatchyard.state.models import RUNTIME_SCOPES

# A kid is a hash of this prefix and the key: it says which key, and nothing usable about it
# (a signed token already lets anyone test guesses of an HMAC secret offline).
KID_PREFIX = b"dispatchyard-jwt-kid\0"

# (kid, verifying key) pairs, the current key first.
Keyring = tuple[tuple[str, str], ...]


class UnknownKid(jwt.InvalidTokenError):
    """The token names a key no setting holds (dropped after a rotation, or never ours)."""


def kid_of(algorithm: str, key: str) -> str:
    """The `kid` of a verifying key: of an HMAC secret, or of a PEM public key (its DER
    SubjectPublicKeyInfo, so the same key written as another PEM has the same kid)."""
    if algorithm.startswith("HS"):
        material = key.encode()
    else:
        public = serialization.load_pem_public_key(key.encode())
        material = public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return hashlib.sha256(KID_PREFIX + material).hexdigest()[:16]


def keyring(settings: Settings) -> Keyring:
    """Every key that verifies runtime tokens, by kid, the current (signing) one first. Raises
    ValueError when the current key is missing or a public key is not a PEM one."""
    if settings.jwt_algorithm.startswith("HS"):
        others = tuple(s.get_secret_value() for s in settings.jwt_verify_secrets)
    else:
        others = tuple(settings.jwt_verify_public_keys)
    return _keyring(settings.jwt_algorithm, settings.verifying_key(), others)


@functools.lru_cache(maxsize=8)
def _keyring(algorithm: str, current: str, others: tuple[str, ...]) -> Keyring:
    ring: dict[str, str] = {}
    for key in (current, *others):
        ring.setdefault(kid_of(algorithm, key), key)
    return tuple(ring.items())


def mint(settings: Settings, worker: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A signed token for the worker, with the current key's `kid`, and its claims."""
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
    kid = keyring(settings)[0][0]
    token = jwt.encode(
        claims, settings.signing_key(), algorithm=settings.jwt_algorithm, headers={"kid": kid}
    )
    return token, claims


def verify(settings: Settings, token: str) -> dict[str, Any]:
    """Claims of a valid token; raises jwt.InvalidTokenError otherwise (an unknown `kid`
    included)."""
    claims = _claims(settings, token)
    now, leeway = clock.now(), settings.jwt_leeway_seconds
    if not isinstance(claims["exp"], int | float) or claims["exp"] + leeway < now:
        raise jwt.ExpiredSignatureError("expired")
    if not isinstance(claims["iat"], int | float) or claims["iat"] - leeway > now:
        raise jwt.ImmatureSignatureError("issued in the future")
    if not isinstance(claims["sub"], str) or not isinstance(claims["org"], str):
        raise jwt.InvalidTokenError("bad claims")
    return dict(claims)


def _claims(settings: Settings, token: str) -> dict[str, Any]:
    """The signed claims, checked with the key the token's `kid` names, or, for a token without
    one, with each key in turn (a signature no key makes is refused)."""
    kid = jwt.get_unverified_header(token).get("kid")
    ring = keyring(settings)
    if kid is not None:
        keys = [key for known, key in ring if known == kid]
        if not keys:
            raise UnknownKid(f"unknown kid {kid!r}")
    else:
        keys = [key for _, key in ring]
    algorithm, issuer = settings.jwt_algorithm, settings.jwt_issuer
    for key in keys[:-1]:
        try:
            return _signed_claims(token, key, algorithm, issuer)
        except jwt.InvalidSignatureError:
            continue
    return _signed_claims(token, keys[-1], algorithm, issuer)


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
