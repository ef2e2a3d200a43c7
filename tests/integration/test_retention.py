"""Retention over HTTP: every kind of final record is deleted by the real sweep task once it
has been final for the retention (the clock moved past it), with every index entry, and then
answers exactly as an id that never existed; a template's history is trimmed to its last
fires; a record that leaves its final state leaves the retention index."""

from __future__ import annotations

import secrets

import pytest

from dispatchyard.settings import get_settings
from dispatchyard.state import clock, jobs, keys, retention, templates
from dispatchyard.state.models import Final, JobState
from tasks import retention as retention_task
from tests.support import records
from tests.support.waits import wait_for

DAY_S = 24 * 3600
PARAMS = {"id": "prj_x", "repository": "github.com/a/x"}


def past_retention() -> None:
    """Move the clock past the default retention of every kind."""
    clock.advance(get_settings().retention_s + 60)


def sweep_until_gone(r, kind: Final, *ids: str) -> None:
    """Run the real sweep task until these ids have left the retention index (other tests'
    records may be due before them: a run deletes at most a batch of each kind)."""

    def gone() -> bool:
        retention_task.sweep()
        return all(retention.final_since(r, kind, i) is None for i in ids)

    wait_for(gone, timeout=30, message=f"{kind} {ids} purged")


def holders(r, record_id: str) -> list[str]:
    """Every key that still names `record_id`: in its name, or as a member or field of a set,
    sorted set, hash or list (the test Redis is small: reading it all is fine here)."""
    named = {
        "zset": lambda key: r.zscore(key, record_id) is not None,
        "set": lambda key: r.sismember(key, record_id),
        "hash": lambda key: r.hexists(key, record_id),
        "list": lambda key: record_id in r.lrange(key, 0, -1),
    }
    found = []
    for key in r.scan_iter(count=1000):
        names_it = named.get(r.type(key))
        if record_id in key or (names_it is not None and names_it(key)):
            found.append(key)
    return found


def same_as_unknown(resp, unknown, record_id: str, unknown_id: str) -> None:
    """A purged id answers as an id that never existed: 404, the same body (ids aside)."""
    assert resp.status_code == unknown.status_code == 404, (resp.text, unknown.text)
    assert resp.text.replace(record_id, "ID") == unknown.text.replace(unknown_id, "ID")


@pytest.fixture
def setup(api, org):
    records.project(api, org, "app")
    return org, records.register(api, org)


def test_a_finished_job_is_deleted_with_every_index_entry(api, r, celery_worker, tmp_path):
    resp = api.post(
        "/jobs",
        json={
            "title": "t",
            "prompt": "write it",
            "path": str(tmp_path),
            "backend": "claude-code",
            "owner_peer_id": "peer-owner",
            "circle": "ret",
        },
    )
    job_id = resp.json()["job_id"]
    assert records.wait_job(api, job_id)["state"] == "completed"
    final_at = retention.final_since(r, Final.JOBS, job_id)
    assert final_at is not None
    assert {f"job:{job_id}", f"trace:{job_id}", "jobs:docs", "jobs:all"} <= set(holders(r, job_id))
    retention_task.sweep()
    assert retention.final_since(r, Final.JOBS, job_id) == final_at  # not yet due
    past_retention()
    sweep_until_gone(r, Final.JOBS, job_id)
    assert holders(r, job_id) == []
    unknown_id = f"work-{secrets.token_hex(6)}"
    for path in ("/jobs/{}", "/jobs/{}/status", "/work/{}", "/jobs/{}/result", "/traces/{}"):
        same_as_unknown(
            api.get(path.format(job_id)), api.get(path.format(unknown_id)), job_id, unknown_id
        )
    listed = api.get("/jobs", params={"owner_peer_id": "peer-owner"}).json()
    assert job_id not in str(listed)


def test_a_retried_job_is_not_final_any_more(api, r):
    job_id = api.post(
        "/jobs",
        json={
            "title": "t",
            "prompt": "p",
            "path": "/tmp",
            "backend": "shell",
            "due_at": "2099-01-01T00:00:00Z",
        },
    ).json()["job_id"]
    now = clock.now_ms()
    jobs.end_without_attempt(r, job_id, state=JobState.FAILED, reason="x", now_ms=now)
    assert retention.final_since(r, Final.JOBS, job_id) == now
    jobs.acquire(r, job_id, now_ms=now, fire_key="k", why="retry", lease_ms=1000, machine="m")
    assert retention.final_since(r, Final.JOBS, job_id) is None
    past_retention()
    retention_task.sweep()
    assert api.get(f"/jobs/{job_id}").status_code == 200


