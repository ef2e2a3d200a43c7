"""The platform group as its real client calls it: the RenseiAI/donmai daemon and runner.

Each request is replayed as the Go code sends it (same path, method, headers, and the JSON its
structs marshal to, `omitempty` and all), and each answer is decoded the way Go's encoding/json
decodes it into the struct the client declares: a list where Go has a slice, an integer where it
has an int, the field names the struct's tags spell. `go_decode` is that decoder, a little
stricter than Go (it wants the exact case of a name, where Go would also take another case).

Go sources mirrored (RenseiAI/donmai): daemon/registration.go, daemon/heartbeat.go,
daemon/poll.go, daemon/session_detail.go, result/poster.go, runtime/activity/poster.go,
runtime/heartbeat/pulser.go, afcli/agent_run.go (postSessionRunning, the session detail it reads
and the `authToken` it then uses as its bearer).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import pytest

from dispatchyard.state import clock, keys
from dispatchyard.state.models import HOST_STATUSES
from tests.support import records

DAEMON_UA = "rensei-daemon/0.7.1"  # daemon.Version, sent by register, heartbeat, poll, nack
GO_UA = "Go-http-client/1.1"  # the runner's posters set no User-Agent of their own


# -- Go's encoding/json, as far as these structs need it ------------------------------------


class Raw:
    """json.RawMessage: any JSON value."""


def required(**kw: Any) -> Any:
    """A field the client reads and cannot do without (it checks it, or a zero value changes
    what it does): it must be present and not null."""
    return field(metadata={"required": True}, **kw)


def go_decode(cls: Any, value: Any, path: str = "$") -> Any:
    """Decode `value` (parsed JSON) into `cls` as encoding/json would, failing where Go fails.

    - str, bool: only that JSON type; int: an integer (no fraction, no string); float: a number.
    - list[T]: a JSON array (an object here is the `cannot unmarshal object into Go struct field
      ... of type []string` that made the daemon drop its heartbeat answers).
    - dict[str, T]: a JSON object; a dataclass: a JSON object, unknown fields ignored.
    - null decodes into anything (Go leaves the zero value), except into a required field.
    """
    if value is None:
        return None
    if cls is Raw or cls is Any:
        return value
    origin = typing.get_origin(cls)
    if origin in (typing.Union, types.UnionType):
        (inner,) = [a for a in typing.get_args(cls) if a is not type(None)]
        return go_decode(inner, value, path)
    if origin is list:
        assert isinstance(value, list), f"{path}: Go wants an array for a slice, got {value!r}"
        (inner,) = typing.get_args(cls)
        return [go_decode(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        assert isinstance(value, dict), f"{path}: Go wants an object for a map, got {value!r}"
        _, inner = typing.get_args(cls)
        return {k: go_decode(inner, v, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(cls):
        assert isinstance(value, dict), f"{path}: Go wants an object for a struct, got {value!r}"
        hints = typing.get_type_hints(cls)
        out = {}
        for f in dataclasses.fields(cls):
            if f.metadata.get("required"):
                assert value.get(f.name) is not None, f"{path}.{f.name} is missing or null"
            if f.name in value:
                out[f.name] = go_decode(hints[f.name], value[f.name], f"{path}.{f.name}")
        return cls(**out)
    if cls is bool:
        assert type(value) is bool, f"{path}: Go wants a bool, got {value!r}"
    elif cls is int:
        assert type(value) is int, f"{path}: Go wants an integer, got {value!r}"
    elif cls is float:
        assert type(value) in (int, float), f"{path}: Go wants a number, got {value!r}"
    elif cls is str:
        assert isinstance(value, str), f"{path}: Go wants a string, got {value!r}"
    else:
        raise TypeError(f"no Go mirror for {cls}")
    return value


# daemon/registration.go RegisterResponse. The daemon refuses an answer without workerId.
@dataclass
class RegisterResponse:
    workerId: str = required(default="")
    heartbeatInterval: int = 0
    pollInterval: int = 0
    runtimeToken: str = required(default="")
    runtimeTokenExpiresAt: str = ""


# daemon/heartbeat.go HostStatusDetail.
@dataclass
class HostStatusDetail:
    status: str = required(default="")
    recommendedAction: str = ""
    candidatePoolIds: list[str] | None = None


# daemon/heartbeat.go PendingMutation.
@dataclass
class PendingMutation:
    id: str = required(default="")
    op: str = required(default="")
    params: Raw | None = None
    requestedAt: str = ""
    requestedBy: str = ""


# daemon/heartbeat.go heartbeatResponseBody.
@dataclass
class HeartbeatResponse:
    acknowledged: bool = required(default=False)
    serverTime: str = ""
    pendingWorkCount: int = 0
    hostStatus: HostStatusDetail | None = None
    pendingMutations: list[PendingMutation] | None = None


# daemon/poll.go PollWorkItem (the fields this server sends or the daemon reads).
@dataclass
class PollWorkItem:
    sessionId: str = required(default="")
    projectName: str = ""
    repository: str = ""
    ref: str = ""
    priority: int = 0
    env: dict[str, str] | None = None
    maxDurationSeconds: int = 0
    queuedAt: int = 0
    projectScope: str = ""
    issueId: str = ""
    issueIdentifier: str = ""
    linearSessionId: str = ""
    providerSessionId: str = ""
    organizationId: str = ""
    workType: str = ""
    promptContext: str = ""
    body: str = ""
    title: str = ""
    branch: str = ""
    systemPromptOverride: str = ""
    kits: dict[str, Raw] | None = None  # *kit.ToolchainDemand: an object
    disallowedTools: list[str] | None = None
    memoryBlock: str = ""
    mode: str = ""


# daemon/poll.go InboxMessage and PollResponse.
@dataclass
class InboxMessage:
    deliveryId: str = ""
    text: str = ""
    kind: str = ""
    turnId: str = ""


@dataclass
class PollResponse:
    work: list[PollWorkItem] | None = None
    hasInboxMessages: bool = False
    inboxMessages: dict[str, list[InboxMessage]] | None = None
    preClaimed: bool = False
    claimedSessionIds: list[str] | None = None


# daemon/session_detail.go SessionDetail: what `donmai agent run` reads from
# GET /api/daemon/sessions/{id}. Its authToken becomes the runner's bearer.
@dataclass
class SessionDetail:
    sessionId: str = required(default="")
    issueId: str = ""
    issueIdentifier: str = ""
    linearSessionId: str = ""
    providerSessionId: str = ""
    projectName: str = ""
    organizationId: str = ""
    repository: str = ""
    ref: str = ""
    workType: str = ""
    promptContext: str = ""
    workerId: str = ""
    authToken: str = ""
    platformUrl: str = ""


# runtime/heartbeat/pulser.go refreshResponse. `refreshed` absent decodes as false: a strike.
@dataclass
class RefreshResponse:
    refreshed: bool = required(default=False)


# daemon/runtime_token.go refreshResponse (the runtime-token refresh probe). The daemon refuses
# an answer without runtimeToken.
@dataclass
class TokenRefreshResponse:
    runtimeToken: str = required(default="")
    runtimeTokenExpiresAt: str = ""
    heartbeatInterval: int = 0
    pollInterval: int = 0


# -- The requests, as the Go code marshals and sends them -----------------------------------


def go_json(body: dict[str, Any]) -> bytes:
    """json.Marshal: compact, UTF-8 as is."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def send(
    api, method: str, path: str, token: str, body: dict | None = None, *, ua: str = GO_UA
) -> Any:
    headers = {"Authorization": f"Bearer {token}", "User-Agent": ua}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return api.http.request(
        method,
        api.base + path,
        data=go_json(body) if body is not None else None,
        headers=headers,
        timeout=30,
    )


