"""One tenant flooding a gunicorn shim of two processes: the flooding org is answered 429 with
`Retry-After` once its budget is spent, by both processes together (one budget, counted in
Redis, not one per process); another org's requests and every host's heartbeats and polls
(the flooding org's hosts too) all pass. The same for one peer flooding `/notify`. The measured
figures are written to `var/test-figures/tenant_flood.json` (and printed)."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from tests.support import records
from tests.support.flood import Answered, Steady, flood, statuses
from tests.support.stack import Stack

FIGURES = Path(__file__).resolve().parents[2] / "var" / "test-figures" / "tenant_flood.json"
BURST, RATE = 40, 2  # an org: 40 requests per 20 s window
HOST_BURST, HOST_RATE = 40, 10  # a host: 40 heartbeats and polls per 4 s (it sends 6 a second)
PEER_BURST, PEER_RATE = 20, 1  # a peer: 20 asks and notifications per 20 s
FLOOD = 1500  # requests, from 8 threads: about 2 s of this shim's whole throughput


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    budgets = {
        "DISPATCHYARD_API_RATE_PER_S": str(RATE),
        "DISPATCHYARD_API_BURST": str(BURST),
        "DISPATCHYARD_HOST_RATE_PER_S": str(HOST_RATE),
        "DISPATCHYARD_HOST_BURST": str(HOST_BURST),
        "DISPATCHYARD_PEER_RATE_PER_S": str(PEER_RATE),
        "DISPATCHYARD_PEER_BURST": str(PEER_BURST),
    }
    with Stack(tmp_path_factory.mktemp("flood"), **budgets) as s:
        s.gunicorn()  # two processes, eight threads each
        yield s


@pytest.fixture(scope="module")
def figures():
    found: dict = {}
    yield found
    print(json.dumps(found, indent=2))
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2) + "\n")


def refused(answers: list[Answered], envelope: str, window_s: int) -> list[Answered]:
    over = [a for a in answers if a.status == 429]
    for a in over:
        assert a.retry_after is not None and 1 <= int(a.retry_after) <= window_s, a
        assert isinstance(a.body, dict) and isinstance(a.body[envelope], str), a.body
    return over


def summary(answers: list[Answered]) -> dict:
    slowest = max(a.seconds for a in answers)
    return {"sent": len(answers), "statuses": statuses(answers), "slowest_s": round(slowest, 3)}


def test_one_org_flooding_leaves_other_orgs_and_every_host_alone(stack, figures):
    url = stack.url
    flooder, bystander = records.new_org(stack.r), records.new_org(stack.r)
    first = time.monotonic()
    hosts = [records.register(stack.api, flooder) for _ in range(3)]
    spent_before = len(hosts)  # the registrations spent the flooder's budget too
    theirs = records.register(stack.api, bystander)

    def heartbeat(host):
        path = f"{url}/api/workers/{host['workerId']}/heartbeat"
        auth = {"Authorization": f"Bearer {host['runtimeToken']}"}
        return lambda http: http.post(path, json={"activeCount": 0}, headers=auth, timeout=30)

    def poll(host):
        path = f"{url}/api/workers/{host['workerId']}/poll"
        auth = {"Authorization": f"Bearer {host['runtimeToken']}"}
        return lambda http: http.get(path, headers=auth, timeout=30)

    def reads(org):
        auth = {"Authorization": f"Bearer {org.key}"}
        paths = [f"{url}/api/workers", f"{url}/api/org/{org.id}/projects", f"{url}/api/sessions"]
        turn = iter(range(10**9))
        return lambda http: http.get(paths[next(turn) % 3], headers=auth, timeout=30)

    steady = Steady()
    for i, host in enumerate([*hosts, theirs]):
        steady.add(f"heartbeat {i}", heartbeat(host), every=0.25)
        steady.add(f"poll {i}", poll(host), every=0.5)
    steady.add("bystander", reads(bystander), every=0.3)  # within its burst for 12 s
    with steady.running():
        started = time.monotonic()
        flooded = flood(reads(flooder), FLOOD, threads=8)
        flood_s = time.monotonic() - started
    elapsed = time.monotonic() - first

    counts = statuses(flooded)
    assert set(counts) <= {200, 429}, counts
    over = refused(flooded, "error", BURST // RATE)
    assert all(a.body["budget"] == "org" for a in over)
    if elapsed < BURST // RATE:
        # Within one window both processes together served exactly the budget.
        assert counts[200] + spent_before == BURST, counts
    else:  # a slow run: the window slid on, and let a little more through
        assert BURST - spent_before <= counts[200] <= 2 * BURST, counts
    beats = [a for name, got in steady.answers.items() if name != "bystander" for a in got]
    assert statuses(beats) == {200: len(beats)}, statuses(beats)
    bystanding = steady.answers["bystander"]
    assert statuses(bystanding) == {200: len(bystanding)}, statuses(bystanding)
    figures["org_flood"] = {
        "budget": f"{BURST} per {BURST // RATE} s",
        "flood": {
            **summary(flooded),
            "seconds": round(flood_s, 2),
            "per_s": round(FLOOD / flood_s),
            "threads": 8,
        },
        "retry_after_s": sorted({int(a.retry_after or 0) for a in over}),
        "other_org": summary(bystanding),
        "heartbeats_and_polls": {**summary(beats), "hosts": len(hosts) + 1},
    }


def test_one_peer_flooding_notify_leaves_other_peers_alone(stack, figures):
    url = stack.url
    circle = f"c-{secrets.token_hex(3)}"
    meta = {"repowire_cli_fallback": True}  # a polling peer: a notify to it is queued
    target = stack.api.post("/peers", json={"name": "inbox", "circle": circle, "metadata": meta})
    assert target.status_code == 200, target.text
    target_id = target.json()["peer_id"]

    def notify(sender):
        body = {"from_peer": sender, "to_peer": target_id, "text": "hi", "circle": circle}
        return lambda http: http.post(f"{url}/notify", json=body, timeout=30)

    steady = Steady()
    for name in ("alice", "bob"):
        steady.add(name, notify(name), every=0.4)  # within their burst for 8 s
    first = time.monotonic()
    with steady.running():
        flooded = flood(notify("flooder"), FLOOD // 2, threads=8)
        flood_s = time.monotonic() - first
    elapsed = time.monotonic() - first

    counts = statuses(flooded)
    assert set(counts) <= {200, 429}, counts
    over = refused(flooded, "detail", PEER_BURST // PEER_RATE)
    assert over[0].body["detail"].startswith("Too many requests from peer 'flooder'")
    if elapsed < PEER_BURST // PEER_RATE:
        assert counts[200] == PEER_BURST, counts
    else:
        assert PEER_BURST <= counts[200] <= 2 * PEER_BURST, counts
    others = [a for got in steady.answers.values() for a in got]
    assert statuses(others) == {200: len(others)}, statuses(others)
    figures["peer_flood"] = {
        "budget": f"{PEER_BURST} per {PEER_BURST // PEER_RATE} s",
        "flood": {**summary(flooded), "seconds": round(flood_s, 2)},
        "other_peers": summary(others),
    }
