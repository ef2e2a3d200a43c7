"""Who is calling: API keys, runtime JWTs, the legacy worker key, the per-session runner token,
the daemon bearer token.

A JWT is told from an opaque key by its shape (exactly two dots). Missing or bad credentials
are 401 with `WWW-Authenticate: Bearer`; the right credential with the wrong role or scope is
403; another org's resource is 404 (decided by the routes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field

import jwt
from flask import g, request

from api_shim import budgets, tokens
from api_shim.context import ctx, r, settings
from api_shim.errors import ApiError
from dispatchyard.state import apikeys, hosts, keys, orgs, sessions
from dispatchyard.state.models import ROLE_RANK, RUNTIME_SCOPES

# The per-session runner token minted at enqueue (`authToken` of the queued payload).
RUNNER_TOKEN = re.compile(r"^rst_[0-9a-f]{64}$")


@dataclass
class Credential:
    kind: str  # "api_key" | "jwt" | "legacy" | "runner"
    org_id: str
    role: str | None = None
    scopes: list[str] = field(default_factory=list)
    projects: str | list[str] = "all"
    key_id: str | None = None
    worker_id: str | None = None  # a JWT's `sub`
    jti: str | None = None
    # Set when the route checks revocation inside its own script (one round trip fewer).
    revocation_deferred: bool = False
    # A runner token's session, and the host holding that session when it was checked ('' when
    # none does): the token acts for that host on that session only.
    session_id: str | None = None
    session_holder: str = ""

    def revoked_key(self) -> str:
        """The revocation key a deferring route hands its script ('' when nothing to check)."""
        return keys.jwt_revoked(self.jti) if self.revocation_deferred and self.jti else ""

    def has_scope(self, scope: str) -> bool:
        return "*" in self.scopes or scope in self.scopes

    def at_least(self, role: str) -> bool:
        return self.role is not None and ROLE_RANK[self.role] >= ROLE_RANK[role]

    def may_use_project(self, project_id: str) -> bool:
        return self.projects == "all" or project_id in self.projects


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", headers={"WWW-Authenticate": "Bearer"})


def forbidden(message: str = "Forbidden") -> ApiError:
    return ApiError(403, message)


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized()
    return token.strip()


def _legacy(token: str) -> Credential | None:
    configured = settings().worker_api_key
    if configured is None:
        return None
    if not hmac.compare_digest(token.encode(), configured.get_secret_value().encode()):
        return None
    org_id = _default_org_id()
    if org_id is None:
        return None  # the legacy path needs DISPATCHYARD_DEFAULT_ORG to name a real org
    return Credential(
        kind="legacy",
        org_id=org_id,
        scopes=["worker:register", *RUNTIME_SCOPES],
        key_id="legacy",
    )


def _default_org_id() -> str | None:
    name = settings().default_org
    if not name:
        return None
    cache = ctx().cache
    if "default_org" not in cache:
        org_id = orgs.resolve_org(r(), name)
        if org_id is None:
            return None
        cache["default_org"] = org_id
    found: str = cache["default_org"]
    return found


def _jwt(token: str, check_revoked: bool) -> Credential:
    try:
        claims = tokens.verify(settings(), token)
    except jwt.InvalidTokenError:
        raise unauthorized() from None
    if check_revoked and hosts.is_revoked(r(), claims["jti"]):
        raise unauthorized()
    scope = claims.get("scope")
    return Credential(
        kind="jwt",
        org_id=claims["org"],
        scopes=scope if isinstance(scope, list) else [],
        projects=claims.get("proj", "all"),
        key_id=claims.get("reg"),
        worker_id=claims["sub"],
        jti=claims["jti"],
        revocation_deferred=not check_revoked,
    )


def _api_key(token: str) -> Credential:
    record = apikeys.resolve(r(), token) if token.startswith(apikeys.SECRET_PREFIX) else None
    if record is None:
        raise unauthorized()
    return Credential(
        kind="api_key",
        org_id=record["orgId"],
        role=record["role"],
        scopes=json.loads(record["scopes"]),
        projects=json.loads(record["projects"]),
        key_id=record["id"],
    )


def authenticate(*accept: str, defer_revocation: bool = False) -> Credential:
    """The caller's credential if it is one of the accepted kinds; 401 otherwise.

    With `defer_revocation`, a JWT's `jti` is not checked here: the route must pass
    `cred.revoked_key()` to a script that refuses it atomically."""
    token = _bearer()
    if token.count(".") == 2:
        cred = _jwt(token, not defer_revocation) if "jwt" in accept else None
    else:
        cred = _legacy(token)
        if cred is None:
            cred = _api_key(token) if "api_key" in accept else None
        elif "legacy" not in accept:
            cred = None
    if cred is None:
        raise unauthorized()
    return _resolved(cred)


def _resolved(cred: Credential) -> Credential:
    """The caller is known: note the credential and charge the request to its budget (its
    org's, or its host's on heartbeat and poll; 429 when spent). Nothing is charged before: a
    request without a valid credential is a 401 that costs no one's budget."""
    g.credential = cred
    budgets.charge_caller(cred.org_id, cred.worker_id)
    return cred


def api_key(min_role: str = "auditor") -> Credential:
    cred = authenticate("api_key")
    if not cred.at_least(min_role):
        raise forbidden(f"Requires role {min_role} or higher")
    return cred


def _runner(token: str, session_id: str) -> Credential | None:
    """The per-session runner token, if it is the one minted for `session_id` (only its SHA-256
    is stored). A token of another session, or for an unknown one, is no credential here."""
    if not RUNNER_TOKEN.match(token):
        return None
    binding = sessions.runner_binding(r(), session_id)
    digest = hashlib.sha256(token.encode()).hexdigest()
    if binding is None or not hmac.compare_digest(digest, binding.token_hash):
        return None
    return Credential(
        kind="runner",
        org_id=binding.org_id,
        scopes=["worker:session"],
        session_id=session_id,
        session_holder=binding.worker_id,
    )


def session_worker(scope: str, session_id: str) -> Credential:
    """The routes a session's runner calls (status, activity, lock-refresh, completion): a
    runtime JWT or the legacy key, as `worker`, or that session's own runner token (the cloud
    runner's `authToken`), which is good for no other session and no other route."""
    token = _bearer()
    if token.startswith("rst_"):
        cred = _runner(token, session_id)
        if cred is None:
            raise unauthorized()
        return _resolved(cred)
    return worker(scope, None)


def worker(scope: str, worker_id: str | None, defer_revocation: bool = False) -> Credential:
    """A runtime JWT (whose `sub` must be `worker_id`) or the legacy key."""
    cred = authenticate("jwt", "legacy", defer_revocation=defer_revocation)
    if not cred.has_scope(scope):
        raise forbidden(f"Token lacks scope {scope}")
    if cred.kind == "jwt" and worker_id is not None and cred.worker_id != worker_id:
        raise forbidden("Token does not belong to this worker")
    return cred
