"""Bad input: a clear 4xx with the envelope, nothing written, never a 5xx."""

from __future__ import annotations

import itertools

import pytest

from tests.support import records
from tests.support.writes import created, state_keys

BAD_BODIES = [
    b"{",
    b"not json",
    b"[]",
    b"[1, 2]",
    b"null",
    b"42",
    b'"string"',
    b'{"a": ' * 2000 + b"1" + b"}" * 2000,  # deep nesting
    b"\xff\xfe\xfd",
    b'{"hostname": "\\ud800", "capacity": 1e400}',
    b'{"hostname": "\\ud800", "capacity": 1}',
    b'{"x": NaN}',
]
# Objects whose fields are wrong for every route that reads fields.
BAD_FIELDS = [
    b'{"capacity": 1e308, "hostname": null}',
    b'{"workerId": {"$gt": ""}}',
    b'{"status": ["running"], "workerId": 1}',
]


@pytest.fixture
def world(api, org):
    records.project(api, org)
    w = records.register(api, org)
    sid = records.enqueue(api, org)["sessionId"]
    return org, w, sid


def routes(org, w, sid):
    wid = w["workerId"]
    tok = w["runtimeToken"]
    return [
        ("POST", f"/api/org/{org.id}/projects", org.key),
        ("POST", f"/api/org/{org.id}/keys", org.key),
        ("POST", "/api/workers/register", org.key),
        ("POST", f"/api/workers/{wid}/refresh-token", org.key),
        ("POST", "/api/sessions", org.key),
        ("POST", f"/api/sessions/{sid}/claim", tok),
        ("POST", f"/api/sessions/{sid}/status", tok),
        ("POST", f"/api/sessions/{sid}/activity", tok),
        ("POST", f"/api/sessions/{sid}/nack", tok),
    ]


def test_malformed_bodies_get_a_4xx_envelope_and_write_nothing(api, world, r):
    org, w, sid = world
    cases = itertools.product(routes(org, w, sid), BAD_BODIES + BAD_FIELDS)
    for (method, path, token), body in cases:
        if path.endswith("refresh-token") and body in BAD_FIELDS:
            continue  # it reads no fields, so a well-formed object is fine there
        before = state_keys(r)
        resp = api.request(
            method, path, token, data=body, headers={"Content-Type": "application/json"}
        )
        assert 400 <= resp.status_code < 500, (path, body[:40], resp.status_code, resp.text)
        assert "error" in resp.json(), (path, body[:40])
        assert not created(r, before), (path, body[:40])


def test_oversized_body_is_413(api, org):
    resp = api.post(
        "/api/sessions",
        org.key,
        data=b'{"prompt": "' + b"x" * (2 * 1024 * 1024) + b'"}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 413
    assert resp.json() == {"error": "Request body too large"}


@pytest.mark.parametrize(
    "path",
    [
        "/api/workers/..%2F..%2Fetc/poll",
        "/api/workers/wkr_zzzz/poll",
        "/api/workers/" + "a" * 5000 + "/poll",
        "/api/sessions/%00/status",
        "/api/daemon/sessions/" + "x" * 3000,
        "/api/daemon/sessions/%E2%80%AE",
        "/api/org/%20/projects",
        "/api/nope",
    ],
)
def test_odd_paths(api, world, path):
    org, w, _ = world
    for token in (org.key, w["runtimeToken"]):
        for method in ("GET", "POST", "DELETE"):
            resp = api.request(method, path, token, json={"workerId": w["workerId"]})
            assert 400 <= resp.status_code < 500, (method, path, resp.status_code)
            assert "error" in resp.json()


def test_unknown_route_and_method(api, org):
    assert api.get("/api/nowhere", org.key).json() == {"error": "Not found"}
    resp = api.request("PUT", "/api/sessions", org.key)
    assert resp.status_code == 405 and resp.json() == {"error": "Method not allowed"}


def test_wrong_types_everywhere(api, world):
    org, w, sid = world
    wid = w["workerId"]
    tok = w["runtimeToken"]
    cases = [
        ("/api/workers/register", org.key, {"hostname": ["a"], "capacity": 1}),
        ("/api/workers/register", org.key, {"hostname": "a", "capacity": True}),
        ("/api/workers/register", org.key, {"hostname": "a", "capacity": 1.5}),
        ("/api/workers/register", org.key, {"hostname": "a", "capacity": 10**30}),
        (
            "/api/sessions",
            org.key,
            {"issueId": 1, "issueIdentifier": "x", "project": "app", "prompt": "p"},
        ),
        (
            f"/api/sessions/{sid}/status",
            tok,
            {"workerId": wid, "status": "running", "totalCostUsd": "free"},
        ),
        (
            f"/api/sessions/{sid}/status",
            tok,
            {"workerId": wid, "status": "running", "inputTokens": -1},
        ),
        (
            f"/api/sessions/{sid}/status",
            tok,
            {"workerId": wid, "status": "running", "error": "boom"},
        ),
        (f"/api/sessions/{sid}/activity", tok, {"workerId": wid, "toolName": ""}),
    ]
    for path, token, body in cases:
        resp = api.post(path, token, json=body)
        assert resp.status_code == 400, (path, body, resp.text)
        assert isinstance(resp.json()["error"], str)
