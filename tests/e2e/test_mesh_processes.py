"""The mesh across shim processes: two gunicorn masters (two workers each) on one Redis. A
socket held by one process receives what is posted to the other; a wait held by one is
released by an answer posted to the other; a restart of every shim process loses nothing."""

from __future__ import annotations

import secrets
import threading

import pytest
import requests

from tests.support.mesh_client import MeshPeer
from tests.support.stack import Stack
from tests.support.waits import wait_for


@pytest.fixture(scope="module")
def shims(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mesh")
    # Two shims on one Redis (the first stack's own).
    with Stack(tmp / "one") as one, Stack(tmp / "two", redis_url=one.redis_url) as two:
        for s in (one, two):
            s.gunicorn()
        yield one, two


def post(stack: Stack, path: str, **body):
    return requests.post(stack.url + path, json=body, timeout=60)


def test_socket_on_one_process_receives_what_is_posted_to_the_other(shims):
    one, two = shims
    c = f"c{secrets.token_hex(3)}"
    bob = MeshPeer(one.url, "bob", c)
    try:
        ask = post(two, "/ask", from_peer="cli", to_peer="bob", text="hello", circle=c)
        assert ask.status_code == 200, ask.text
        assert bob.expect("ask")["correlation_id"] == ask.json()["correlation_id"]
        sent = post(two, "/notify", from_peer="cli", to_peer="bob", text="fyi", circle=c)
        assert sent.status_code == 200 and sent.json()["status"] == "sent"
        assert bob.expect("notify")["text"] == "fyi"
        trace = requests.get(f"{two.url}/traces/{sent.json()['delivery_id']}", timeout=10)
        assert "routed" in [s["stage"] for s in trace.json()["stages"]]
    finally:
        bob.close()


def test_blocking_question_on_one_is_released_by_an_answer_on_the_other(shims):
    one, two = shims
    cid = f"pretool-{secrets.token_hex(4)}"
    out: dict = {}
    body = {
        "prompt": "allow?",
        "options": [{"id": "allow", "title": "Allow"}],
        "scope": "tool_permission",
        "timeout_seconds": 30,
        "correlation_id": cid,
    }
    waiter = threading.Thread(
        target=lambda: out.update(post(one, "/questions/ask-blocking", **body).json())
    )
    waiter.start()
    wait_for(
        lambda: post(two, "/answer", correlation_id=cid, option_id="allow").status_code == 200,
        timeout=10,
    )
    waiter.join(15)
    assert out == {
        "correlation_id": cid,
        "outcome": "answered",
        "option_id": "allow",
        "message": None,
        "timeout_seconds": 30.0,
    }


def test_ask_wait_on_one_is_resolved_by_an_ack_on_the_other(shims):
    one, two = shims
    c = f"c{secrets.token_hex(3)}"
    alice, bob = MeshPeer(one.url, "alice", c), MeshPeer(two.url, "bob", c)
    try:
        cid = post(one, "/ask", from_peer="alice", to_peer="bob", text="q", circle=c).json()[
            "correlation_id"
        ]
        bob.expect("ask")
        out: dict = {}
        wait = {"peer_id": alice.peer_id, "timeout_seconds": 30}
        waiter = threading.Thread(
            target=lambda: out.update(post(one, f"/asks/{cid}/wait", **wait).json())
        )
        waiter.start()
        wait_for(lambda: requests.get(f"{one.url}/traces/{cid}", timeout=5).ok)
        assert post(two, "/ack", correlation_id=cid, message="done").status_code == 200
        waiter.join(15)
        assert out["status"] == "resolved" and out["reply"] == "done"
    finally:
        alice.close()
        bob.close()


def test_a_restart_of_every_shim_loses_no_ask_delivery_schedule_or_trace(shims):
    one, two = shims
    c = f"c{secrets.token_hex(3)}"
    bob = MeshPeer(one.url, "bob", c)
    poller = post(
        one, "/peers", name="poller", circle=c, metadata={"repowire_cli_fallback": True}
    ).json()["peer_id"]
    cid = post(one, "/ask", from_peer="cli", to_peer="bob", text="keep me", circle=c).json()[
        "correlation_id"
    ]
    bob.expect("ask")
    queued = post(one, "/notify", from_peer="cli", to_peer=poller, text="queued").json()
    schedule = post(
        two,
        "/schedules",
        from_peer="cli",
        to_peer="bob",
        circle=c,
        text="later",
        fire_at="2999-01-01T00:00:00Z",
    ).json()["schedule_id"]
    bob.close()
    one.stop_all()
    two.stop_all()
    one.gunicorn()
    two.gunicorn()
    peer_id = requests.get(f"{two.url}/peers/bob?circle={c}", timeout=10).json()["peer_id"]
    pending = requests.get(f"{two.url}/asks/pending", params={"peer_id": peer_id}, timeout=10)
    assert [a["correlation_id"] for a in pending.json()["asks"]] == [cid]
    drained = requests.get(
        f"{one.url}/deliveries/pending", params={"peer_id": poller}, timeout=10
    ).json()["deliveries"]
    assert [d["delivery_id"] for d in drained] == [queued["delivery_id"]]
    kept = requests.get(f"{one.url}/schedules/{schedule}", timeout=10)
    assert kept.status_code == 200 and kept.json()["text"] == "later"
    stages = requests.get(f"{two.url}/traces/{cid}", timeout=10).json()["stages"]
    assert [s["stage"] for s in stages][:3] == ["created", "resolved_peer", "routed"]
    # The ask is still answerable after the restart, and the peer reconnects to either.
    again = MeshPeer(two.url, "bob", c)
    try:
        assert again.peer_id == peer_id
        assert post(one, "/ack", correlation_id=cid, message="late but here").status_code == 200
    finally:
        again.close()
