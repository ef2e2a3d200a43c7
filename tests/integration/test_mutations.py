"""Daemon config mutations over HTTP: enqueue, list, get, cancel, delivery on heartbeat, acks,
redelivery with a movable clock, max deliveries, pool.deleted."""

from __future__ import annotations

import pytest

from dispatchyard.state import clock
from tests.support import records
from tests.support.writes import created, state_keys


@pytest.fixture
def host(api, org):
    return records.register(api, org)


def mutate(api, org, host, op="project.add", params=None, key=None):
    params = {"id": "prj_x", "repository": "github.com/a/x"} if params is None else params
    return api.post(
        "/api/daemon/mutations",
        key or org.key,
        json={"workerHostId": host["workerId"], "op": op, "params": params},
    )


def beat(api, host, **body):
    return api.post(
        f"/api/workers/{host['workerId']}/heartbeat",
        host["runtimeToken"],
        json={"activeCount": 0, **body},
    ).json()


def status_of(api, org, mid):
    return api.get(f"/api/daemon/mutations/{mid}", org.key).json()["mutation"]


def test_enqueue_shape(api, org, host):
    resp = mutate(api, org, host)
    assert resp.status_code == 201
    m = resp.json()["mutation"]
    assert m["id"].startswith("mut_")
    assert m["orgId"] == org.id and m["workerHostId"] == host["workerId"]
    assert m["op"] == "project.add" and m["params"] == {
        "id": "prj_x",
        "repository": "github.com/a/x",
    }
    assert m["status"] == "pending" and m["deliveryCount"] == 0
    assert m["requestedBy"].startswith("key_") and m["requestedAt"].endswith("Z")
    for f in ("deliveredAt", "cancelledAt", "appliedAt", "failedAt", "error"):
        assert m[f] is None


@pytest.mark.parametrize(
    ("op", "params", "field"),
    [
        ("project.explode", {}, "op"),
        ("project.add", {"id": "p"}, "params.repository"),
        ("project.add", {"repository": "r"}, "params.id"),
        ("project.add", {"id": 5, "repository": "r"}, "params.id"),
        ("project.remove", {}, "params.id"),
        ("project.remove", {"id": "p", "extra": 1}, "params.extra"),
        ("pool.deleted", {}, "params.poolId"),
        ("pool.deleted", {"poolId": "p", "candidatePoolIds": "q"}, "params.candidatePoolIds"),
        ("modelAccess.set", {}, "params.policy"),
        ("modelAccess.set", {"policy": {}, "workload": "gardening"}, "params.workload"),
        ("modelAccess.clear", {"workload": "nope"}, "params.workload"),
    ],
)
def test_enqueue_validation_names_the_field(api, org, host, op, params, field, r):
    before = state_keys(r)
    resp = mutate(api, org, host, op, params)
    assert resp.status_code == 400
    assert resp.json()["error"].startswith(field)
    assert not created(r, before)


@pytest.mark.parametrize(
    ("op", "params"),
    [
        ("project.remove", {"id": "p"}),
        ("pool.deleted", {"poolId": "p", "candidatePoolIds": ["q"], "reason": "merged"}),
        ("modelAccess.set", {"workload": "kg-extraction", "policy": {"allow": ["opus"]}}),
        ("modelAccess.set", {"policy": {"deny": []}}),
        ("modelAccess.clear", {"workload": "qa"}),
        ("modelAccess.clear", {}),
    ],
)
def test_every_op_accepted(api, org, host, op, params):
    assert mutate(api, org, host, op, params).status_code == 201


def test_roles_and_orgs(api, org, host, r):
    member = records.key(api, org, "member")
    assert mutate(api, org, host, key=member).status_code == 403
    admin = records.key(api, org, "admin")
    assert mutate(api, org, host, key=admin).status_code == 201
    other = records.new_org(r)
    resp = mutate(api, other, host)
    assert resp.status_code == 404 and resp.json() == {"error": "Worker host not found"}
    mid = mutate(api, org, host).json()["mutation"]["id"]
    assert api.get(f"/api/daemon/mutations/{mid}", other.key).status_code == 404
    resp = api.delete(f"/api/daemon/mutations/{mid}", other.key)
    assert resp.status_code == 404 and resp.json() == {"error": "Mutation not found"}
    assert api.delete(f"/api/daemon/mutations/{mid}", member).status_code == 403
    assert api.get(f"/api/daemon/mutations/{mid}", member).status_code == 200


