"""Request budgets (api_shim/budgets.py) over HTTP, on a shim of this test's own with small
budgets (the suite's shim has the production ones): an org pays for its own requests once its
credential is known, a host's heartbeats and polls are its own budget, a peer's asks and
notifications are its own; over a budget, 429 with `Retry-After` in the group's envelope."""

from __future__ import annotations

import secrets
import threading
import time

import pytest
from werkzeug.serving import make_server

from api_shim import budgets, create_app, declare
from dispatchyard.settings import get_settings
from tests.conftest import LEGACY_KEY
from tests.support import records
from tests.support.flood import Answered, Steady, flood, statuses
from tests.support.http import Api
from tests.support.waits import wait_for

BURST, RATE = 6, 2  # an org: 6 requests per 3 s window
HOST_BURST, HOST_RATE = 5, 1  # a host: 5 heartbeats and polls per 5 s
PEER_BURST, PEER_RATE = 4, 1  # a peer: 4 asks and notifications per 4 s
PEER_ROUTES = {"/ask", "/ask-many", "/notify", "/broadcast", "/questions/ask-blocking", "/query"}
HOST_ROUTES = {"/api/workers/<worker_id>/heartbeat", "/api/workers/<worker_id>/poll"}


def budgeted_settings():
    return get_settings().model_copy(
        update={
            "api_rate_per_s": RATE,
            "api_burst": BURST,
            "host_rate_per_s": HOST_RATE,
            "host_burst": HOST_BURST,
            "peer_rate_per_s": PEER_RATE,
            "peer_burst": PEER_BURST,
        }
    )


