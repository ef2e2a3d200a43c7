"""The peer routes (docs/api.md) over HTTP against Redis: registration and retirement, lists
and their filters, lookups by id, name and pane, removal, descriptions, circles, the circle
orchestrator and session updates. A connection is simulated with `connections.connect` (it
records that a shim process holds the peer's socket) except where a real WebSocket is needed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys

import pytest

from dispatchyard.state import asks, clock, connections, events, keys
from dispatchyard.state.errors import Conflict
from dispatchyard.state.models import PeerState
from tests.support.mesh_client import MeshPeer
from tests.support.waits import wait_for

NODE = "test-node"

PEER_INFO_KEYS = {
    "peer_id",
    "name",
    "display_name",
    "path",
    "machine",
    "tmux_session",
    "backend",
    "model",
    "circle",
    "role",
    "status",
    "turn_state",
    "last_seen",
    "metadata",
    "description",
    "ws_connected",
    "hook_supports_receipts",
    "last_successful_injection_at",
    "last_injection_failure_at",
    "pending_ask_count",
    "oldest_pending_age_seconds",
    "pane_safe",
    "inbound_status",
}


def circle() -> str:
    return f"c{secrets.token_hex(4)}"


def register(api, name, circle_="global", status=200, **body):
    resp = api.post("/peers", json={"name": name, "circle": circle_, **body})
    assert resp.status_code == status, resp.text
    return resp.json()


def info(api, ident, **params):
    resp = api.get(f"/peers/{ident}", params=params)
    assert resp.status_code == 200, resp.text
    return resp.json()


def connect(r, peer_id):
    connections.connect(r, peer_id, NODE, clock.now_ms())


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(done.stdout)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    return pid


# --- register -------------------------------------------------------------------------------


def test_a_socket_connect_keeps_the_registered_machine(api, shim_url):
    c = circle()
    peer_id = register(api, "vm-agent", c, machine="vm", model="m-1")["peer_id"]
    assert info(api, peer_id)["machine"] == "vm"
    # The connect frame names no machine (nor model): they stay what the registration said.
    peer = MeshPeer(shim_url, "vm-agent", c, path="/work/vm")
    try:
        assert peer.peer_id == peer_id
        shown = info(api, peer_id)
        assert shown["status"] == "online" and shown["ws_connected"] is True
        assert (shown["machine"], shown["model"], shown["path"]) == ("vm", "m-1", "/work/vm")
        listed = api.get("/peers", params={"circle": c}).json()["peers"]
        assert [(p["peer_id"], p["machine"]) for p in listed] == [(peer_id, "vm")]
    finally:
        peer.close()


def test_register_answers_the_identity_and_a_peer_without_a_socket_is_offline(api, r):
    c = circle()
    body = {
        "path": "/work/a",
        "tmux_session": "s:1",
        "pane_id": f"%{secrets.randbelow(10**8)}",
        "backend": "codex",
        "model": "gpt-5",
        "role": "service",
        "turn_state": "idle",
        "agent_pid": os.getpid(),
        "metadata": {"branch": "main", "capabilities": ["delivery_receipts"]},
    }
    out = register(api, "alpha", c, **body)
    assert set(out) == {"ok", "peer_id", "display_name", "pane_assigned"}
    assert out["ok"] is True and out["display_name"] == "alpha" and out["pane_assigned"] is True
    assert out["peer_id"].startswith(f"repow-{c}-")

    peer = info(api, out["peer_id"])
    assert set(peer) == PEER_INFO_KEYS
    assert peer["name"] == peer["display_name"] == "alpha"
    assert (peer["status"], peer["ws_connected"], peer["inbound_status"]) == (
        "offline",
        False,
        "offline",
    )
    assert peer["backend"] == "codex" and peer["model"] == "gpt-5" and peer["role"] == "service"
    assert peer["path"] == "/work/a" and peer["tmux_session"] == "s:1"
    assert peer["turn_state"] == "idle" and peer["metadata"]["branch"] == "main"
    assert peer["machine"]  # the daemon's host name when the body names none, as repowire
    assert peer["description"] == "" and peer["pending_ask_count"] == 0
    assert peer["oldest_pending_age_seconds"] is None and peer["pane_safe"] is None
    assert clock.parse_ms(peer["last_seen"]) is not None

    # The alias, the same name in the same circle: the same peer; the model it does not report
    # is kept. Without a pane, `pane_assigned` is vacuously true (as repowire).
    again = api.post("/peer/register", json={"name": "alpha", "circle": c, "backend": "codex"})
    assert again.status_code == 200, again.text
    assert again.json()["peer_id"] == out["peer_id"] and again.json()["pane_assigned"] is True
    assert info(api, out["peer_id"])["model"] == "gpt-5"


def test_a_connected_peer_is_online_and_its_inbound_status_follows_its_hook(api, r):
    c = circle()
    plain = register(api, "plain", c)["peer_id"]
    receipts = register(api, "receipts", c, metadata={"capabilities": ["delivery_receipts"]})
    connect(r, plain)
    connect(r, receipts["peer_id"])
    shown = info(api, plain)
    assert (shown["status"], shown["ws_connected"]) == ("online", True)
    assert shown["inbound_status"] == "legacy_unverified"
    assert shown["hook_supports_receipts"] is False
    shown = info(api, receipts["peer_id"])
    assert (shown["inbound_status"], shown["hook_supports_receipts"]) == ("online", True)
    # Registering again while the socket holds it keeps it online.
    register(api, "plain", c)
    assert info(api, plain)["status"] == "online"


def test_inbound_asks_are_counted(api, r):
    c = circle()
    peer_id = register(api, "asked", c)["peer_id"]
    now = clock.now_ms()
    for _ in range(2):
        asks.open_ask(
            r, from_peer="cli", to_peer_id=peer_id, to_peer="asked", text="hi", now_ms=now
        )
    clock.advance(30)
    shown = info(api, "asked", circle=c)
    assert shown["pending_ask_count"] == 2
    assert 29 <= shown["oldest_pending_age_seconds"] <= 40
    listed = api.get("/peers", params={"circle": c}).json()["peers"]
    assert [p["pending_ask_count"] for p in listed if p["peer_id"] == peer_id] == [2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "bad name"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"name": ""}, "name"),
        ({"name": "ok", "backend": "cobol"}, "backend"),
        ({"name": "ok", "role": "king"}, "role"),
        ({"name": "ok", "turn_state": "napping"}, "turn_state"),
        ({"name": "ok", "circle_source": "guess"}, "circle_source"),
        ({"name": "ok", "circle": "no spaces"}, "circle"),
        ({"name": "ok", "peer_id": "not-an-id"}, "peer_id"),
        ({"name": "ok", "agent_pid": "many"}, "agent_pid"),
        ({}, "name"),
    ],
)
def test_register_validation_is_422_fastapi_style(api, body, field):
    resp = api.post("/peers", json=body)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    assert any(err["loc"] == ["body", field] for err in detail), detail


def test_register_malformed_or_missing_body(api):
    missing = api.post("/peers")
    assert missing.status_code == 422
    assert missing.json()["detail"][0]["loc"] == ["body"]
    bad = api.post("/peers", data="{nope", headers={"Content-Type": "application/json"})
    assert bad.status_code == 422
    circle_msg = api.post("/peers", json={"name": "ok", "circle": "a b"}).json()["detail"][0]
    assert "Circle must match" in circle_msg["msg"]


# --- retire ---------------------------------------------------------------------------------


def test_terminal_offline_retires_and_only_a_live_agent_registers_it_again(api, r):
    c = circle()
    peer_id = register(api, "ghost", c, agent_pid=os.getpid())["peer_id"]
    connect(r, peer_id)
    listener = r.pubsub()
    listener.subscribe(keys.node_channel(NODE))
    assert listener.get_message(timeout=5)["type"] == "subscribe"

    resp = api.post(f"/peers/ghost/offline?circle={c}", json={"terminal": True, "reason": "end"})
    assert resp.json() == {"ok": True, "cancelled_queries": 0}
    # The socket is severed at once, and its holder is asked to send the error and close 4004.
    message = listener.get_message(timeout=5)
    listener.close()
    assert message is not None and message["type"] == "message"
    assert json.loads(message["data"]) == {
        "peer_id": peer_id,
        "close": {
            "code": 4004,
            "reason": "peer retired",
            "frame": {"type": "error", "code": "peer_retired", "error": "Peer is retired"},
        },
    }
    assert r.get(keys.peer_ws(peer_id)) is None
    shown = info(api, peer_id)
    assert (shown["status"], shown["ws_connected"]) == ("offline", False)
    assert r.hget(keys.peer(peer_id), "status") == PeerState.RETIRED
    with pytest.raises(Conflict) as refused:
        connections.connect(r, peer_id, NODE, clock.now_ms())
    assert refused.value.state == PeerState.RETIRED

    # Same identity, no live agent: 409 as repowire words it; nothing changes.
    for pid in (None, dead_pid()):
        body = {"name": "ghost", "circle": c} | ({"agent_pid": pid} if pid else {})
        refused = api.post("/peers", json=body)
        assert refused.status_code == 409
        assert refused.json()["detail"] == (
            f"peer_id {peer_id} was retired (agent_pid={pid or 'absent'}); "
            "re-register via a fresh SessionStart"
        )
    by_id = api.post("/peers", json={"name": "other", "circle": c, "peer_id": peer_id})
    assert by_id.status_code == 409
    # A plain offline does not bring it back either.
    assert api.post(f"/peers/{peer_id}/offline").status_code == 200
    assert r.hget(keys.peer(peer_id), "status") == PeerState.RETIRED

    # Its agent is alive: the same peer comes back, offline until a socket holds it.
    revived = register(api, "ghost", c, agent_pid=os.getpid())
    assert revived["peer_id"] == peer_id
    assert info(api, peer_id)["status"] == "offline"
    connect(r, peer_id)
    assert info(api, peer_id)["status"] == "online"


def test_a_retirement_lapses_after_72_hours(api):
    c = circle()
    peer_id = register(api, "old", c)["peer_id"]
    api.post(f"/peers/{peer_id}/offline", json={"terminal": True})
    register(api, "old", c, status=409)
    clock.advance(72 * 3600 + 1)
    assert register(api, "old", c)["peer_id"] == peer_id


def test_terminal_offline_closes_a_real_socket_with_4004(api, shim_url):
    from tests.support import mesh_client

    c = circle()
    peer = mesh_client.MeshPeer(shim_url, "sock", c)
    try:
        assert info(api, peer.peer_id)["ws_connected"] is True
        resp = api.post(f"/peers/{peer.peer_id}/offline", json={"terminal": True})
        assert resp.status_code == 200
        error = peer.expect("error")
        assert (error["code"], error["error"]) == ("peer_retired", "Peer is retired")
        wait_for(lambda: peer.closed is not None, timeout=10)
        assert peer.closed[0] == 4004
        # The socket's end leaves the peer retired (offline, its socket gone).
        wait_for(
            lambda: api.get(f"/peers/{peer.peer_id}").json()["ws_connected"] is False, timeout=10
        )
        register(api, "sock", c, status=409)
    finally:
        peer.close()


# --- offline ---------------------------------------------------------------------------------


def test_offline_without_a_body_and_for_unknown_peers(api, r):
    c = circle()
    peer_id = register(api, "quiet", c)["peer_id"]
    connect(r, peer_id)
    resp = api.post(f"/peers/{peer_id}/offline")
    assert resp.json() == {"ok": True, "cancelled_queries": 0}
    # As repowire: the socket stays open; the peer is offline until it reports again.
    shown = info(api, peer_id)
    assert (shown["status"], shown["ws_connected"]) == ("offline", True)
    assert r.get(keys.peer_ws(peer_id)) == NODE
    stored = r.hgetall(keys.peer(peer_id))
    assert (stored["offline_reason"], stored["offline_source"]) == ("offline_route", "peers_route")
    found = [
        e for e in events.recent(r) if e["type"] == "peer_offline" and e.get("peer_id") == peer_id
    ]
    assert len(found) == 1 and found[0]["old_status"] == "online"
    assert found[0]["reason"] == "offline_route" and found[0]["terminal"] is False

    assert api.post("/peers/nobody-here/offline").json() == {"ok": True, "cancelled_queries": 0}
    assert api.post("/peers/x/offline", json={"terminal": "maybe"}).status_code == 422
    assert api.post("/peers/x/offline", json=[1]).status_code == 422


def test_offline_cancels_open_queries_only(api, r):
    c = circle()
    peer_id = register(api, "queried", c)["peer_id"]
    connect(r, peer_id)
    now = clock.now_ms()
    query = asks.open_ask(
        r,
        from_peer="cli",
        to_peer_id=peer_id,
        to_peer="queried",
        text="?",
        now_ms=now,
        kind="query",
    )
    ask = asks.open_ask(
        r, from_peer="cli", to_peer_id=peer_id, to_peer="queried", text="?", now_ms=now
    )
    resp = api.post(f"/peers/queried/offline?circle={c}", json={})
    assert resp.json() == {"ok": True, "cancelled_queries": 1}
    assert asks.get(r, query)["status"] == "closed"
    assert asks.get(r, query)["close_reason"] == "peer_disconnected"
    assert asks.get(r, ask)["status"] == "open"


# --- lookups ----------------------------------------------------------------------------------


def test_lookup_by_id_name_circle_and_pane(api):
    c, d = circle(), circle()
    pane = f"%{secrets.randbelow(10**8)}"
    a = register(api, "twin", c, pane_id=pane)["peer_id"]
    b = register(api, "twin", d)["peer_id"]
    assert info(api, a)["peer_id"] == a
    assert info(api, "twin", circle=d)["peer_id"] == b

    ambiguous = api.get("/peers/twin")
    assert ambiguous.status_code == 409
    detail = ambiguous.json()["detail"]
    assert detail["error"] == "ambiguous_peer"
    assert {x["peer_id"] for x in detail["candidates"]} == {a, b}
    assert "Specify a circle= or pass a peer_id" in detail["message"]

    missing = api.get("/peers/nobody-here")
    assert missing.status_code == 404
    assert missing.json() == {"detail": "Peer not found: nobody-here"}
    assert api.get("/peers/twin", params={"circle": circle()}).status_code == 404

    by_pane = api.get(f"/peers/by-pane/{pane.replace('%', '%25')}")
    assert by_pane.status_code == 200 and by_pane.json()["peer_id"] == a
    nobody = api.get("/peers/by-pane/%2599999999999")
    assert nobody.status_code == 404
    assert nobody.json() == {"detail": "No peer for pane: %99999999999"}


def test_list_filters(api, r, tmp_path):
    c = circle()
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    on = register(api, "on", c, path=str(real))["peer_id"]
    busy = register(api, "busy", c, path=str(link), backend="gemini")["peer_id"]
    off = register(api, "off", c, path=str(real))["peer_id"]
    gone = register(api, "gone", c, path=str(real))["peer_id"]
    other = circle()
    orch = register(api, "orch", other, role="orchestrator", path=str(real))["peer_id"]
    stranger = register(api, "stranger", other, path=str(real))["peer_id"]
    connect(r, on)
    connect(r, busy)
    api.post("/session/update", json={"peer_name": busy, "status": "busy"})
    api.post(f"/peers/{gone}/offline", json={"terminal": True})

    def ids(**params):
        resp = api.get("/peers", params={"path": str(real), **params})
        assert resp.status_code == 200, resp.text
        return {p["peer_id"] for p in resp.json()["peers"]}

    # The path matches through the symlink; a circle also lists the roles that cross circles.
    assert ids(circle=c) == {on, busy, off, gone, orch}
    assert ids(circle="*") == ids() == {on, busy, off, gone, orch, stranger}
    assert ids(circle=c, status="online") == {on, busy}
    assert ids(circle=c, status="busy") == {busy}
    assert ids(circle=c, status="offline") == {off, gone, orch}
    assert ids(circle=c, backend="gemini") == {busy}
    assert ids(circle=c, status="") == ids(circle=c)
    shown = {
        p["peer_id"]: p["status"] for p in api.get("/peers", params={"circle": c}).json()["peers"]
    }
    assert shown[busy] == "busy" and shown[gone] == "offline"

    for params in ({"status": "sleeping"}, {"backend": "cobol"}):
        resp = api.get("/peers", params=params)
        assert resp.status_code == 422
        assert resp.json()["detail"][0]["loc"][0] == "query"


# --- removal ----------------------------------------------------------------------------------


def test_delete_removes_the_peer_and_every_index_entry(api, r):
    c = circle()
    pane = f"%{secrets.randbelow(10**8)}"
    peer_id = register(api, "doomed", c, pane_id=pane)["peer_id"]
    resp = api.delete("/peers/doomed", params={"circle": c})
    assert resp.json() == {"ok": True}
    assert not r.exists(keys.peer(peer_id))
    assert r.zscore(keys.PEERS, peer_id) is None
    assert r.get(keys.peer_name(c, "doomed")) is None
    assert not r.sismember(keys.peers_named("doomed"), peer_id)
    assert r.get(keys.peer_pane(pane)) is None
    assert not r.sismember(keys.peers_in_circle(c), peer_id)
    assert not r.sismember(keys.peers_in_state(PeerState.OFFLINE), peer_id)
    assert api.get(f"/peers/{peer_id}").status_code == 404
    assert api.delete("/peers/doomed", params={"circle": c}).json() == {
        "detail": "Peer not found: doomed"
    }
    # The name is free: registering it again makes a new peer.
    assert register(api, "doomed", c)["peer_id"] != peer_id


def test_delete_refuses_an_ambiguous_name_and_unregister_by_body(api):
    c, d = circle(), circle()
    a = register(api, "pair", c)["peer_id"]
    register(api, "pair", d)
    assert api.delete("/peers/pair").status_code == 409
    assert api.post("/peer/unregister", json={"name": a}).json() == {"ok": True}
    assert api.get("/peers/pair").status_code == 200  # one left
    assert api.post("/peer/unregister", json={"name": a}).status_code == 404
    assert api.post("/peer/unregister", json={}).status_code == 422


def test_deleting_a_connected_peer_leaves_nothing_behind_when_its_socket_ends(api, r):
    c = circle()
    peer_id = register(api, "held", c)["peer_id"]
    connect(r, peer_id)
    assert api.delete(f"/peers/{peer_id}").status_code == 200
    assert connections.disconnect(r, peer_id, NODE, clock.now_ms()) is False
    assert not r.exists(keys.peer(peer_id))


# --- touch, description, circle ---------------------------------------------------------------


def test_touch_refreshes_last_seen_only(api):
    c = circle()
    peer_id = register(api, "toucher", c)["peer_id"]
    before = info(api, peer_id)
    clock.advance(120)
    assert api.post(f"/peers/toucher/touch?circle={c}").json() == {"ok": True}
    after = info(api, peer_id)
    assert clock.parse_ms(after["last_seen"]) - clock.parse_ms(before["last_seen"]) >= 120_000
    assert after["status"] == before["status"] == "offline"
    assert api.post("/peers/nobody-here/touch").status_code == 404


def test_description_is_set_and_fades_after_its_ttl(api):
    c = circle()
    peer_id = register(api, "writer", c)["peer_id"]
    resp = api.post(f"/peers/{peer_id}/description", json={"description": "fixing #12"})
    assert resp.json() == {"ok": True}
    assert info(api, peer_id)["description"] == "fixing #12"
    clock.advance(901)
    assert info(api, peer_id)["description"] == ""
    assert api.post(f"/peers/{peer_id}/description", json={}).status_code == 422
    missing = api.post("/peers/nobody-here/description", json={"description": "x"})
    assert missing.status_code == 404


def test_circle_moves_the_peer_and_its_name(api, r):
    c, d = circle(), circle()
    peer_id = register(api, "mover", c)["peer_id"]
    resp = api.post("/peers/circle", json={"peer_name": peer_id, "circle": d})
    assert resp.json() == {"ok": True}
    assert info(api, "mover", circle=d)["peer_id"] == peer_id
    assert info(api, peer_id)["circle"] == d
    assert api.get("/peers/mover", params={"circle": c}).status_code == 404
    assert r.sismember(keys.peers_in_circle(d), peer_id)
    assert not r.sismember(keys.peers_in_circle(c), peer_id)
    # Registering the name again in the new circle is the same peer.
    assert register(api, "mover", d)["peer_id"] == peer_id
    # Moving again to where it is: ok, nothing changes.
    assert api.post("/peers/circle", json={"peer_name": peer_id, "circle": d}).status_code == 200

    register(api, "mover", c)  # a new peer of that name in the old circle
    taken = api.post("/peers/circle", json={"peer_name": peer_id, "circle": c})
    assert taken.status_code == 409
    assert taken.json()["detail"] == f"Peer name mover is already taken in circle {c}"
    assert info(api, peer_id)["circle"] == d
    assert api.post("/peers/circle", json={"peer_name": "mover", "circle": c}).status_code == 409
    unknown = api.post("/peers/circle", json={"peer_name": "nobody-here", "circle": c})
    assert unknown.status_code == 404
    bad = api.post("/peers/circle", json={"peer_name": peer_id, "circle": "a b"})
    assert bad.status_code == 422


# --- orchestrator -----------------------------------------------------------------------------


def test_circle_orchestrator_is_present_while_connected(api, r):
    c = circle()
    url = f"/circles/{c}/orchestrator"
    absent = {
        "circle": c,
        "present": False,
        "peer_id": None,
        "peer_name": None,
        "last_seen": None,
        "stale_after_seconds": 60,
    }
    assert api.get(url).json() == absent
    agent = register(api, "worker", c)["peer_id"]
    connect(r, agent)
    orch = register(api, "boss", c, role="orchestrator")["peer_id"]
    assert api.get(url).json() == absent  # registered, but no socket holds it
    connect(r, orch)
    clock.advance(600)  # its socket's renewals count as seen, however long ago it registered
    shown = api.get(url).json()
    assert shown["present"] is True and shown["stale_after_seconds"] == 60
    assert (shown["peer_id"], shown["peer_name"]) == (orch, "boss")
    assert clock.now_ms() - clock.parse_ms(shown["last_seen"]) <= 60_000
    connections.disconnect(r, orch, NODE, clock.now_ms())
    assert api.get(url).json()["present"] is False


# --- session/update ---------------------------------------------------------------------------


def test_session_update_reports_status_turn_state_model_and_metadata(api, r):
    c = circle()
    pane = f"%{secrets.randbelow(10**8)}"
    peer_id = register(api, "hooked", c, pane_id=pane, metadata={"a": 1})["peer_id"]
    connect(r, peer_id)
    resp = api.post("/session/update", json={"pane_id": pane, "status": "busy"})
    assert resp.json() == {"ok": True}
    assert info(api, peer_id)["status"] == "busy"
    resp = api.post(
        "/session/update",
        json={
            "peer_name": peer_id,
            "turn_state": "working",
            "model": "opus",
            "metadata": {"b": [1, 2]},
        },
    )
    assert resp.json() == {"ok": True}
    shown = info(api, peer_id)
    assert (shown["turn_state"], shown["model"]) == ("working", "opus")
    assert shown["metadata"] == {"a": 1, "b": [1, 2]}
    assert shown["status"] == "busy"
    api.post("/session/update", json={"peer_name": peer_id, "status": "online"})
    assert info(api, peer_id)["status"] == "online"


def test_session_update_errors(api):
    c = circle()
    peer_id = register(api, "strict", c)["peer_id"]

    def post(**body):
        return api.post("/session/update", json=body)

    none = post(peer_name=peer_id, metadata={"x": 1})
    assert none.status_code == 400
    assert none.json() == {"detail": "At least one of status, turn_state, or model is required"}
    invalid = post(peer_name=peer_id, status="asleep")
    assert invalid.status_code == 400
    assert invalid.json() == {
        "detail": "Invalid status: asleep. Must be one of: online, busy, offline"
    }
    who = post(status="busy")
    assert who.status_code == 400
    assert who.json() == {"detail": "Either peer_name or pane_id required"}
    pane = post(pane_id="%99999999999", status="busy")
    assert pane.status_code == 404 and pane.json() == {"detail": "No peer for pane: %99999999999"}
    assert post(peer_name="nobody-here", status="busy").status_code == 404
    assert post(peer_name=peer_id, turn_state="napping").status_code == 422
    # A retired peer reports nothing until a live agent registers it again.
    api.post(f"/peers/{peer_id}/offline", json={"terminal": True})
    assert post(peer_name=peer_id, status="online").status_code == 409
    assert post(peer_name=peer_id, status="offline").status_code == 409
    assert post(peer_name=peer_id, turn_state="idle").json() == {"ok": True}
