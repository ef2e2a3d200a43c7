"""Every route the shim serves refuses missing and wrong credentials, over real HTTP.

The walk reads `app.url_map`, not a list: a route added without auth fails it. The only routes
left open are named in OPEN, each with its reason; the WebSocket takes its token in its
connect frame and is checked on its own below.
"""

from __future__ import annotations

import re
import threading
import time

import jwt
import pytest
from pydantic import SecretStr
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.settings import get_settings
from tests.support.http import Api
from tests.support.mesh_client import refused

TOKEN = "daemon-token-for-the-auth-walk"
SKIPPED_METHODS = {"HEAD", "OPTIONS"}
# Routes answered without credentials, by rule, and why.
OPEN = {
    "/health": "liveness probe for load balancers (open by design: docs/api.md)",
    "/static/<path:filename>": "Flask's static files (the dashboard's assets), no data",
    "/favicon.ico": "the dashboard's icon, as browsers ask for it without credentials; no data",
}
OPEN_PREFIXES = ("/dashboard",)  # the dashboard page, open by contract (none mounted yet)
WEBSOCKETS = {"/ws": "a GET upgrade; its token is in the connect frame (see test below)"}

# Plausible values for path variables, by name (any other name gets FALLBACK).
VALUES = {
    "worker_id": "wkr_0123456789abcdef",
    "mutation_id": "mut_" + "0" * 24,
    "session_id": "ses_" + "0" * 24,
    "org_id": "org_" + "0" * 16,
    "key_id": "key_" + "0" * 16,
    "job_id": "work-000000000000",
    "template_id": "cal-000000000000",
    "schedule_id": "sched-00000000",
    "correlation_id": "ask-000000000000",
    "parent_id": "ask-000000000000",
    "attachment_id": "att-000000000000",
    "trace_id": "work-000000000000",
    "pane_id": "pane-1",
    "ident": "some-peer",
    "name": "some-name",
}
FALLBACK = "x1"
VARIABLE = re.compile(r"<(?:([a-z]+)(?:\([^)]*\))?:)?(\w+)>")

PLATFORM_401 = {"error": "Unauthorized"}
MISSING = {"detail": "Missing authorization header"}
INVALID = {"detail": "Invalid auth token"}


def fill(rule: str) -> str:
    def value(m: re.Match) -> str:
        converter, name = m.group(1), m.group(2)
        if converter == "path":
            return "a/b.txt"
        return VALUES.get(name, FALLBACK)

    return VARIABLE.sub(value, rule)


def is_open(rule: str) -> bool:
    return rule in OPEN or rule in WEBSOCKETS or rule.startswith(OPEN_PREFIXES)


@pytest.fixture(scope="module")
def guarded():
    settings = get_settings().model_copy(update={"daemon_auth_token": SecretStr(TOKEN)})
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield app, Api(f"http://127.0.0.1:{server.server_port}")
    server.shutdown()


def forged_jwt() -> str:
    """Well formed, every claim present, signed with a key that is not the shim's."""
    now = int(time.time())
    claims = {
        "jti": "f" * 32,
        "iss": get_settings().jwt_issuer,
        "sub": VALUES["worker_id"],
        "org": VALUES["org_id"],
        "scope": ["*"],
        "iat": now,
        "exp": now + 600,
    }
    return jwt.encode(claims, "not-the-shim-signing-key-" * 2, algorithm="HS256")


def walk(app) -> list[tuple[str, str, str]]:
    """(rule, method, filled path) for every guarded route and method, in a stable order."""
    adapter = app.url_map.bind("localhost")
    out = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda x: (x.rule, sorted(x.methods))):
        if is_open(rule.rule):
            continue
        path = fill(rule.rule)
        for method in sorted(rule.methods - SKIPPED_METHODS):
            # The filled path reaches this very rule (not a sibling that happens to match).
            matched, _ = adapter.match(path, method=method, return_rule=True)
            assert matched is rule, (rule.rule, method, matched.rule)
            out.append((rule.rule, method, path))
    return out


def test_the_walk_covers_both_groups_and_names_only_real_exclusions(guarded):
    app, _ = guarded
    walked = walk(app)
    platform = [w for w in walked if w[0].startswith("/api/")]
    assert len(platform) >= 20 and len(walked) - len(platform) >= 50, len(walked)
    rules = {rule.rule for rule in app.url_map.iter_rules()}
    # Every named exclusion is a real route (a stale name would hide nothing, but would lie).
    assert set(WEBSOCKETS) <= rules
    assert "/health" in rules
    print(f"walked {len(walked)} (rule, method) pairs: {len(platform)} platform")


def test_every_route_refuses_missing_and_wrong_credentials(guarded, org):
    app, api = guarded
    # A body that is not even JSON: a route that reads its body before its credential
    # answers 400 and fails here.
    broken = {"data": b"{", "headers": {"Content-Type": "application/json"}}
    daemon_cases = [
        (None, MISSING),
        ("Bearer not-the-token", INVALID),
        (f"Basic {TOKEN}", INVALID),  # the right secret under the wrong scheme
        (f"Bearer {org.key}", INVALID),  # a live platform key is not the daemon token
    ]
    platform_cases = [
        None,
        "Bearer rsk_live_" + "0" * 64,  # an API key that does not exist
        "Bearer rst_" + "0" * 64,  # a session runner token that was never minted
        "Bearer eyJhbGciOiJIUzI1NiJ9.e30.garbage",  # a garbage JWT
        f"Bearer {forged_jwt()}",  # a well-formed JWT signed with another key
        f"Bearer {TOKEN}",  # the daemon token is no platform credential
        "Bearer",
    ]
    failures = []
    for rule, method, path in walk(app):
        platform = rule.startswith("/api/")
        cases = [(h, PLATFORM_401) for h in platform_cases] if platform else daemon_cases
        for header, expected in cases:
            kw = {} if method == "GET" else {**broken, "headers": dict(broken["headers"])}
            headers = kw.setdefault("headers", {})
            if header is not None:
                headers["Authorization"] = header
            resp = api.request(method, path, **kw)
            try:
                body = resp.json()
            except ValueError:
                body = resp.text[:200]
            ok = (
                resp.status_code == 401
                and body == expected
                and resp.headers.get("WWW-Authenticate") == "Bearer"
            )
            if not ok:
                failures.append((method, path, header, resp.status_code, body))
    assert failures == []


def test_open_routes_are_only_the_named_ones(guarded):
    _, api = guarded
    assert api.get("/health").status_code == 200
    # Static files: nothing shipped, so nothing served, and still no credential asked for.
    assert api.get("/static/nothing.txt").status_code == 404


def test_websocket_refuses_a_missing_or_wrong_token_in_its_connect_frame(guarded):
    _, api = guarded
    hello = {"type": "connect", "display_name": "walker", "circle": "auth"}
    for token in (None, "not-the-token", "", 42):
        frame = {**hello, **({"auth_token": token} if token is not None else {})}
        error, code = refused(api.base, frame)
        assert (error, code) == ({"type": "error", "error": "Authentication failed"}, 4001)