@pytest.fixture(scope="module")
def shim():
    server = make_server("127.0.0.1", 0, create_app(budgeted_settings()), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield Api(f"http://127.0.0.1:{server.server_port}")
    server.shutdown()


def refused(answers: list[Answered], envelope: str, window_s: int) -> list[Answered]:
    """The 429s among `answers`, each checked: `Retry-After` whole seconds within the window,
    the body the group's envelope."""
    over = [a for a in answers if a.status == 429]
    for a in over:
        assert a.retry_after is not None and 1 <= int(a.retry_after) <= window_s, a
        assert isinstance(a.body, dict) and isinstance(a.body[envelope], str), a.body
    return over


def spend(shim: Api, key: str, org_id: str, n: int) -> list[int]:
    return [shim.get(f"/api/org/{org_id}/projects", key).status_code for _ in range(n)]


def test_every_route_that_can_answer_429_declares_it():
    app = create_app(budgeted_settings())
    per_host, per_peer = set(), set()
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        declared = declare.of(view)
        if declared is None or not declared.listed:
            continue
        if getattr(view, budgets.HOST_ROUTE, False):
            per_host.add(rule.rule)
        if getattr(view, budgets.PEER_ROUTE, False):
            per_peer.add(rule.rule)
        answer = declared.responses.get(429)
        if rule.endpoint.startswith("platform."):
            # Every platform route authenticates, so every one spends a budget.
            assert answer is budgets.OverBudget, rule.rule
        elif rule.rule in PEER_ROUTES:
            assert answer is budgets.PeerOverBudget, rule.rule
        else:
            assert answer is None, f"{rule.rule} declares a 429 it cannot answer"
    assert per_host == HOST_ROUTES
    assert per_peer == PEER_ROUTES


def test_windows_from_the_settings():
    assert budgets.window(0, 100) is None  # a rate of 0: no budget
    item = budgets.window(3, 6)
    assert item is not None and (item.amount, item.multiples) == (6, 2)
    item = budgets.window(500, 5000)
    assert item is not None and (item.amount, item.multiples) == (5000, 10)
    item = budgets.window(7, 10)  # 1.43 s: rounded up to whole seconds
    assert item is not None and (item.amount, item.multiples) == (10, 2)


def test_an_unauthenticated_flood_is_401_and_costs_no_one(shim, r):
    org = records.new_org(r)
    forged = f"rsk_{secrets.token_hex(24)}"
    jwt_like = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
    for token in (None, forged, jwt_like, org.key + "x"):
        for _ in range(BURST):
            resp = shim.get(f"/api/org/{org.id}/projects", token)
            assert resp.status_code == 401 and resp.json() == {"error": "Unauthorized"}
    # The org's whole budget is still there, and it is charged nothing more.
    assert spend(shim, org.key, org.id, BURST) == [200] * BURST
    over = shim.get(f"/api/org/{org.id}/projects", org.key)
    assert over.status_code == 429
    assert over.json() == {
        "error": f"Too many requests for this org ({BURST} requests per {BURST // RATE} s)",
        "budget": "org",
    }
    assert 1 <= int(over.headers["Retry-After"]) <= BURST // RATE


def test_the_org_of_the_credential_pays_and_gets_its_budget_back(api, shim, r):
    mine, other = records.new_org(r), records.new_org(r)
    host = records.register(api, mine)  # through the suite's shim: not this shim's budget
    token = host["runtimeToken"]
    # An API key and the org's runtime token spend the same org budget.
    assert spend(shim, mine.key, mine.id, BURST - 2) == [200] * (BURST - 2)
    for _ in range(2):
        assert shim.get("/api/daemon/sessions/ses_unknown", token).status_code == 404
    over = shim.get("/api/daemon/sessions/ses_unknown", token)
    assert over.status_code == 429 and over.json()["budget"] == "org"
    assert spend(shim, other.key, other.id, BURST) == [200] * BURST  # another org: untouched
    # Told to come back in `Retry-After` seconds: by then the budget has room again.
    told = time.monotonic() + int(over.headers["Retry-After"])
    wait_for(
        lambda: shim.get(f"/api/org/{mine.id}/projects", mine.key).status_code == 200,
        timeout=BURST // RATE + 2,
        interval=0.1,
        message="the org's budget to have room again",
    )
    assert time.monotonic() <= told + 1.5


def test_heartbeats_and_polls_spend_the_host_budget_not_the_org(api, shim, r, legacy_org):
    org = records.new_org(r)
    host, neighbour = records.register(api, org), records.register(api, org)

    def beat(w, token=None):
        return shim.post(
            f"/api/workers/{w['workerId']}/heartbeat",
            token or w["runtimeToken"],
            json={"activeCount": 0},
        )

    assert spend(shim, org.key, org.id, BURST + 2)[-1] == 429  # the org's budget is spent
    assert beat(host).status_code == 200  # its hosts still heartbeat
    assert shim.get(f"/api/workers/{host['workerId']}/poll", host["runtimeToken"]).ok
    answers = [beat(host) for _ in range(HOST_BURST)]
    assert [a.status_code for a in answers] == [200] * (HOST_BURST - 2) + [429, 429]
    assert answers[-1].json() == {
        "error": f"Too many requests from this worker ({HOST_BURST} requests per "
        f"{HOST_BURST // HOST_RATE} s)",
        "budget": "host",
    }
    assert int(answers[-1].headers["Retry-After"]) >= 1
    assert beat(neighbour).status_code == 200  # the same org's other host: its own budget
    # The legacy key acts for the default org: a heartbeat spends the budget of the host its
    # path names, in that org.
    legacy = records.register(api, legacy_org)
    assert [beat(legacy, LEGACY_KEY).status_code for _ in range(HOST_BURST + 1)][-1] == 429
    assert beat(records.register(api, legacy_org), LEGACY_KEY).status_code == 200


def test_a_peer_flooding_notify_is_refused_while_another_peer_passes(api, shim):
    circle = f"c-{secrets.token_hex(3)}"
    meta = {"repowire_cli_fallback": True}  # a polling peer: a notify to it is queued
    target = api.post("/peers", json={"name": "inbox", "circle": circle, "metadata": meta})
    target_id = target.json()["peer_id"]
    flooder, quiet = f"flooder-{secrets.token_hex(3)}", f"quiet-{secrets.token_hex(3)}"

    def notify(sender):
        body = {"from_peer": sender, "to_peer": target_id, "text": "hi", "circle": circle}
        return lambda http: http.post(shim.base + "/notify", json=body, timeout=30)

    steady = Steady()
    steady.add("quiet", notify(quiet), every=1.5)  # under its 1 a second
    with steady.running():
        flooded = flood(notify(flooder), total=60, threads=6)
    assert PEER_BURST <= statuses(flooded)[200] <= PEER_BURST * 2  # two windows at most
    over = refused(flooded, "detail", PEER_BURST // PEER_RATE)
    assert len(over) >= 60 - PEER_BURST * 2
    assert over[0].body == {
        "detail": f"Too many requests from peer '{flooder}' ({PEER_BURST} requests per "
        f"{PEER_BURST // PEER_RATE} s)"
    }
    assert [a.status for a in steady.answers["quiet"]] == [200] * len(steady.answers["quiet"])
    # One budget for all of a peer's asks and notifications.
    resp = shim.post("/ask", json={"from_peer": flooder, "to_peer": target_id, "text": "x"})
    assert resp.status_code == 429 and resp.json()["detail"].startswith("Too many requests")


def test_senders_that_name_no_peer_share_one_budget(shim):
    answers = [shim.post("/query", json={"to_peer": "nobody", "text": "?"}) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * PEER_BURST + [429, 429]
    assert answers[-1].json() == {
        "detail": f"Too many requests from senders naming no from_peer ({PEER_BURST} requests "
        f"per {PEER_BURST // PEER_RATE} s)"
    }


def test_a_rate_of_zero_turns_the_budgets_off(r):
    off = budgeted_settings().model_copy(
        update={"api_rate_per_s": 0, "host_rate_per_s": 0, "peer_rate_per_s": 0}
    )
    server = make_server("127.0.0.1", 0, create_app(off), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        unlimited = Api(f"http://127.0.0.1:{server.server_port}")
        org = records.new_org(r)
        host = records.register(unlimited, org)
        sender = f"free-{secrets.token_hex(3)}"
        for _ in range(max(BURST, HOST_BURST, PEER_BURST) + 2):
            assert unlimited.get(f"/api/org/{org.id}/projects", org.key).status_code == 200
            poll = unlimited.get(f"/api/workers/{host['workerId']}/poll", host["runtimeToken"])
            assert poll.status_code == 200
            body = {"from_peer": sender, "to_peer": "nobody", "text": "?"}
            assert unlimited.post("/query", json=body).status_code == 200
        assert not [k for k in r.scan_iter("budget:*") if org.id in k or sender in k]
    finally:
        server.shutdown()


def test_a_refused_caller_is_refused_without_redis_until_its_retry_after(r):
    """Once refused, a process answers that caller 429 itself until the moment it named, even
    if Redis would now let the request through (here: its counters deleted)."""
    spender = budgets.Budgets.build(budgeted_settings(), r.connection_pool)
    who = f"org_{secrets.token_hex(8)}"
    assert [spender.spend("org", who) for _ in range(BURST)] == [0] * BURST
    retry = spender.spend("org", who)
    assert 1 <= retry <= BURST // RATE
    told = time.monotonic() + retry
    for key in r.scan_iter(f"{budgets.KEY_PREFIX}:*{who}*"):
        r.delete(key)
    assert spender.spend("org", who) >= 1  # Redis would let it through
    wait_for(
        lambda: spender.spend("org", who) == 0,
        timeout=retry + 2,
        interval=0.05,
        message="the moment the caller was told",
    )
    assert time.monotonic() >= told - 0.1