def test_list_filters_and_limits(api, org, host):
    h2 = records.register(api, org)
    ids = [mutate(api, org, host).json()["mutation"]["id"] for _ in range(3)]
    other_host = mutate(api, org, h2).json()["mutation"]["id"]
    api.delete(f"/api/daemon/mutations/{ids[0]}", org.key)
    listed = api.get("/api/daemon/mutations", org.key).json()["mutations"]
    assert [m["id"] for m in listed] == [other_host, ids[2], ids[1], ids[0]]  # newest first
    by_host = api.get(
        "/api/daemon/mutations", org.key, params={"workerHostId": host["workerId"]}
    ).json()["mutations"]
    assert [m["id"] for m in by_host] == [ids[2], ids[1], ids[0]]
    pending = api.get(
        "/api/daemon/mutations",
        org.key,
        params={"workerHostId": host["workerId"], "status": "pending"},
    ).json()["mutations"]
    assert [m["id"] for m in pending] == [ids[2], ids[1]]
    cancelled = api.get("/api/daemon/mutations", org.key, params={"status": "cancelled"})
    assert [m["id"] for m in cancelled.json()["mutations"]] == [ids[0]]
    one = api.get("/api/daemon/mutations", org.key, params={"limit": 1}).json()["mutations"]
    assert len(one) == 1
    for bad in ({"limit": 0}, {"limit": 501}, {"limit": "x"}, {"status": "weird"}):
        assert api.get("/api/daemon/mutations", org.key, params=bad).status_code == 400
    assert (
        api.get(
            "/api/daemon/mutations", org.key, params={"workerHostId": "wkr_0000000000000000"}
        ).status_code
        == 404
    )


def test_delivery_on_heartbeat_in_requested_order_then_ack(api, org, host):
    a = mutate(api, org, host).json()["mutation"]
    b = mutate(api, org, host, "project.remove", {"id": "old"}).json()["mutation"]
    body = beat(api, host)
    assert [m["id"] for m in body["pendingMutations"]] == [a["id"], b["id"]]
    first = body["pendingMutations"][0]
    assert set(first) == {"id", "op", "params", "requestedAt", "requestedBy"}
    assert first["params"] == a["params"] and first["requestedAt"] == a["requestedAt"]
    stored = status_of(api, org, a["id"])
    assert stored["status"] == "delivered" and stored["deliveryCount"] == 1
    assert stored["deliveredAt"] is not None
    # Not due again yet: nothing redelivered.
    assert beat(api, host)["pendingMutations"] == []
    # Acks: applied and failed; then the same reports again change nothing.
    beat(api, host, appliedMutations=[a["id"]], mutationFailures=[{"id": b["id"], "error": "x"}])
    sa, sb = status_of(api, org, a["id"]), status_of(api, org, b["id"])
    assert sa["status"] == "applied" and sa["appliedAt"]
    assert sb["status"] == "failed" and sb["error"] == "x" and sb["failedAt"]
    beat(api, host, appliedMutations=[b["id"]], mutationFailures=[{"id": a["id"], "error": "y"}])
    assert status_of(api, org, a["id"]) == sa
    assert status_of(api, org, b["id"]) == sb
    # The audit trail: requested, delivered, then what the host said.
    events = [e["event"] for e in status_of(api, org, a["id"])["history"]]
    assert events == ["requested", "delivered", "applied"]
    # Cancel after delivery: 409 with the stored state.
    resp = api.delete(f"/api/daemon/mutations/{a['id']}", org.key)
    assert resp.status_code == 409 and resp.json() == {
        "cancelled": False,
        "reason": "already_applied",
    }
    resp = api.delete(f"/api/daemon/mutations/{b['id']}", org.key)
    assert resp.json() == {"cancelled": False, "reason": "already_failed"}


