"""Rotating the runtime JWT signing key under load, as docs/operations.md says, across two shim
processes (gunicorn masters) restarted one at a time with new settings while worker hosts keep
heartbeating and polling over real HTTP:

1. every shim learns the new key as one that only verifies (`JWT_VERIFY_SECRETS=[new]`);
2. every shim signs with the new key and keeps the old one to verify (`JWT_SECRET=new`,
   `JWT_VERIFY_SECRETS=[old]`);
3. the old key is dropped (`JWT_VERIFY_SECRETS=[]`).

Through steps 1 and 2 every request succeeds: tokens of the old key (and a token without `kid`,
as minted before tokens carried one), and tokens refreshed meanwhile, on either shim. Tokens
refreshed after step 2 carry the new key's kid. After step 3 the old tokens are refused with a
401 in the platform envelope. A client whose shim is restarting sends to the other (as a load
balancer would); those are counted, not failures.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import jwt
import pytest
import requests

from api_shim import tokens
from dispatchyard.cli.devstack import free_port
from tests.support import records
from tests.support.http import Api
from tests.support.stack import BIN, Stack
from tests.support.waits import wait_for

OLD, NEW = "rotation-old-secret-" * 3, "rotation-new-secret-" * 3
KID_OLD, KID_NEW = tokens.kid_of("HS256", OLD), tokens.kid_of("HS256", NEW)
HOSTS = 6  # half keep their first token, half refresh theirs as they go
SHIMS = ("shim-a", "shim-b")
# No answer from a shim that is restarting (refused, or the connection closed under the
# request): the client sends to the other shim, as a load balancer would.
CUT_OFF = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


@dataclass
class Load:
    """What the host threads did, by phase."""

    phase: str = "old key"
    requests: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    failovers: int = 0
    by_kid: Counter[str] = field(default_factory=Counter)  # requests by their token's kid
    kids: dict[str, set[str]] = field(default_factory=dict)  # kids of tokens refreshed, by phase
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)


@pytest.fixture
def stack(tmp_path_factory):
    # No request budgets: the load would spend them, and 429s are not what this test is about.
    with Stack(
        tmp_path_factory.mktemp("rotation"),
        DISPATCHYARD_API_RATE_PER_S="0",
        DISPATCHYARD_HOST_RATE_PER_S="0",
    ) as s:
        yield s


def start_shim(stack: Stack, name: str, port: int, secret: str, *verify: str) -> None:
    argv = [str(BIN / "gunicorn"), "api_shim.wsgi:app", "--worker-class", "gthread"]
    argv += ["--workers", "2", "--threads", "8", "--bind", f"127.0.0.1:{port}"]
    stack.start(
        name,
        argv,
        DISPATCHYARD_JWT_SECRET=secret,
        DISPATCHYARD_JWT_VERIFY_SECRETS=",".join(verify),
    )

    def healthy() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    wait_for(healthy, timeout=60, message=f"{name} to answer")


def kid_of_token(token: str) -> str | None:
    kid: str | None = jwt.get_unverified_header(token).get("kid")
    return kid


def test_signing_key_rotation_under_load(stack):
    ports = {name: free_port() for name in SHIMS}
    apis = {name: Api(f"http://127.0.0.1:{port}") for name, port in ports.items()}
    for name in SHIMS:
        start_shim(stack, name, ports[name], OLD)

    org = records.new_org(stack.r)
    records.project(apis["shim-a"], org)
    hosts = [records.register(apis[SHIMS[i % 2]], org) for i in range(HOSTS)]
    assert {kid_of_token(h["runtimeToken"]) for h in hosts} == {KID_OLD}
    # A token as minted before tokens carried a kid: the same claims, signed with the old key.
    legacy_claims = jwt.decode(hosts[0]["runtimeToken"], options={"verify_signature": False})
    legacy = jwt.encode(legacy_claims, OLD, algorithm="HS256")
    load = Load()

    def send(worker_id: str, token: str, shim: str, n: int) -> requests.Response:
        if n % 2:
            path, body = f"/api/workers/{worker_id}/heartbeat", {"activeCount": 0}
            return apis[shim].post(path, token, json=body)
        return apis[shim].get(f"/api/workers/{worker_id}/poll", token)

    def host_loop(index: int, token: str) -> None:
        try:
            host_requests(index, token)
        except Exception as e:  # reported, never a thread that dies silently
            with load.lock:
                load.failures.append(f"{load.phase} host {index}: {e!r}")

    def host_requests(index: int, token: str) -> None:
        worker_id = hosts[index]["workerId"]
        refreshes = index % 2 == 1
        for n in itertools.count():
            if load.stop.is_set():
                return
            shim = SHIMS[n % 2]
            if refreshes and n % 10 == 9:
                path = f"/api/workers/{worker_id}/refresh-token"
                for attempt in (shim, SHIMS[(n + 1) % 2]):
                    try:
                        resp = apis[attempt].post(path, org.key)
                        break
                    except CUT_OFF:
                        with load.lock:
                            load.failovers += 1
                else:
                    continue
                if resp.status_code != 200:
                    with load.lock:
                        load.failures.append(f"refresh {resp.status_code} {resp.text}")
                    continue
                token = resp.json()["runtimeToken"]
                with load.lock:
                    load.kids.setdefault(load.phase, set()).add(kid_of_token(token) or "")
            for attempt in (shim, SHIMS[(n + 1) % 2]):
                phase = load.phase
                try:
                    resp = send(worker_id, token, attempt, n)
                except CUT_OFF:  # that shim is restarting: the other one
                    with load.lock:
                        load.failovers += 1
                    continue
                with load.lock:
                    load.requests[phase] += 1
                    load.by_kid[kid_of_token(token) or "none"] += 1
                    if resp.status_code != 200:
                        load.failures.append(f"{phase} {attempt} {resp.status_code} {resp.text}")
                break

    threads = [
        threading.Thread(target=host_loop, args=(i, hosts[i]["runtimeToken"]), daemon=True)
        for i in range(HOSTS)
    ]
    threads.append(threading.Thread(target=host_loop, args=(0, legacy), daemon=True))
    for thread in threads:
        thread.start()

    def settle(minimum: int = 200) -> None:
        """Let the load run on in this phase for `minimum` more requests."""
        target = load.requests[load.phase] + minimum
        wait_for(
            lambda: load.failures or load.requests[load.phase] >= target,
            timeout=60,
            message=load.phase,
        )
        assert not load.failures, load.failures[:5]

    def roll(phase: str, secret: str, *verify: str) -> None:
        """Restart the shims one at a time with the new settings (the load, if running, runs
        on)."""
        load.phase = phase
        for name in SHIMS:
            stack.stop(name)
            start_shim(stack, name, ports[name], secret, *verify)
            if not load.stop.is_set():
                settle()

    started = time.monotonic()
    settle()
    roll("new key announced", OLD, NEW)
    roll("new key current", NEW, OLD)
    settle(400)
    load.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    total = sum(load.requests.values())
    print(
        f"\nrotation under load: {total} requests in {time.monotonic() - started:.1f} s "
        f"({dict(load.requests)}), {len(load.failures)} failures, "
        f"{load.failovers} sent to the other shim while one restarted; by token kid "
        f"(old {KID_OLD}, new {KID_NEW}): {dict(load.by_kid)}"
    )
    assert not load.failures, load.failures[:5]
    assert load.kids["new key announced"] == {KID_OLD}  # the new key only verifies yet
    assert KID_NEW in load.kids["new key current"]
    assert load.failovers > 0, "no request met a restarting shim"

    # After the last shim restarted with the new key current, tokens minted carry its kid.
    fresh = apis["shim-b"].post(f"/api/workers/{hosts[1]['workerId']}/refresh-token", org.key)
    assert kid_of_token(fresh.json()["runtimeToken"]) == KID_NEW

    # The old key dropped: its tokens (with or without kid) are refused, the new ones are not.
    roll("old key dropped", NEW)
    for name in SHIMS:
        for token in (hosts[0]["runtimeToken"], legacy):
            resp = apis[name].get(f"/api/workers/{hosts[0]['workerId']}/poll", token)
            assert resp.status_code == 401, resp.text
            assert resp.json() == {"error": "Unauthorized"}
            assert resp.headers["WWW-Authenticate"] == "Bearer"
        token = fresh.json()["runtimeToken"]
        assert apis[name].get(f"/api/workers/{hosts[1]['workerId']}/poll", token).ok