def ok(resp, cls: Any) -> Any:
    """A 2xx answer decoded into `cls` (every client here treats >= 400 as an error)."""
    assert 200 <= resp.status_code < 300, (resp.status_code, resp.text)
    return go_decode(cls, resp.json())


def register(api, org: records.Org, capacity: int = 4) -> RegisterResponse:
    """callRegisterEndpoint: RegisterRequest, Bearer the rsk_live_ registration key."""
    host = f"host-{secrets.token_hex(3)}"
    body = {"machineId": host, "hostname": host, "capacity": capacity, "version": "0.7.1"}
    reg = ok(
        send(api, "POST", "/api/workers/register", org.key, body, ua=DAEMON_UA), RegisterResponse
    )
    assert reg.workerId and reg.runtimeToken
    return reg


def heartbeat(api, reg: RegisterResponse, **extra: Any) -> HeartbeatResponse:
    """callEndpoint: heartbeatRequestBody (`activeCount` always, the rest omitempty)."""
    body = {"status": "idle", "activeCount": 0, "activeInteractiveCount": 0, "maxSessions": 4}
    body.update(extra)
    resp = send(
        api, "POST", f"/api/workers/{reg.workerId}/heartbeat", reg.runtimeToken, body, ua=DAEMON_UA
    )
    return ok(resp, HeartbeatResponse)


