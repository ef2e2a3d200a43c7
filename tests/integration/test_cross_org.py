"""Another org's ids: every platform route that takes one answers 404 `{"error": ...}`, exactly
as for an id that does not exist, and changes nothing.

Org A is the legacy org, so each of its three credentials is used: its owner API key, its
worker's runtime JWT, and the legacy worker key (the only worker credential that may name any
worker id: a JWT is bound to its own worker, see test_jwt_on_another_workers_path).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest

from api_shim import create_app
from dispatchyard.state import keys
from tests.conftest import LEGACY_KEY
from tests.support import records

# The platform's keys (state/keys.py): orgs, projects, keys, hosts, sessions, the queues,
# mutations, revoked tokens. The broker's, the mesh's and the jobs' keys change on their own
# when earlier tests of the session left a Celery worker or a WebSocket hub running.
PLATFORM_KEYS = (
    "org",
    "project",
    "apikey:",
    "worker",
    "jwt:revoked:",
    "work:",
    "agent:session:",
    "mutation",
)


# One body every session route accepts (each reads its own fields and ignores the rest).
SESSION_FIELDS = {"status": "running", "toolName": "Bash", "issueId": "i", "summary": "done"}


@dataclass
class World:
    org: records.Org
    project: dict
    worker: dict
    queued: str  # a queued session
    claimed: str  # a session claimed by `worker`
    mutation: str
    key_id: str
    key: str
    runner_token: str  # the queued session's own token (its cloud-runner `authToken`)


def build(api, org: records.Org) -> World:
    project = records.project(api, org, f"xo-{secrets.token_hex(3)}")
    worker = records.register(api, org)
    queued = records.enqueue(api, org, project["slug"])["sessionId"]
    claimed = records.enqueue(api, org, project["slug"])["sessionId"]
    resp = api.post(
        f"/api/sessions/{claimed}/claim",
        worker["runtimeToken"],
        json={"workerId": worker["workerId"]},
    )
    assert resp.status_code == 200 and resp.json()["claimed"] is True, resp.text
    resp = api.post(
        "/api/daemon/mutations",
        org.key,
        json={
            "workerHostId": worker["workerId"],
            "op": "project.remove",
            "params": {"id": "prj_x"},
        },
    )
    assert resp.status_code == 201, resp.text
    mutation = resp.json()["mutation"]["id"]
    resp = api.post(f"/api/org/{org.id}/keys", org.key, json={"name": "m", "role": "member"})
    assert resp.status_code == 201, resp.text
    key_id, key = resp.json()["id"], resp.json()["key"]
    detail = api.get(f"/api/daemon/sessions/{queued}", worker["runtimeToken"])
    assert detail.status_code == 200, detail.text
    runner = detail.json()["authToken"]
    return World(org, project, worker, queued, claimed, mutation, key_id, key, runner)


def snapshot(r) -> tuple[dict, set]:
    """Every platform key's value, and which of them may expire on their own."""
    out, volatile = {}, set()
    for key in r.scan_iter(count=1000):
        if not key.startswith(PLATFORM_KEYS):
            continue
        if r.ttl(key) > 0:
            volatile.add(key)
        kind = r.type(key)
        if kind == "hash":
            value = r.hgetall(key)
        elif kind == "zset":
            value = r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(r.smembers(key))
        elif kind == "list":
            value = r.lrange(key, 0, -1)
        elif kind == "stream":
            value = r.xrange(key)
        else:
            value = r.get(key)
        out[key] = (kind, value)
    return out, volatile


def changes(before: tuple[dict, set], after: tuple[dict, set]) -> list[str]:
    """Keys added, removed or changed (a volatile key that lapsed meanwhile is not a change)."""
    (old, volatile), (new, _) = before, after
    lapsed = {k for k in volatile if k not in new}
    return sorted(
        k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k not in lapsed
    )


@pytest.fixture(scope="module")
def app():
    """The shim's route table (the served app is built the same way)."""
    return create_app()


@pytest.fixture
def worlds(api, legacy_org, r):
    a, b = build(api, legacy_org), build(api, records.new_org(r))
    return a, b


def session_verbs(app) -> list[str]:
    """The verbs of `/api/sessions/<session_id>/<verb>`, as the route table has them."""
    prefix = "/api/sessions/<session_id>/"
    return sorted(
        rule.rule.removeprefix(prefix)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix)
    )


