"""Credentials: forged, expired, revoked and misused tokens are refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from settings import get_settings
from tests import harness


@pytest.fixture
def worker(api, org):
    harness.project(api, org)
    return harness.register(api, org)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def sign(claims: dict, key: str | None = None, alg: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().signing_key(), algorithm=alg)


def poll(api, wid, token):
    return api.get(f"/api/workers/{wid}/poll", token)


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def test_valid_token_polls(api, worker):
    assert poll(api, worker["workerId"], worker["runtimeToken"]).status_code == 200


def test_alg_none_refused(api, worker):
    claims = claims_of(worker["runtimeToken"])
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    resp = poll(api, worker["workerId"], token)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert resp.json() == {"error": "Unauthorized"}


def test_other_algorithm_with_the_right_secret_refused(api, worker):
    token = sign(claims_of(worker["runtimeToken"]), alg="HS512")
    assert poll(api, worker["workerId"], token).status_code == 401


def test_wrong_secret_refused(api, worker):
    token = sign(claims_of(worker["runtimeToken"]), key="not-the-secret-" * 3)
    assert poll(api, worker["workerId"], token).status_code == 401


def test_tampered_payload_refused(api, worker):
    head, _, sig = worker["runtimeToken"].split(".")
    claims = claims_of(worker["runtimeToken"]) | {"proj": ["prj_x"], "scope": ["*"]}
    assert poll(api, worker["workerId"], f"{head}.{b64(claims)}.{sig}").status_code == 401


def test_expired_refused_but_leeway_honoured(api, worker):
    now = int(time.time())
    claims = claims_of(worker["runtimeToken"])
    expired = sign(claims | {"iat": now - 7200, "exp": now - 61 - 5})
    assert poll(api, worker["workerId"], expired).status_code == 401
    within_leeway = sign(claims | {"iat": now - 3600, "exp": now - 30})
    assert poll(api, worker["workerId"], within_leeway).status_code == 200


def test_expiry_follows_the_movable_clock(api, worker):
    from state import clock

    clock.advance(3600 + 61)
    assert poll(api, worker["workerId"], worker["runtimeToken"]).status_code == 401


def test_wrong_issuer_and_missing_claims_refused(api, worker):
    claims = claims_of(worker["runtimeToken"])
    assert poll(api, worker["workerId"], sign(claims | {"iss": "evil"})).status_code == 401
    for missing in ("jti", "exp", "org", "sub"):
        token = sign({k: v for k, v in claims.items() if k != missing})
        assert poll(api, worker["workerId"], token).status_code == 401, missing


def test_wrong_org_is_404(api, worker, r):
    other = harness.new_org(r)
    token = sign(claims_of(worker["runtimeToken"]) | {"org": other.id})
    assert poll(api, worker["workerId"], token).status_code == 404


def test_revoked_jti_refused(api, worker, r):
    from state import keys

    jti = claims_of(worker["runtimeToken"])["jti"]
    r.set(keys.jwt_revoked(jti), "1", ex=60)
    assert poll(api, worker["workerId"], worker["runtimeToken"]).status_code == 401


def test_token_without_a_scope_is_403(api, worker):
    token = sign(claims_of(worker["runtimeToken"]) | {"scope": ["worker:heartbeat"]})
    assert poll(api, worker["workerId"], token).status_code == 403


def test_jwt_where_key_required_and_the_reverse(api, org, worker):
    assert api.get("/api/workers", worker["runtimeToken"]).status_code == 401
    assert api.post("/api/sessions", worker["runtimeToken"], json={}).status_code == 401
    assert api.get(f"/api/org/{org.id}/projects", worker["runtimeToken"]).status_code == 401
    assert poll(api, worker["workerId"], org.key).status_code == 401
    assert api.get("/api/daemon/sessions/x", org.key).status_code == 401


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic abc", "bearer rsk_live_" + "0" * 64, "Token x", "Bearer a.b"],
)
def test_malformed_authorization_headers(api, header):
    headers = {"Authorization": header} if header else {}
    resp = api.get("/api/workers", headers=headers)
    assert resp.status_code == 401 and resp.json() == {"error": "Unauthorized"}