def poll(api, reg: RegisterResponse) -> PollResponse:
    resp = send(api, "GET", f"/api/workers/{reg.workerId}/poll", reg.runtimeToken, ua=DAEMON_UA)
    return ok(resp, PollResponse)


def post_running(api, sid: str, worker_id: str, token: str):
    """afcli postSessionRunning / activity maybePostRunning: a map[string]string (sorted keys)."""
    return send(
        api,
        "POST",
        f"/api/sessions/{sid}/status",
        token,
        {"status": "running", "workerId": worker_id},
    )


def post_activity(api, sid: str, worker_id: str, token: str, activity: dict):
    """runtime/activity postActivity: activityPayload{workerId, activity}."""
    body = {"workerId": worker_id, "activity": activity}
    return send(api, "POST", f"/api/sessions/{sid}/activity", token, body)


def thought(text: str) -> dict:
    return {
        "type": "thought",
        "content": text,
        "providerName": "claude",
        "timestamp": "2026-01-01T00:00:00Z",
    }


def tool_use(tool: str, summary: str, tool_use_id: str = "tu_1") -> dict:
    return {
        "type": "action",
        "content": summary,
        "toolName": tool,
        "toolInput": {"command": "go test ./...", "timeout": 120, "flags": ["-v"]},
        "toolUseId": tool_use_id,
        "providerName": "claude",
        "timestamp": "2026-01-01T00:00:01Z",
    }


def tool_result(tool: str, tool_use_id: str = "tu_1") -> dict:
    return {
        "type": "action",
        "content": f"{tool} result",
        "toolName": tool,
        "toolUseId": tool_use_id,
        "durationMs": 1250,
        "toolOutput": "ok\tgithub.com/x/y\t0.4s",
        "providerName": "claude",
        "timestamp": "2026-01-01T00:00:02Z",
    }


def lock_refresh(api, sid: str, token: str, issue_id: str, worker_id: str = ""):
    """runtime/heartbeat doRefresh: refreshRequest, both fields omitempty."""
    body = {k: v for k, v in (("workerId", worker_id), ("issueId", issue_id)) if v}
    return send(api, "POST", f"/api/sessions/{sid}/lock-refresh", token, body)


def post_completion(api, sid: str, token: str, summary: str, worker_id: str = ""):
    """result.Poster postCompletion: completionRequest, workerId omitempty."""
    body = {k: v for k, v in (("workerId", worker_id), ("summary", summary)) if v}
    return send(api, "POST", f"/api/sessions/{sid}/completion", token, body)


def post_status(api, sid: str, token: str, worker_id: str, status: str, **result: Any):
    """result.Poster postStatus: statusRequest (workerId and status always, the rest
    omitempty, so a zero cost or token count is absent)."""
    body = {"workerId": worker_id, "status": status}
    body.update({k: v for k, v in result.items() if v})
    return send(api, "POST", f"/api/sessions/{sid}/status", token, body)


def record(r, sid: str) -> dict:
    return r.hgetall(keys.session(sid))


@pytest.fixture
def project(api, org):
    return records.project(api, org, "app", repository="github.com/acme/app")