def matrix(
    a: World, b: World, verbs: list[str]
) -> list[tuple[str, str, str, dict | None, dict, str]]:
    """(label, method, path, json body, {credential label: token}, expected error) for A's
    credentials on B's ids."""
    wid, sid_q, sid_c = b.worker["workerId"], b.queued, b.claimed
    key, jwt_a, mine = a.org.key, a.worker["runtimeToken"], a.worker["workerId"]
    return [
        # Worker (host) ids in the path.
        (
            "refresh-token",
            "POST",
            f"/api/workers/{wid}/refresh-token",
            None,
            {"key": key, "legacy": LEGACY_KEY},
            "Worker not found",
        ),
        (
            "poll",
            "GET",
            f"/api/workers/{wid}/poll",
            None,
            {"legacy": LEGACY_KEY},
            "Worker not found",
        ),
        (
            "heartbeat",
            "POST",
            f"/api/workers/{wid}/heartbeat",
            {"activeCount": 0, "appliedMutations": [b.mutation]},
            {"legacy": LEGACY_KEY},
            "Worker not found",
        ),
        (
            "DELETE worker",
            "DELETE",
            f"/api/workers/{wid}",
            None,
            {"key": key, "legacy": LEGACY_KEY},
            "Worker not found",
        ),
        # Session ids in the path (every session route of the table), A's own worker in the
        # body; then B's worker in the body (the legacy key may name any worker).
        *[
            (
                verb,
                "POST",
                f"/api/sessions/{sid_q if verb == 'claim' else sid_c}/{verb}",
                {**SESSION_FIELDS, "workerId": mine},
                {"jwt": jwt_a, "legacy": LEGACY_KEY},
                "Session not found",
            )
            for verb in verbs
        ],
        *[
            (
                f"{verb} (B's worker in the body)",
                "POST",
                f"/api/sessions/{sid_q if verb == 'claim' else sid_c}/{verb}",
                {**SESSION_FIELDS, "workerId": wid},
                {"legacy": LEGACY_KEY},
                "Worker not found",
            )
            for verb in verbs
        ],
        (
            "session detail",
            "GET",
            f"/api/daemon/sessions/{sid_q}",
            None,
            {"jwt": jwt_a, "legacy": LEGACY_KEY},
            "Session not found",
        ),
        # Mutations.
        (
            "mutation get",
            "GET",
            f"/api/daemon/mutations/{b.mutation}",
            None,
            {"key": key},
            "Mutation not found",
        ),
        (
            "mutation cancel",
            "DELETE",
            f"/api/daemon/mutations/{b.mutation}",
            None,
            {"key": key},
            "Mutation not found",
        ),
        (
            "mutation list ?workerHostId",
            "GET",
            f"/api/daemon/mutations?workerHostId={wid}",
            None,
            {"key": key},
            "Worker host not found",
        ),
        (
            "mutation enqueue workerHostId",
            "POST",
            "/api/daemon/mutations",
            {"workerHostId": wid, "op": "project.remove", "params": {"id": "prj_x"}},
            {"key": key},
            "Worker host not found",
        ),
        # Keys and the org itself.
        (
            "DELETE key (own org path)",
            "DELETE",
            f"/api/org/{a.org.id}/keys/{b.key_id}",
            None,
            {"key": key},
            "Key not found",
        ),
        *[
            (
                f"{method} {path}",
                method,
                path,
                {"slug": "x", "name": "x"} if method == "POST" else None,
                {"key": key},
                "Organization not found",
            )
            for method, path in (
                ("GET", f"/api/org/{b.org.id}/projects"),
                ("POST", f"/api/org/{b.org.id}/projects"),
                ("GET", f"/api/org/{b.org.id}/keys"),
                ("POST", f"/api/org/{b.org.id}/keys"),
                ("DELETE", f"/api/org/{b.org.id}/keys/{b.key_id}"),
            )
        ],
        # Projects named by id or slug.
        (
            "session list ?projectId",
            "GET",
            f"/api/sessions?projectId={b.project['id']}",
            None,
            {"key": key},
            "Project not found",
        ),
        (
            "session list ?project",
            "GET",
            f"/api/sessions?project={b.project['slug']}",
            None,
            {"key": key},
            "Project not found",
        ),
        *[
            (
                f"enqueue {field}",
                "POST",
                "/api/sessions",
                {
                    "issueId": "i",
                    "issueIdentifier": "ENG-1",
                    "prompt": "p",
                    field: b.project[attr],
                },
                {"key": key},
                "Project not found",
            )
            for field, attr in (("projectId", "id"), ("project", "slug"))
        ],
    ]


