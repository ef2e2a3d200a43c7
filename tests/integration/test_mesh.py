"""The agent mesh over real WebSockets and HTTP (the mesh routes, docs/api.md): connect, asks and
acks with replies, answers to questions, blocking questions, ask-waits, queries, notifications with
receipts and traces, broadcasts, ask-many, queued deliveries, events."""

from __future__ import annotations

import secrets
import threading

import pytest
import requests

from tests.support.mesh_client import MeshPeer, refused
from tests.support.waits import wait_for


def circle() -> str:
    return f"c{secrets.token_hex(3)}"


@pytest.fixture
def pair(shim_url):
    c = circle()
    a = MeshPeer(shim_url, "alice", c)
    b = MeshPeer(shim_url, "bob", c)
    yield a, b, c
    a.close()
    b.close()


def peer_info(api, peer_id):
    resp = api.get(f"/peers/{peer_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_connect_registers_and_the_socket_decides_presence(api, shim_url):
    c = circle()
    peer = MeshPeer(shim_url, "solo", c, path="/tmp/solo")
    assert peer.connected["type"] == "connected"
    assert peer.connected["display_name"] == "solo"
    assert peer.peer_id.startswith(f"repow-{c}-")
    info = peer_info(api, peer.peer_id)
    assert (info["status"], info["ws_connected"]) == ("online", True)
    peer.send(type="status", status="busy")
    wait_for(lambda: peer_info(api, peer.peer_id)["status"] == "busy")
    peer.close()
    wait_for(lambda: peer_info(api, peer.peer_id)["status"] == "offline")
    assert peer_info(api, peer.peer_id)["ws_connected"] is False


def test_bad_connect_frames_are_refused_with_repowire_codes(shim_url):
    error, code = refused(shim_url, {"type": "hello"})
    assert code == 4000 and error["type"] == "error"
    error, code = refused(shim_url, {"type": "connect", "display_name": "bad name!"})
    assert code == 4002 and "display_name" in error["error"]
    error, code = refused(
        shim_url, {"type": "connect", "display_name": "x", "backend": "vim", "circle": "c"}
    )
    assert code == 4002 and "backend" in error["error"].lower()


def test_ask_reaches_the_socket_and_an_ack_with_message_reaches_the_asker(api, pair):
    alice, bob, c = pair
    resp = api.post(
        "/ask", json={"from_peer": "alice", "to_peer": "bob", "text": "ready?", "circle": c}
    )
    assert resp.status_code == 200, resp.text
    cid = resp.json()["correlation_id"]
    assert resp.json() == {"correlation_id": cid, "error": None}
    frame = bob.expect("ask")
    assert frame["correlation_id"] == cid and frame["from_peer"] == "alice"
    assert frame["text"].startswith("ready?\n")
    pending = api.get("/asks/pending", params={"peer_id": bob.peer_id}).json()["asks"]
    assert [a["correlation_id"] for a in pending] == [cid]
    assert pending[0]["direction"] == "inbound"
    outbound = api.get(
        "/asks/pending", params={"peer_id": alice.peer_id, "direction": "outbound"}
    ).json()["asks"]
    assert [a["correlation_id"] for a in outbound] == [cid]

    resp = api.post("/ack", json={"correlation_id": cid, "message": "yes, go"})
    assert resp.status_code == 200, resp.text
    reply = alice.expect("notify")
    assert reply["text"] == f"[ack #{cid} from @bob] yes, go"
    assert api.get("/asks/pending", params={"peer_id": bob.peer_id}).json()["asks"] == []
    # Closed: a bare ack again is idempotent, a message is 410.
    assert api.post("/ack", json={"correlation_id": cid}).status_code == 200
    late = api.post("/ack", json={"correlation_id": cid, "message": "again"})
    assert late.status_code == 410 and "already closed" in late.json()["detail"]
    stages = [s["stage"] for s in api.get(f"/traces/{cid}").json()["stages"]]
    assert stages[:4] == ["created", "resolved_peer", "routed", "websocket_sent"]
    assert stages[-1] == "acked"


def test_ask_errors(api, shim_url):
    c = circle()
    ghost = f"ghost-{secrets.token_hex(3)}"
    assert api.post("/ask", json={"from_peer": "x", "to_peer": ghost, "text": "t"}).json() == {
        "detail": f"Peer not found: {ghost}"
    }
    # Registered but no socket: 503, and the ask is not kept open.
    api.post("/peers", json={"name": "sleeper", "circle": c}).raise_for_status()
    resp = api.post("/ask", json={"from_peer": "x", "to_peer": "sleeper", "text": "t", "circle": c})
    assert resp.status_code == 503 and "no live connection" in resp.json()["detail"]
    sleeper = api.get(f"/peers/sleeper?circle={c}").json()
    assert api.get("/asks/pending", params={"peer_id": sleeper["peer_id"]}).json()["asks"] == []
    # Another circle's agent is out of reach without bypass_circle.
    other = MeshPeer(shim_url, "far", circle())
    near = MeshPeer(shim_url, "near", c)
    try:
        body = {"from_peer": "near", "to_peer": other.peer_id, "text": "t"}
        assert api.post("/ask", json=body).status_code == 403
        assert api.post("/ask", json={**body, "bypass_circle": True}).status_code == 200
    finally:
        other.close()
        near.close()
    assert api.post("/ack", json={"correlation_id": "ask-00000000"}).status_code == 404
    assert api.get("/asks/pending").status_code == 400


def test_answer_a_question_first_answer_wins(api, pair):
    _, bob, c = pair
    question = {"kind": "choice", "options": [{"id": "yes", "title": "Yes"}]}
    body = {
        "from_peer": "alice",
        "to_peer": "bob",
        "text": "deploy?",
        "question": question,
        "circle": c,
    }
    cid = api.post("/ask", json=body).json()["correlation_id"]
    assert bob.expect("ask")["question"]["kind"] == "choice"
    bad = api.post("/answer", json={"correlation_id": cid, "option_id": "maybe"})
    assert bad.status_code == 422 and bad.json()["detail"] == "unknown option_id: maybe"
    assert api.post("/answer", json={"correlation_id": cid, "option_id": "yes"}).status_code == 200
    again = api.post("/answer", json={"correlation_id": cid, "option_id": "yes"})
    assert again.status_code == 410
    plain = api.post("/ask", json={**body, "question": None}).json()["correlation_id"]
    assert api.post("/answer", json={"correlation_id": plain, "text": "x"}).status_code == 422
    assert api.post("/answer", json={"correlation_id": "ask-ffffffff"}).status_code == 404


def test_blocking_tool_permission_times_out_denied(api):
    body = {
        "prompt": "rm -rf build?",
        "options": [{"id": "allow", "title": "Allow"}],
        "scope": "tool_permission",
        "timeout_seconds": 0.5,
    }
    resp = api.post("/questions/ask-blocking", json=body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["outcome"] == "denied" and answer["option_id"] is None
    assert answer["timeout_seconds"] == 0.5  # the wait it asked for, under the cap
    # The default answer was recorded like any answer: a late one is 410.
    late = api.post(
        "/answer", json={"correlation_id": answer["correlation_id"], "option_id": "allow"}
    )
    assert late.status_code == 410
    other = api.post("/questions/ask-blocking", json={"prompt": "?", "timeout_seconds": 0.2})
    assert other.json()["outcome"] == "timed_out"
    no_options = api.post("/questions/ask-blocking", json={**body, "options": []})
    assert no_options.status_code == 422


def test_blocking_question_is_released_by_an_answer(api):
    cid = f"pretool-{secrets.token_hex(4)}"
    body = {
        "prompt": "push?",
        "options": [{"id": "allow", "title": "Allow"}],
        "scope": "tool_permission",
        "timeout_seconds": 20,
        "correlation_id": cid,
    }
    out = {}
    waiter = threading.Thread(
        target=lambda: out.update(api.post("/questions/ask-blocking", json=body).json())
    )
    waiter.start()
    wait_for(
        lambda: (
            api.post("/answer", json={"correlation_id": cid, "option_id": "allow"}).status_code
            == 200
        )
    )
    waiter.join(10)
    assert out == {
        "correlation_id": cid,
        "outcome": "answered",
        "option_id": "allow",
        "message": None,
        "timeout_seconds": 20.0,
    }


def test_blocking_question_answers_the_wait_it_was_cut_to(api):
    """A wait past the cap is not refused (repowire's hook denies on anything but 200) but cut
    to 55 s, and the answer says so."""
    cid = f"pretool-{secrets.token_hex(4)}"
    body = {"prompt": "deploy?", "options": [{"id": "allow", "title": "Allow"}]}
    out = {}
    waiter = threading.Thread(
        target=lambda: out.update(
            api.post(
                "/questions/ask-blocking",
                json={**body, "timeout_seconds": 900, "correlation_id": cid},
            ).json()
        )
    )
    waiter.start()
    wait_for(
        lambda: (
            api.post("/answer", json={"correlation_id": cid, "option_id": "allow"}).status_code
            == 200
        )
    )
    waiter.join(10)
    assert out["outcome"] == "answered" and out["timeout_seconds"] == 55.0
    # No timeout_seconds: the default wait, 45 s (the retry answers the recorded answer at once).
    again = api.post("/questions/ask-blocking", json={**body, "correlation_id": cid})
    assert again.json()["timeout_seconds"] == 45.0 and again.json()["outcome"] == "answered"


def test_ask_wait_pulls_the_reply(api, pair):
    alice, bob, c = pair
    body = {"from_peer": "alice", "to_peer": "bob", "text": "sum?", "circle": c}
    cid = api.post("/ask", json=body).json()["correlation_id"]
    bob.expect("ask")
    wrong = api.post(f"/asks/{cid}/wait", json={"peer_id": bob.peer_id, "timeout_seconds": 0.1})
    assert wrong.status_code == 403 and wrong.json()["detail"]["error"] == "not_the_asker"
    pending = api.post(f"/asks/{cid}/wait", json={"peer_id": alice.peer_id, "timeout_seconds": 0.1})
    assert pending.json() == {"correlation_id": cid, "status": "pending"}
    out = {}
    waiter = threading.Thread(
        target=lambda: out.update(
            api.post(
                f"/asks/{cid}/wait", json={"peer_id": alice.peer_id, "timeout_seconds": 20}
            ).json()
        )
    )
    waiter.start()
    assert api.post("/ack", json={"correlation_id": cid, "message": "42"}).status_code == 200
    waiter.join(10)
    assert out["status"] == "resolved" and out["reply"] == "42"
    assert out["close_reason"] == "ack_with_msg" and out["responder"] == "bob"
    # Pull mode: the reply was not typed into the asker's pane.
    assert all(f.get("type") != "notify" for f in list(alice.frames.queue))


def test_query_returns_the_response_frame(api, pair):
    _, bob, _ = pair
    out = {}
    asker = threading.Thread(
        target=lambda: out.update(
            api.post(
                "/query", json={"to_peer": bob.peer_id, "text": "status?", "timeout": 20}
            ).json()
        )
    )
    asker.start()
    frame = bob.expect("query")
    bob.send(type="response", correlation_id=frame["correlation_id"], text="all green")
    asker.join(10)
    assert out == {"text": "all green", "error": None, "status": None}
    unknown = api.post("/query", json={"to_peer": "nobody-here", "text": "?"}).json()
    assert unknown["error"] == "Unknown peer: nobody-here"


def test_notify_with_receipt_is_traced(api, pair):
    _, bob, c = pair
    body = {"from_peer": "alice", "to_peer": "bob", "text": "fyi", "circle": c}
    resp = api.post("/notify", json=body)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["ok"] and body["status"] == "sent" and body["delivered"] is True
    assert body["delivery_id"].startswith("notif-delivery-")
    frame = bob.expect("notify")
    assert (frame["text"], frame["from_peer"], frame["delivery_id"]) == (
        "fyi",
        "alice",
        body["delivery_id"],
    )
    bob.send(type="receipt", delivery_id=frame["delivery_id"], status="injected")
    trace_url = f"/traces/{body['delivery_id']}"

    def stages():
        return [s["stage"] for s in api.get(trace_url).json().get("stages", [])]

    wait_for(lambda: "pane_injected" in stages())
    assert stages() == [
        "created",
        "resolved_peer",
        "routed",
        "websocket_sent",
        "hook_received",
        "pane_injected",
    ]
    trace = api.get(trace_url).json()
    assert trace["kind"] == "notify"  # as repowire names a notify's trace
    assert all(
        {"seq", "stage", "status", "peer_id", "ts", "detail"} <= set(s) for s in trace["stages"]
    )


def test_notify_to_a_polling_peer_is_queued_and_drained(api, shim_url):
    c = circle()
    meta = {"repowire_cli_fallback": True}
    peer_id = api.post("/peers", json={"name": "poller", "circle": c, "metadata": meta}).json()[
        "peer_id"
    ]
    resp = api.post("/notify", json={"from_peer": "cli", "to_peer": peer_id, "text": "later"})
    assert resp.status_code == 200 and resp.json()["status"] == "queued"
    drained = api.get("/deliveries/pending", params={"peer_id": peer_id}).json()["deliveries"]
    assert [(d["kind"], d["text"]) for d in drained] == [("notify", "later")]
    assert api.get("/deliveries/pending", params={"peer_id": peer_id}).json() == {"deliveries": []}
    gone = api.post("/notify", json={"from_peer": "cli", "to_peer": "no-such", "text": "x"})
    assert gone.status_code == 404


def test_notify_to_a_peer_with_no_socket_is_queued_and_pushed_on_connect(api, shim_url):
    """As repowire: a notify to a registered peer with no live socket (no polling metadata)
    answers `queued` with its delivery id; the peer's next socket gets it on connect."""
    c = circle()
    peer_id = api.post("/peers", json={"name": "napper", "circle": c}).json()["peer_id"]
    body = {"from_peer": "cli", "to_peer": "napper", "circle": c, "text": "while you slept"}
    resp = api.post("/notify", json=body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert (answer["status"], answer["queued"], answer["reason"]) == (
        "queued",
        True,
        "queued_delivery",
    )
    assert answer["to_peer_id"] == peer_id and answer["delivery_id"].startswith("notif-delivery-")
    stages = [s["stage"] for s in api.get(f"/traces/{answer['delivery_id']}").json()["stages"]]
    # No failure stage: the notify did not fail, it waits (`repowire trace` exits 0 for it).
    assert stages == ["created", "resolved_peer", "pending"]
    napper = MeshPeer(shim_url, "napper", c)
    try:
        assert napper.peer_id == peer_id
        frame = napper.expect("notify")
        assert (frame["delivery_id"], frame["from_peer"], frame["text"]) == (
            answer["delivery_id"],
            "cli",
            "while you slept",
        )
        # Pushed once: nothing is left to drain.
        drained = api.get("/deliveries/pending", params={"peer_id": peer_id}).json()
        assert drained == {"deliveries": []}
    finally:
        napper.close()


def test_a_peers_queue_keeps_its_newest_100_deliveries(api):
    """Notifies to a peer with no socket are queued, at most 100 (repowire's cap): past it the
    oldest goes."""
    c = circle()
    peer_id = api.post("/peers", json={"name": "away", "circle": c}).json()["peer_id"]
    for i in range(103):
        body = {"from_peer": f"s{i % 3}", "to_peer": peer_id, "text": f"n{i}"}
        assert api.post("/notify", json=body).json()["status"] == "queued"
    drained = api.get("/deliveries/pending", params={"peer_id": peer_id, "max_results": 500})
    assert [d["text"] for d in drained.json()["deliveries"]] == [f"n{i}" for i in range(3, 103)]


def test_broadcast_and_ask_many(api, pair):
    _alice, bob, c = pair
    carol = MeshPeer(api.base, "carol", c)
    try:
        body = {"from_peer": "alice", "text": "hi all", "circle": c}
        out = api.post("/broadcast", json=body).json()
        # Display names, as repowire 0.17 answers.
        assert set(out["sent_to"]) >= {"bob", "carol"}
        assert "alice" not in out["sent_to"] and out["failed"] == []
        assert bob.expect("broadcast")["text"] == "hi all"
        many = api.post(
            "/ask-many",
            json={
                "from_peer": "alice",
                "to_peers": ["bob", "carol", "ghost"],
                "text": "vote",
                "circle": c,
            },
        ).json()
        children = {ch["peer"]: ch for ch in many["children"]}
        assert children["bob"]["delivered"] and children["carol"]["delivered"]
        assert children["ghost"]["error"] == "Peer not found: ghost"
        cid = children["bob"]["correlation_id"]
        api.post("/ack", json={"correlation_id": cid, "message": "yes"}).raise_for_status()
        status = api.get(f"/ask-many/{many['parent_id']}").json()
        assert status["rollup"] == {"total": 3, "acked": 0, "replied": 1, "pending": 1, "failed": 1}
        assert status["state"] == "pending"
        assert api.get("/ask-many/askm-00000000").status_code == 404
    finally:
        carol.close()


def test_events_list_and_stream(api, pair):
    _, _, c = pair
    body = {"from_peer": "alice", "to_peer": "bob", "text": "evt", "circle": c}
    assert api.post("/notify", json=body).status_code == 200
    events = api.get("/events").json()
    assert isinstance(events, list)
    assert any(e["type"] == "notify" and e["text"] == "evt" for e in events)
    assert all({"id", "type", "timestamp"} <= set(e) for e in events)
    with requests.get(api.base + "/events/stream", stream=True, timeout=10) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        lines = stream.iter_lines(decode_unicode=True)
        first = next(line for line in lines if line)
        assert first.startswith("data: ")