def enqueue(api, org, **body) -> tuple[str, dict]:
    """A queued session and its cloud-runner detail (read while it is queued)."""
    sid = records.enqueue(api, org, "app", **body)["sessionId"]
    reg = register(api, org)
    detail = ok(send(api, "GET", f"/api/daemon/sessions/{sid}", reg.runtimeToken), SessionDetail)
    return sid, detail.__dict__


# -- 1. The runner's result: completed straight from running (and from claimed) ------------


def test_a_daemon_session_end_to_end(api, org, project, r):
    reg = register(api, org)
    # The first beat carries the whole admission report and a load sample (whole float64s
    # marshal as integer literals); the fields this server does not keep are ignored.
    hb = heartbeat(
        api,
        reg,
        load={"cpu": 12.5, "memory": 40},
        loadAverage={"one": 0.52, "five": 0.4, "fifteen": 1},
        allowlistHash="9f2c",
        allowlist=[{"id": "app", "repository": "github.com/acme/app"}],
        enabledProjectIds=[project["id"]],
        projectAdmissionMode="enumerated",
        quarantinedSessions=[{"sessionId": "s-old", "consumesCapacity": True}],
    )
    assert hb.acknowledged and hb.hostStatus is not None and hb.hostStatus.status == "ok"
    assert hb.pendingMutations == [] and hb.serverTime.endswith("Z")
    # The runtime-token refresh probe: `{}` with the registration key, same workerId.
    resp = send(
        api, "POST", f"/api/workers/{reg.workerId}/refresh-token", org.key, {}, ua=DAEMON_UA
    )
    fresh = ok(resp, TokenRefreshResponse)
    reg = RegisterResponse(reg.workerId, runtimeToken=fresh.runtimeToken)
    sid = records.enqueue(
        api, org, "app", issueId="iss-42", prompt="fix the build", systemPrompt="be brief"
    )["sessionId"]

    polled = poll(api, reg)
    assert polled.preClaimed and polled.claimedSessionIds == [sid]
    (item,) = polled.work
    assert item.sessionId == sid and item.issueId == "iss-42" and item.organizationId == org.id
    assert item.repository == "github.com/acme/app" and isinstance(item.queuedAt, int)
    # The daemon reads the prompt and the system prompt under these names only.
    assert item.promptContext == "fix the build" and item.systemPromptOverride == "be brief"

    # The runner: eager running, its activity stream, its lock refresh, its result.
    token, wid = reg.runtimeToken, reg.workerId
    assert post_running(api, sid, wid, token).status_code == 200
    assert (
        post_activity(api, sid, wid, token, thought("Looking at the failing test")).status_code
        == 200
    )
    assert (
        post_activity(api, sid, wid, token, tool_use("Bash", "Bash: go test ./...")).status_code
        == 200
    )
    assert post_activity(api, sid, wid, token, tool_result("Bash")).status_code == 200
    # maybePostRunning after the first activity: a repeat, which the runner tolerates either way.
    assert post_running(api, sid, wid, token).status_code == 200  # a repeat is idempotent
    refreshed = ok(lock_refresh(api, sid, token, "iss-42", wid), RefreshResponse)
    assert refreshed.refreshed is True

    resp = post_completion(api, sid, token, "Fixed the flaky test; PR #12.", wid)
    assert resp.status_code == 200 and resp.json()["posted"] is True
    resp = post_status(
        api,
        sid,
        token,
        wid,
        "completed",
        providerSessionId="claude-sess-1",
        worktreePath="/tmp/.donmai/worktrees/x",
        totalCostUsd=2,  # a whole float64 marshals as an integer literal
        inputTokens=12000,
        outputTokens=3400,
    )
    assert resp.status_code == 200, resp.text
    session = resp.json()["session"]
    assert session["status"] == "completed" and session["finishedAt"]
    assert session["costUsd"] == 2 and session["inputTokens"] == 12000
    assert session["outputTokens"] == 3400 and session["providerSessionId"] == "claude-sess-1"
    assert session["worktreePath"] == "/tmp/.donmai/worktrees/x"
    assert session["summary"] == "Fixed the flaky test; PR #12."
    # The session has moved on: the next refresh is refused (a strike), and the retried result
    # post is still a 200 (completion, then the same terminal status again).
    assert ok(lock_refresh(api, sid, token, "iss-42", wid), RefreshResponse).refreshed is False
    assert post_completion(api, sid, token, "Fixed the flaky test; PR #12.", wid).status_code == 200
    assert post_status(api, sid, token, wid, "completed").status_code == 200
    assert not r.sismember(keys.host_sessions(wid), sid)