def test_a_cancelled_template_is_deleted(api, r):
    cal = api.post(
        "/jobs",
        json={"title": "t", "prompt": "p", "path": "/tmp", "backend": "shell", "cron": "0 3 * * *"},
    ).json()["calendar_id"]
    assert api.post(f"/jobs/{cal}/cancel", json={}).status_code == 200
    assert retention.final_since(r, Final.TEMPLATES, cal) is not None
    past_retention()
    sweep_until_gone(r, Final.TEMPLATES, cal)
    assert holders(r, cal) == []
    unknown = f"cal-{secrets.token_hex(6)}"
    same_as_unknown(api.get(f"/jobs/{cal}"), api.get(f"/jobs/{unknown}"), cal, unknown)
    resp = api.post(f"/jobs/{cal}/resume", json={})
    same_as_unknown(resp, api.post(f"/jobs/{unknown}/resume", json={}), cal, unknown)


def test_a_template_keeps_its_last_fires(api, r):
    cal = api.post(
        "/jobs",
        json={"title": "t", "prompt": "p", "path": "/tmp", "backend": "shell", "cron": "* * * * *"},
    ).json()["calendar_id"]
    children = []
    for _ in range(5):
        due = clock.parse_ms(templates.get(r, cal)["next_due_at"])
        clock.advance((due - clock.now_ms()) / 1000 + 1)
        outcome, child = templates.materialize(r, cal, due, clock.now_ms())
        assert outcome == "created" and child is not None
        children.append(child["job_id"])
        if len(children) < 5:  # the newest keeps running
            jobs.end_without_attempt(
                r, child["job_id"], state=JobState.COMPLETED, reason="x", now_ms=clock.now_ms()
            )
    assert r.zscore(keys.TEMPLATES_HISTORY, cal) is not None
    assert retention.trim_template_history(r, 2, 100, clock.now_ms()) == 3
    for gone in children[:3]:
        assert api.get(f"/jobs/{gone}").status_code == 404 and holders(r, gone) == []
    for kept in children[3:]:
        assert api.get(f"/jobs/{kept}").status_code == 200
    assert r.zscore(keys.TEMPLATES_HISTORY, cal) is None  # nothing left to trim
    assert retention.trim_template_history(r, 2, 100, clock.now_ms()) == 0


def test_a_finished_session_is_deleted_and_leaves_its_status_count(api, r, setup):
    org, w = setup
    sid = records.enqueue(api, org)["sessionId"]
    token = w["runtimeToken"]
    api.get(f"/api/workers/{w['workerId']}/poll", token)
    body = {"workerId": w["workerId"], "status": "completed"}
    assert api.post(f"/api/sessions/{sid}/status", token, json=body).status_code == 200
    assert retention.final_since(r, Final.SESSIONS, sid) is not None
    completed = int(r.hget(keys.SESSION_STATUS_COUNTS, "completed"))
    past_retention()
    sweep_until_gone(r, Final.SESSIONS, sid)
    assert holders(r, sid) == []
    assert int(r.hget(keys.SESSION_STATUS_COUNTS, "completed")) <= completed - 1
    unknown = f"ses_{secrets.token_hex(12)}"
    # The clock moved past the runtime token's life: a fresh one.
    token = api.post(f"/api/workers/{w['workerId']}/refresh-token", org.key).json()
    token = token["runtimeToken"]
    for path in ("/api/sessions/{}/status", "/api/daemon/sessions/{}"):
        method = "GET" if "daemon" in path else "POST"
        same_as_unknown(
            api.request(method, path.format(sid), token, json=body),
            api.request(method, path.format(unknown), token, json=body),
            sid,
            unknown,
        )
    listed = api.get("/api/sessions", org.key).json()
    assert sid not in str(listed)


def test_a_finished_mutation_is_deleted(api, r, setup):
    org, w = setup
    resp = api.post(
        "/api/daemon/mutations",
        org.key,
        json={"workerHostId": w["workerId"], "op": "project.add", "params": PARAMS},
    )
    mid = resp.json()["mutation"]["id"]
    assert api.delete(f"/api/daemon/mutations/{mid}", org.key).status_code == 200
    assert retention.final_since(r, Final.MUTATIONS, mid) is not None
    past_retention()
    sweep_until_gone(r, Final.MUTATIONS, mid)
    assert holders(r, mid) == []
    unknown = f"mut_{secrets.token_hex(12)}"
    for method in ("GET", "DELETE"):
        path = "/api/daemon/mutations/{}"
        same_as_unknown(
            api.request(method, path.format(mid), org.key),
            api.request(method, path.format(unknown), org.key),
            mid,
            unknown,
        )
    listed = api.get("/api/daemon/mutations", org.key, params={"status": "cancelled"}).json()
    assert mid not in str(listed)