def test_foreign_and_unknown_acks_ignored(api, org, host):
    h2 = records.register(api, org)
    m = mutate(api, org, h2).json()["mutation"]
    beat(api, h2)  # delivered to h2
    beat(
        api,
        host,
        appliedMutations=[m["id"], "mut_" + "0" * 24, "garbage"],
        mutationFailures=[{"id": m["id"], "error": "not mine"}],
    )
    assert status_of(api, org, m["id"])["status"] == "delivered"
    pending = mutate(api, org, host).json()["mutation"]
    # An ack for a mutation that was never delivered is ignored too.
    api.post(
        f"/api/workers/{host['workerId']}/heartbeat",
        host["runtimeToken"],
        json={"activeCount": 0, "appliedMutations": [pending["id"]]},
    )
    assert status_of(api, org, pending["id"])["status"] == "delivered"  # delivered by that beat


def test_cancel_pending(api, org, host):
    m = mutate(api, org, host).json()["mutation"]
    resp = api.delete(f"/api/daemon/mutations/{m['id']}", org.key)
    assert resp.status_code == 200 and resp.json() == {"cancelled": True}
    stored = status_of(api, org, m["id"])
    assert stored["status"] == "cancelled" and stored["cancelledAt"]
    assert beat(api, host)["pendingMutations"] == []
    resp = api.delete(f"/api/daemon/mutations/{m['id']}", org.key)
    assert resp.status_code == 409 and resp.json()["reason"] == "already_cancelled"
    d = mutate(api, org, host).json()["mutation"]
    beat(api, host)
    resp = api.delete(f"/api/daemon/mutations/{d['id']}", org.key)
    assert resp.status_code == 409 and resp.json()["reason"] == "already_delivered"
    assert api.delete("/api/daemon/mutations/mut_nope", org.key).status_code == 404


def test_redelivery_then_failure_after_max_deliveries(api, org, host):
    m = mutate(api, org, host).json()["mutation"]
    assert [x["id"] for x in beat(api, host)["pendingMutations"]] == [m["id"]]
    for n in range(2, 6):
        clock.advance(119)
        assert beat(api, host)["pendingMutations"] == [], "redelivered too early"
        clock.advance(1)
        assert [x["id"] for x in beat(api, host)["pendingMutations"]] == [m["id"]]
        assert status_of(api, org, m["id"])["deliveryCount"] == n
    clock.advance(120)
    assert beat(api, host)["pendingMutations"] == []
    stored = status_of(api, org, m["id"])
    assert stored["status"] == "failed" and stored["error"] == "undelivered"
    assert stored["deliveryCount"] == 5
    events = [e["event"] for e in stored["history"]]
    assert events == ["requested", "delivered"] + ["redelivered"] * 4 + ["failed"]


def test_a_redelivered_mutation_can_still_be_applied(api, org, host):
    m = mutate(api, org, host).json()["mutation"]
    beat(api, host)
    clock.advance(121)
    assert len(beat(api, host)["pendingMutations"]) == 1
    beat(api, host, appliedMutations=[m["id"]])
    assert status_of(api, org, m["id"])["status"] == "applied"


def test_pool_deleted_stops_work(api, org, host):
    records.project(api, org)
    records.enqueue(api, org)
    m = mutate(
        api, org, host, "pool.deleted", {"poolId": "pool-1", "candidatePoolIds": ["pool-2"]}
    ).json()["mutation"]
    body = beat(api, host)
    assert body["hostStatus"] == {"status": "ok"}  # delivered, not yet applied
    body = beat(api, host, appliedMutations=[m["id"]])
    assert body["hostStatus"] == {
        "status": "pool_deleted",
        "recommendedAction": "join_candidate_pool",
        "candidatePoolIds": ["pool-2"],
    }
    polled = api.get(f"/api/workers/{host['workerId']}/poll", host["runtimeToken"]).json()
    assert polled["work"] == []
    row = next(
        x for x in api.get("/api/workers", org.key).json()["workers"] if x["id"] == host["workerId"]
    )
    assert row["hostStatus"]["status"] == "pool_deleted"