def test_completed_straight_from_claimed_and_failed_from_running(api, org, project, r):
    reg = register(api, org, capacity=4)
    a = records.enqueue(api, org, "app")["sessionId"]
    b = records.enqueue(api, org, "app")["sessionId"]
    assert poll(api, reg).claimedSessionIds == [a, b]
    token, wid = reg.runtimeToken, reg.workerId
    # The eager running post was lost: the result comes straight from claimed.
    resp = post_status(api, a, token, wid, "completed", totalCostUsd=0.42, outputTokens=7)
    assert resp.status_code == 200, resp.text
    assert resp.json()["session"]["costUsd"] == 0.42
    assert record(r, a)["totalCostUsd"] == "0.42"
    assert post_running(api, b, wid, token).status_code == 200
    resp = post_status(api, b, token, wid, "failed", error={"message": "agent crashed"})
    assert resp.status_code == 200
    assert resp.json()["session"]["error"] == {"message": "agent crashed"}
    # Terminal is final.
    assert post_status(api, b, token, wid, "completed").status_code == 409


# -- 2. Activity as the runner posts it -----------------------------------------------------


def test_activity_shapes_and_the_tool_loop_signal(api, org, project, r):
    reg = register(api, org)
    sid = records.enqueue(api, org, "app")["sessionId"]
    poll(api, reg)
    token, wid = reg.runtimeToken, reg.workerId
    post_running(api, sid, wid, token)

    # A thought names no tool: accepted, and it sets no tool.
    resp = post_activity(api, sid, wid, token, thought("Planning"))
    assert resp.status_code == 200 and resp.json()["toolName"] is None
    rec = record(r, sid)
    assert rec["lastActivityType"] == "thought" and "lastTool" not in rec
    for kind in ("response", "error", "context"):
        event = {"type": kind, "content": f"a {kind}", "timestamp": "2026-01-01T00:00:00Z"}
        assert post_activity(api, sid, wid, token, event).status_code == 200
    # A tool result the provider could not name carries no toolName: no tool either.
    unnamed = {"type": "action", "content": "tool result", "toolUseId": "tu_9"}
    assert post_activity(api, sid, wid, token, unnamed).status_code == 200
    assert "lastTool" not in record(r, sid)

    assert post_activity(api, sid, wid, token, tool_use("Bash", "Bash: make")).status_code == 200
    since = record(r, sid)["toolSince"]
    clock.advance(300)
    # Its result, and thoughts in between, keep the same tool in use since the first call.
    post_activity(api, sid, wid, token, tool_result("Bash"))
    post_activity(api, sid, wid, token, thought("Trying again"))
    post_activity(api, sid, wid, token, tool_use("Bash", "Bash: make", "tu_2"))
    rec = record(r, sid)
    assert rec["toolSince"] == since and rec["lastTool"] == "Bash"
    assert int(rec["lastActivityAt"]) > int(since)
    clock.advance(301)
    heartbeat(api, reg, activeCount=1)
    row = next(s for s in api.get("/api/sessions", org.key).json()["sessions"] if s["id"] == sid)
    assert row["health"]["signals"] == ["ToolLoopStuck"] and row["lastTool"] == "Bash"
    # Another tool resets it.
    post_activity(api, sid, wid, token, tool_use("Read", "Read: main.go", "tu_3"))
    row = next(s for s in api.get("/api/sessions", org.key).json()["sessions"] if s["id"] == sid)
    assert row["health"]["signals"] == []

    # The older flat body still works; a body with neither shape, or an event without its
    # type or content, is 400.
    resp = send(
        api, "POST", f"/api/sessions/{sid}/activity", token, {"workerId": wid, "toolName": "Edit"}
    )
    assert resp.status_code == 200 and record(r, sid)["lastTool"] == "Edit"
    for bad in (
        {"workerId": wid},
        {"workerId": wid, "activity": {"type": "thought"}},
        {"workerId": wid, "activity": {"content": "x"}},
        {"workerId": wid, "activity": {"type": "thought", "content": ""}},
        {"workerId": wid, "activity": "thought"},
    ):
        resp = send(api, "POST", f"/api/sessions/{sid}/activity", token, bad)
        assert resp.status_code == 400, bad


