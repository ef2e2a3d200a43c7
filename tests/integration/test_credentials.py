"""Credentials: forged, expired, revoked and misused tokens are refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from dispatchyard.settings import get_settings
from tests.support import records


@pytest.fixture
def worker(api, org):
    records.project(api, org)
    return records.register(api, org)


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def sign(claims: dict, key: str | None = None, alg: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().signing_key(), algorithm=alg)


def poll(api, wid, token):
    return api.get(f"/api/workers/{wid}/poll", token)


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def assert_401(resp, why: object = "") -> None:
    """Refused as no credential at all: the platform envelope and the Bearer challenge."""
    assert resp.status_code == 401, (why, resp.text)
    assert resp.json() == {"error": "Unauthorized"}, why
    assert resp.headers["WWW-Authenticate"] == "Bearer", why


def test_valid_token_polls(api, worker):
    assert poll(api, worker["workerId"], worker["runtimeToken"]).status_code == 200


def test_token_carries_the_kid_of_the_current_key(worker):
    from api_shim import tokens

    header = jwt.get_unverified_header(worker["runtimeToken"])
    assert header["kid"] == tokens.kid_of("HS256", get_settings().signing_key())


def test_token_without_kid_verifies(api, worker):
    """As minted before tokens carried a kid: tried against every configured key."""
    token = sign(claims_of(worker["runtimeToken"]))
    assert "kid" not in jwt.get_unverified_header(token)
    assert poll(api, worker["workerId"], token).status_code == 200


def test_unknown_kid_refused(api, worker):
    claims = claims_of(worker["runtimeToken"])
    token = jwt.encode(
        claims, get_settings().signing_key(), algorithm="HS256", headers={"kid": "f" * 16}
    )
    assert_401(poll(api, worker["workerId"], token))


def test_alg_none_refused(api, worker):
    claims = claims_of(worker["runtimeToken"])
    token = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert_401(poll(api, worker["workerId"], token))


def test_other_algorithm_with_the_right_secret_refused(api, worker):
    token = sign(claims_of(worker["runtimeToken"]), alg="HS512")
    assert_401(poll(api, worker["workerId"], token))


def test_wrong_secret_refused(api, worker):
    token = sign(claims_of(worker["runtimeToken"]), key="not-the-secret-" * 3)
    assert_401(poll(api, worker["workerId"], token))


def test_tampered_payload_refused(api, worker):
    head, _, sig = worker["runtimeToken"].split(".")
    claims = claims_of(worker["runtimeToken"]) | {"proj": ["prj_x"], "scope": ["*"]}
    assert_401(poll(api, worker["workerId"], f"{head}.{b64(claims)}.{sig}"))


def test_expired_refused_but_leeway_honoured(api, worker):
    now = int(time.time())
    claims = claims_of(worker["runtimeToken"])
    expired = sign(claims | {"iat": now - 7200, "exp": now - 61 - 5})
    assert_401(poll(api, worker["workerId"], expired))
    within_leeway = sign(claims | {"iat": now - 3600, "exp": now - 30})
    assert poll(api, worker["workerId"], within_leeway).status_code == 200


def test_expiry_follows_the_movable_clock(api, worker):
    from dispatchyard.state import clock

    clock.advance(3600 + 61)
    assert_401(poll(api, worker["workerId"], worker["runtimeToken"]))


def test_wrong_issuer_and_missing_claims_refused(api, worker):
    claims = claims_of(worker["runtimeToken"])
    assert_401(poll(api, worker["workerId"], sign(claims | {"iss": "evil"})))
    for missing in ("jti", "exp", "org", "sub"):
        token = sign({k: v for k, v in claims.items() if k != missing})
        assert_401(poll(api, worker["workerId"], token), missing)


def test_wrong_org_is_404(api, worker, r):
    other = records.new_org(r)
    token = sign(claims_of(worker["runtimeToken"]) | {"org": other.id})
    resp = poll(api, worker["workerId"], token)
    assert resp.status_code == 404 and resp.json() == {"error": "Worker not found"}


def test_revoked_jti_refused(api, worker, r):
    from dispatchyard.state import keys

    jti = claims_of(worker["runtimeToken"])["jti"]
    r.set(keys.jwt_revoked(jti), "1", ex=60)
    assert_401(poll(api, worker["workerId"], worker["runtimeToken"]))


def test_token_without_a_scope_is_403(api, worker):
    token = sign(claims_of(worker["runtimeToken"]) | {"scope": ["worker:heartbeat"]})
    resp = poll(api, worker["workerId"], token)
    assert resp.status_code == 403 and resp.json() == {"error": "Token lacks scope worker:poll"}


def test_jwt_where_key_required_and_the_reverse(api, org, worker):
    assert_401(api.get("/api/workers", worker["runtimeToken"]))
    assert_401(api.post("/api/sessions", worker["runtimeToken"], json={}))
    assert_401(api.get(f"/api/org/{org.id}/projects", worker["runtimeToken"]))
    assert_401(api.post(f"/api/workers/{worker['workerId']}/refresh-token", worker["runtimeToken"]))
    assert_401(poll(api, worker["workerId"], org.key))
    assert_401(api.get("/api/daemon/sessions/x", org.key))


@pytest.mark.parametrize(
    "header",
    ["", "Bearer", "Bearer ", "Basic abc", "bearer rsk_live_" + "0" * 64, "Token x", "Bearer a.b"],
)
def test_malformed_authorization_headers(api, header):
    headers = {"Authorization": header} if header else {}
    assert_401(api.get("/api/workers", headers=headers))