def test_a_deregistered_host_is_deleted_and_its_open_mutations_end(api, r, org):
    machine = f"m-{secrets.token_hex(3)}"
    w = records.register(api, org, machineId=machine)
    host = w["workerId"]
    resp = api.post(
        "/api/daemon/mutations",
        org.key,
        json={"workerHostId": host, "op": "project.add", "params": PARAMS},
    )
    mid = resp.json()["mutation"]["id"]
    assert api.delete(f"/api/workers/{host}", org.key).status_code == 200
    assert retention.final_since(r, Final.HOSTS, host) is not None
    past_retention()
    sweep_until_gone(r, Final.HOSTS, host)
    # Its pending mutation was cancelled when the host went, and is final from then.
    assert r.hget(keys.mutation(mid), "status") == "cancelled"
    assert [k for k in holders(r, host) if not k.startswith("mutation:")] == []
    unknown = f"wkr_{secrets.token_hex(12)}"
    same_as_unknown(
        api.delete(f"/api/workers/{host}", org.key),
        api.delete(f"/api/workers/{unknown}", org.key),
        host,
        unknown,
    )
    assert host not in str(api.get("/api/workers", org.key).json())
    # The same machine registering again is a new host.
    again = records.register(api, org, machineId=machine)
    assert again["workerId"] != host
    clock.advance(get_settings().retention_s + 60)
    sweep_until_gone(r, Final.MUTATIONS, mid)
    assert holders(r, mid) == [] and holders(r, host) == []


def test_a_host_registering_again_is_not_final(api, r, org):
    machine = f"m-{secrets.token_hex(3)}"
    host = records.register(api, org, machineId=machine)["workerId"]
    api.delete(f"/api/workers/{host}", org.key)
    assert retention.final_since(r, Final.HOSTS, host) is not None
    assert records.register(api, org, machineId=machine)["workerId"] == host
    assert retention.final_since(r, Final.HOSTS, host) is None


def test_the_sweep_leaves_what_is_not_due(api, r, setup):
    """A session final for a day, under the default week, stays; so does an active one."""
    org, w = setup
    done, active = (records.enqueue(api, org)["sessionId"] for _ in range(2))
    token = w["runtimeToken"]
    api.get(f"/api/workers/{w['workerId']}/poll", token)
    body = {"workerId": w["workerId"], "status": "stopped"}
    assert api.post(f"/api/sessions/{done}/status", token, json=body).status_code == 200
    clock.advance(DAY_S)
    retention_task.sweep()
    assert r.exists(keys.session(done)) and r.exists(keys.session(active))
    assert retention.final_since(r, Final.SESSIONS, done) is not None
    assert retention.final_since(r, Final.SESSIONS, active) is None


def test_records_final_before_the_upgrade_are_filed_once(api, r, setup):
    """Records that ended before the retention index existed (their entries removed here) are
    filed by the sweep's one-off backfill, as final from then, and go a retention later."""
    org, w = setup
    job_id = api.post(
        "/jobs",
        json={
            "title": "t",
            "prompt": "p",
            "path": "/tmp",
            "backend": "shell",
            "due_at": "2099-01-01T00:00:00Z",
        },
    ).json()["job_id"]
    api.post(f"/jobs/{job_id}/cancel", json={})
    sid = records.enqueue(api, org)["sessionId"]
    token = w["runtimeToken"]
    api.get(f"/api/workers/{w['workerId']}/poll", token)
    body = {"workerId": w["workerId"], "status": "failed"}
    assert api.post(f"/api/sessions/{sid}/status", token, json=body).status_code == 200
    mid = api.post(
        "/api/daemon/mutations",
        org.key,
        json={"workerHostId": w["workerId"], "op": "project.add", "params": PARAMS},
    ).json()["mutation"]["id"]
    api.delete(f"/api/daemon/mutations/{mid}", org.key)
    made = {Final.JOBS: job_id, Final.SESSIONS: sid, Final.MUTATIONS: mid}
    for kind, record_id in made.items():  # as before the upgrade
        r.zrem(keys.final_at(kind), record_id)
    r.delete(keys.RETENTION_BACKFILLED)
    clock.advance(60)
    retention_task.sweep()
    now = clock.now_ms()
    for kind, record_id in made.items():
        assert now - 5000 < retention.final_since(r, kind, record_id) <= now
    assert r.exists(keys.RETENTION_BACKFILLED)
    assert retention.backfill(r, now) == 0  # once
    past_retention()
    for kind, record_id in made.items():
        sweep_until_gone(r, kind, record_id)
        assert holders(r, record_id) == []