# -- 3. lock-refresh and completion ---------------------------------------------------------


def test_lock_refresh_answers(api, org, project, r):
    reg = register(api, org)
    other = register(api, org)
    sid = records.enqueue(api, org, "app", issueId="iss-7")["sessionId"]
    poll(api, reg)
    token, wid = reg.runtimeToken, reg.workerId
    # Claimed (before running) counts: the runner starts refreshing at spawn.
    before = clock.now_ms()
    assert ok(lock_refresh(api, sid, token, "iss-7", wid), RefreshResponse).refreshed is True
    assert int(record(r, sid)["lockRefreshedAt"]) >= before
    post_running(api, sid, wid, token)
    clock.advance(30)
    assert ok(lock_refresh(api, sid, token, "iss-7", wid), RefreshResponse).refreshed is True
    row = next(s for s in api.get("/api/sessions", org.key).json()["sessions"] if s["id"] == sid)
    assert row["lockRefreshedAt"].endswith("Z")
    # workerId omitted (omitempty): the token's own worker.
    assert ok(lock_refresh(api, sid, token, "iss-7"), RefreshResponse).refreshed is True
    # A lock for another issue is not held.
    assert ok(lock_refresh(api, sid, token, "iss-8", wid), RefreshResponse).refreshed is False
    # As agentfactory: issueId is required, another worker's session is 403, unknown is 404.
    resp = send(api, "POST", f"/api/sessions/{sid}/lock-refresh", token, {"workerId": wid})
    assert resp.status_code == 400 and resp.json()["error"] == "issueId is required"
    assert lock_refresh(api, sid, other.runtimeToken, "iss-7", other.workerId).status_code == 403
    assert lock_refresh(api, sid, token, "iss-7", other.workerId).status_code == 403
    assert lock_refresh(api, "ses_nope", token, "iss-7", wid).status_code == 404
    assert lock_refresh(api, sid, org.key, "iss-7", wid).status_code == 401
    stranger = register(api, records.new_org(r))
    assert lock_refresh(api, sid, stranger.runtimeToken, "iss-7").status_code == 404

    # A claimed session nacked back to the queue is no longer held by anyone.
    nacked = records.enqueue(api, org, "app", issueId="iss-9")["sessionId"]
    (item,) = poll(api, reg).work
    assert item.sessionId == nacked
    body = {"workerId": wid, "reason": "spawn failed", "work": go_json_item(item)}
    resp = send(api, "POST", f"/api/sessions/{nacked}/nack", token, body, ua=DAEMON_UA)
    assert resp.status_code == 200
    assert ok(lock_refresh(api, nacked, token, "iss-9", wid), RefreshResponse).refreshed is False


def go_json_item(item: PollWorkItem) -> dict:
    """PollWorkItem marshalled back (every field omitempty), as callNackEndpoint sends it."""
    return {k: v for k, v in item.__dict__.items() if v not in (None, "", 0, {}, [])}