def unknown_twin(path: str, b: World) -> str:
    """The same path with B's ids replaced by well-formed ids that exist nowhere."""
    for real, fake in (
        (b.worker["workerId"], "wkr_" + "0" * 16),
        (b.queued, "ses_" + "0" * 24),
        (b.claimed, "ses_" + "1" * 24),
        (b.mutation, "mut_" + "0" * 24),
        (b.key_id, "key_" + "0" * 16),
        (b.org.id, "org_" + "0" * 16),
        (b.project["id"], "prj_" + "0" * 16),
        (b.project["slug"], "no-such-project"),
    ):
        path = path.replace(real, fake)
    return path


def test_every_platform_route_taking_an_id_is_in_the_matrix(app, worlds):
    """Walks the route table: a new platform route with an id in its path fails here until
    its cross-org case is added to `matrix`."""
    a, b = worlds
    adapter = app.url_map.bind("localhost")
    covered = set()
    for _, method, path, *_ in matrix(a, b, session_verbs(app)):
        rule, _ = adapter.match(path.partition("?")[0], method=method, return_rule=True)
        covered.add((rule.rule, method))
    wanted = {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/") and rule.arguments
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert wanted - covered == set()
    assert len(wanted) >= 17, sorted(wanted)


def test_other_orgs_ids_are_404_and_change_nothing(app, api, worlds, r):
    a, b = worlds
    before = snapshot(r)
    checked = []
    for label, method, path, body, creds, error in matrix(a, b, session_verbs(app)):
        for cred_label, token in creds.items():
            resp = api.request(method, path, token, json=body)
            assert (resp.status_code, resp.json()) == (404, {"error": error}), (
                label,
                cred_label,
                resp.text,
            )
            # Indistinguishable from an id that exists nowhere: no oracle for B's ids.
            twin_body = body and {
                k: unknown_twin(v, b) if isinstance(v, str) else v for k, v in body.items()
            }
            twin = api.request(method, unknown_twin(path, b), token, json=twin_body)
            assert (twin.status_code, twin.json()) == (404, {"error": error}), (label, twin.text)
            checked.append((label, cred_label))
    print(f"{len(checked)} cross-org (route, credential) pairs answered 404")
    # A Referer naming B's project slug is as unknown as any other.
    resp = api.get(
        "/api/sessions",
        a.org.key,
        headers={"Referer": f"https://dash.test/projects/{b.project['slug']}"},
    )
    assert resp.status_code == 404
    assert resp.json() == {"error": f"Project not found: {b.project['slug']}"}
    # A's session runner token is good for A's session only: on B's sessions it is no
    # credential at all, exactly as on a session that exists nowhere.
    for verb in session_verbs(app):
        for sid in (b.queued, b.claimed):
            path = f"/api/sessions/{sid}/{verb}"
            resp = api.post(path, a.runner_token, json=SESSION_FIELDS)
            assert (resp.status_code, resp.json()) == (401, {"error": "Unauthorized"}), path
            twin = api.post(unknown_twin(path, b), a.runner_token, json=SESSION_FIELDS)
            assert (twin.status_code, twin.json()) == (401, {"error": "Unauthorized"}), path
    assert changes(before, snapshot(r)) == []
    # Spelled out for the records a wrong answer would have touched first.
    assert r.hget(keys.host(b.worker["workerId"]), "status") == "active"
    assert r.hget(keys.session(b.queued), "status") == "queued"
    assert r.hmget(keys.session(b.claimed), "status", "workerId") == [
        "claimed",
        b.worker["workerId"],
    ]
    assert r.hget(keys.mutation(b.mutation), "status") == "pending"
    assert not r.hget(keys.apikey(b.key_id), "revokedAt")


def test_lists_never_show_the_other_org(api, worlds):
    a, b = worlds
    workers = api.get("/api/workers", a.org.key).json()["workers"]
    assert b.worker["workerId"] not in {w["id"] for w in workers}
    assert a.worker["workerId"] in {w["id"] for w in workers}
    listed = {s["id"] for s in api.get("/api/sessions", a.org.key).json()["sessions"]}
    assert {b.queued, b.claimed}.isdisjoint(listed) and {a.queued, a.claimed} <= listed
    mutations = api.get("/api/daemon/mutations", a.org.key).json()["mutations"]
    assert b.mutation not in {m["id"] for m in mutations}
    assert a.mutation in {m["id"] for m in mutations}
    own_keys = api.get(f"/api/org/{a.org.id}/keys", a.org.key).json()["keys"]
    assert b.key_id not in {k["id"] for k in own_keys}
    polled = api.get(f"/api/workers/{a.worker['workerId']}/poll", a.worker["runtimeToken"])
    assert b.queued not in polled.json()["claimedSessionIds"]


def test_jwt_on_another_workers_path(api, worlds):
    """A runtime JWT acts for its own worker only: any other worker id in the path (B's, or
    one that exists nowhere) is the same 403, so it reveals nothing about B."""
    a, b = worlds
    token = a.worker["runtimeToken"]
    for wid in (b.worker["workerId"], "wkr_" + "0" * 16):
        for method, path, body in (
            ("GET", f"/api/workers/{wid}/poll", None),
            ("POST", f"/api/workers/{wid}/heartbeat", {"activeCount": 0}),
            ("DELETE", f"/api/workers/{wid}", None),
        ):
            resp = api.request(method, path, token, json=body)
            assert resp.status_code == 403, (path, resp.text)
            assert resp.json() == {"error": "Token does not belong to this worker"}
        resp = api.post(
            f"/api/sessions/{b.claimed}/status", token, json={"workerId": wid, "status": "running"}
        )
        assert resp.status_code == 403
        assert resp.json() == {"error": "Token does not belong to this worker"}


def test_the_ids_were_live_for_their_own_org(api, worlds, r):
    """The same requests with B's own credentials succeed: the 404s above were for live ids."""
    _, b = worlds
    key, token, wid = b.org.key, b.worker["runtimeToken"], b.worker["workerId"]
    before = snapshot(r)
    assert api.get(f"/api/daemon/sessions/{b.queued}", token).status_code == 200
    resp = api.post(
        f"/api/sessions/{b.claimed}/activity", token, json={"workerId": wid, "toolName": "Bash"}
    )
    assert resp.status_code == 200 and resp.json()["recorded"] is True
    resp = api.post(f"/api/sessions/{b.claimed}/nack", token, json={"workerId": wid})
    assert resp.status_code == 200 and resp.json()["nacked"] is True
    resp = api.post(f"/api/sessions/{b.queued}/claim", token, json={"workerId": wid})
    assert resp.status_code == 200 and resp.json()["claimed"] is True
    resp = api.post(
        f"/api/sessions/{b.queued}/status", token, json={"workerId": wid, "status": "running"}
    )
    assert resp.status_code == 200 and resp.json()["session"]["status"] == "running"
    assert api.get(f"/api/workers/{wid}/poll", token).status_code == 200
    assert api.get(f"/api/daemon/mutations/{b.mutation}", key).status_code == 200
    listed = api.get(f"/api/daemon/mutations?workerHostId={wid}", key).json()["mutations"]
    assert [m["id"] for m in listed] == [b.mutation]
    resp = api.get(f"/api/sessions?projectId={b.project['id']}", key)
    assert {s["id"] for s in resp.json()["sessions"]} == {b.queued, b.claimed}
    resp = api.delete(f"/api/daemon/mutations/{b.mutation}", key)
    assert resp.json() == {"cancelled": True}
    assert api.post(f"/api/workers/{wid}/refresh-token", key).status_code == 200
    assert api.delete(f"/api/org/{b.org.id}/keys/{b.key_id}", key).json() == {"revoked": True}
    beat = api.post(f"/api/workers/{wid}/heartbeat", token, json={"activeCount": 1})
    assert beat.status_code == 200
    resp = api.delete(f"/api/workers/{wid}", key)
    assert resp.status_code == 200 and resp.json()["deregistered"] is True
    # The snapshot the 404 test compares sees these very records change.
    touched = {keys.host(wid), keys.session(b.queued), keys.session(b.claimed)}
    touched |= {keys.mutation(b.mutation), keys.apikey(b.key_id)}
    assert touched <= set(changes(before, snapshot(r)))