def test_completion_answers(api, org, project):
    reg = register(api, org)
    other = register(api, org)
    sid = records.enqueue(api, org, "app")["sessionId"]
    poll(api, reg)
    token, wid = reg.runtimeToken, reg.workerId
    resp = post_completion(api, sid, token, "Done.", wid)
    assert resp.status_code == 200
    assert resp.json() == {"posted": True, "partsPosted": 1, "totalParts": 1}
    assert post_completion(api, sid, token, "Done again.").status_code == 200  # no workerId
    resp = send(api, "POST", f"/api/sessions/{sid}/completion", token, {"workerId": wid})
    assert resp.status_code == 400 and resp.json() == {"error": "summary is required"}
    resp = send(api, "POST", f"/api/sessions/{sid}/completion", token, {"summary": 5})
    assert resp.status_code == 400
    assert post_completion(api, sid, other.runtimeToken, "x", other.workerId).status_code == 403
    assert post_completion(api, "ses_nope", token, "x", wid).status_code == 404
    assert post_completion(api, sid, "", "x", wid).status_code == 401


# -- 4. Every list in an answer is a JSON array ---------------------------------------------


def pool_deleted(api, org, reg, params: dict) -> HeartbeatResponse:
    """Queue a pool.deleted mutation, deliver it, ack it; returns the answer to the ack."""
    resp = api.post(
        "/api/daemon/mutations",
        org.key,
        json={"workerHostId": reg.workerId, "op": "pool.deleted", "params": params},
    )
    assert resp.status_code == 201, resp.text
    mid = resp.json()["mutation"]["id"]
    (delivered,) = heartbeat(api, reg).pendingMutations
    assert delivered.id == mid and delivered.op == "pool.deleted" and delivered.requestedAt
    return heartbeat(api, reg, appliedMutations=[mid])


@pytest.mark.parametrize(
    ("params", "candidates", "action"),
    [
        ({"poolId": "pool-1"}, [], "deregister"),
        ({"poolId": "pool-1", "candidatePoolIds": []}, [], "deregister"),
        ({"poolId": "pool-1", "candidatePoolIds": ["pool-2"]}, ["pool-2"], "join_candidate_pool"),
    ],
    ids=["no-candidates", "empty-candidates", "one-candidate"],
)
def test_candidate_pool_ids_is_a_list(api, org, params, candidates, action):
    reg = register(api, org)
    for hb in (pool_deleted(api, org, reg, params), heartbeat(api, reg)):
        assert hb.hostStatus == HostStatusDetail("pool_deleted", action, candidates)
        assert hb.pendingMutations == []
    row = next(
        w for w in api.get("/api/workers", org.key).json()["workers"] if w["id"] == reg.workerId
    )
    hs = go_decode(HostStatusDetail, row["hostStatus"])
    assert hs.candidatePoolIds == candidates
    assert poll(api, reg).work == []


def test_candidate_pool_ids_stored_as_an_object_read_as_a_list(api, org, r):
    """A host record written before the fix holds cjson's `{}` for the empty list."""
    reg = register(api, org)
    r.hset(
        keys.host(reg.workerId), mapping={"hostStatus": "pool_deleted", "candidatePoolIds": "{}"}
    )
    assert heartbeat(api, reg).hostStatus.candidatePoolIds == []
    row = next(
        w for w in api.get("/api/workers", org.key).json()["workers"] if w["id"] == reg.workerId
    )
    assert go_decode(HostStatusDetail, row["hostStatus"]).candidatePoolIds == []


def test_empty_lists_in_answers_are_arrays(api, org, project, r):
    """Each list the daemon or a dashboard decodes, empty: pendingMutations, work,
    claimedSessionIds, unclaimedSessions, sessions, signals, workers, projects."""
    reg = register(api, org)
    hb = heartbeat(api, reg)
    assert hb.pendingMutations == []
    polled = poll(api, reg)
    assert polled.work == [] and polled.claimedSessionIds == []
    listing = api.get("/api/sessions", org.key).json()
    assert go_decode(list[Raw], listing["sessions"]) == []
    sid = records.enqueue(api, org, "app")["sessionId"]
    row = next(s for s in api.get("/api/sessions", org.key).json()["sessions"] if s["id"] == sid)
    assert go_decode(list[str], row["health"]["signals"]) == []
    limited = register_limited(api, org)
    row = next(w for w in api.get("/api/workers", org.key).json()["workers"] if w["id"] == limited)
    assert go_decode(list[str], row["projects"]) == []
    gone = api.delete(f"/api/workers/{reg.workerId}", org.key).json()
    assert go_decode(list[str], gone["unclaimedSessions"]) == []
    empty_org = records.new_org(r)
    assert go_decode(list[Raw], api.get("/api/workers", empty_org.key).json()["workers"]) == []


def register_limited(api, org) -> str:
    """A host registered for no project at all (an empty `projects` list)."""
    body = {"hostname": "h-none", "capacity": 1, "projects": []}
    resp = api.post("/api/workers/register", org.key, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()["workerId"]


# -- 5. The cloud runner's per-session authToken --------------------------------------------


def test_runner_token_acts_for_its_session_only(api, org, project, r):
    sid, detail = enqueue(api, org, issueId="iss-5")
    token = detail["authToken"]
    assert token.startswith("rst_") and len(token) == 68
    assert detail["workerId"] == ""  # the cloud-runner detail names no worker
    # Only its SHA-256 is kept.
    assert token not in json.dumps(record(r, sid))

    # Queued, nobody holds it: the token cannot move it, and its lock is not held.
    assert post_running(api, sid, "", token).status_code == 409
    assert ok(lock_refresh(api, sid, token, "iss-5"), RefreshResponse).refreshed is False

    reg = register(api, org)
    assert poll(api, reg).claimedSessionIds == [sid]
    # The runner copies workerId from the detail: "" on status and activity, absent on
    # lock-refresh and completion. The token acts for the host holding the session.
    assert post_running(api, sid, "", token).status_code == 200
    assert post_activity(api, sid, "", token, tool_use("Bash", "Bash: ls")).status_code == 200
    assert record(r, sid)["lastTool"] == "Bash"
    assert ok(lock_refresh(api, sid, token, "iss-5"), RefreshResponse).refreshed is True
    assert post_completion(api, sid, token, "All done.").status_code == 200
    # A workerId it names must be the holder's.
    other = register(api, org)
    assert post_status(api, sid, token, other.workerId, "completed").status_code == 403
    resp = post_status(api, sid, token, reg.workerId, "completed", inputTokens=5)
    assert resp.status_code == 200 and resp.json()["session"]["status"] == "completed"
    assert resp.json()["session"]["workerId"] == reg.workerId

    # Good for no other session, and no other route.
    sid2, _ = enqueue(api, org, issueId="iss-6")
    assert post_running(api, sid2, "", token).status_code == 401
    assert lock_refresh(api, sid2, token, "iss-6").status_code == 401
    assert post_completion(api, sid2, token, "x").status_code == 401
    assert post_activity(api, sid2, "", token, thought("x")).status_code == 401
    assert send(api, "GET", f"/api/daemon/sessions/{sid2}", token).status_code == 401
    assert send(api, "GET", f"/api/workers/{reg.workerId}/poll", token).status_code == 401
    hb = {"activeCount": 0}
    assert send(api, "POST", f"/api/workers/{reg.workerId}/heartbeat", token, hb).status_code == 401
    claim = {"workerId": reg.workerId}
    assert send(api, "POST", f"/api/sessions/{sid2}/claim", token, claim).status_code == 401
    assert send(api, "POST", f"/api/sessions/{sid}/nack", token, claim).status_code == 401
    assert api.get("/api/sessions", token).status_code == 401
    # A made-up token of the right shape, or a wrong shape, is refused.
    forged = "rst_" + secrets.token_hex(32)
    assert post_running(api, sid2, "", forged).status_code == 401
    assert post_running(api, sid2, "", token[:-2]).status_code == 401


# -- 7. Host statuses, and a draining host -------------------------------------------------


def test_a_draining_host_is_offered_no_work(api, org, project):
    reg = register(api, org)
    sid = records.enqueue(api, org, "app")["sessionId"]
    heartbeat(api, reg, status="draining")
    assert poll(api, reg).work == []
    hb = heartbeat(api, reg, status="idle")
    assert hb.hostStatus.status == "ok" and hb.hostStatus.status in HOST_STATUSES
    assert poll(api, reg).claimedSessionIds == [sid]
