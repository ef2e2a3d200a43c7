"""Persistent jobs: delivered as an ask to a live peer, which reports back with the attempt id."""

from __future__ import annotations

import secrets

import pytest

from tests.support import records
from tests.support.mesh_client import MeshPeer


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    return celery_worker


def register(api, name, **body):
    resp = api.post("/peers", json={"name": name, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture
def sockets():
    """Peers online the real way: a WebSocket holds each (closed after the test)."""
    held: list[MeshPeer] = []
    yield held
    for peer in held:
        peer.close()


def connect(shim_url, sockets, peer, **fields):
    """Bring a registered peer online: its hook's WebSocket connects (with its fields, since a
    connect frame re-registers the peer)."""
    socket = MeshPeer(shim_url, peer["display_name"], peer_id=peer["peer_id"], **fields)
    assert socket.peer_id == peer["peer_id"]
    sockets.append(socket)
    return socket


def test_assigned_peer_gets_the_ask_and_reports_back(api, shim_url, sockets, tmp_path):
    name = f"alice-{secrets.token_hex(3)}"
    peer = register(api, name, path=str(tmp_path), backend="codex")
    socket = connect(shim_url, sockets, peer, path=str(tmp_path), backend="codex")
    assert peer["ok"] is True and peer["peer_id"].startswith("repow-global-")
    assert register(api, name, path=str(tmp_path))["peer_id"] == peer["peer_id"]
    info = api.get(f"/peers/{name}").json()
    assert info["status"] == "online" and info["peer_id"] == peer["peer_id"]

    resp = api.post(
        "/jobs", json={"title": "review", "prompt": "review PR 7", "assigned_peer_id": name}
    )
    job_id = resp.json()["job_id"]
    assert resp.json()["status"]["assigned_peer_id"] == peer["peer_id"]  # canonical id
    delivered = records.wait_job(api, job_id, ("delivered",))
    assert delivered["state_reason"] == "ask_delivered"
    attempt_id = delivered["runner"]["current_attempt_id"]
    cid = delivered["correlation_id"]
    assert cid.startswith("ask-")
    frame = socket.expect("ask")  # over the peer's live socket
    assert frame["correlation_id"] == cid and attempt_id in frame["text"]
    pending = api.get("/asks/pending", params={"peer_id": peer["peer_id"]}).json()["asks"]
    assert [a["correlation_id"] for a in pending] == [cid]
    assert job_id in pending[0]["text"] and attempt_id in pending[0]["text"]
    assert "review PR 7" in pending[0]["text"] and pending[0]["direction"] == "inbound"
    assert api.get(f"/peers/{name}").json()["pending_ask_count"] == 1

    assert api.post("/ack", json={"correlation_id": cid}).json() == {"ok": True}
    assert api.post("/ack", json={"correlation_id": cid}).status_code == 200  # idempotent
    assert api.post("/ack", json={"correlation_id": cid, "message": "late"}).status_code == 410
    assert api.get("/asks/pending", params={"peer_id": peer["peer_id"]}).json()["asks"] == []
    running = api.patch(f"/jobs/{job_id}", json={"state": "running", "progress_note": "on it"})
    assert running.status_code == 200
    stale = api.patch(f"/jobs/{job_id}", json={"state": "completed", "attempt_id": "attempt-0"})
    assert stale.status_code == 409
    done = api.patch(
        f"/jobs/{job_id}",
        json={"state": "completed", "attempt_id": attempt_id, "result_summary": "LGTM"},
    )
    assert done.json()["status"]["state"] == "completed"
    assert done.json()["status"]["result_summary"] == "LGTM"


def test_unassigned_persistent_job_finds_a_peer_by_path_and_backend(
    api, shim_url, sockets, tmp_path
):
    peer = register(api, f"bob-{secrets.token_hex(3)}", path=str(tmp_path), backend="gemini")
    connect(shim_url, sockets, peer, path=str(tmp_path), backend="gemini")
    resp = api.post(
        "/jobs",
        json={
            "title": "t",
            "prompt": "p",
            "path": str(tmp_path),
            "backend": "gemini",
            "process_scope": "persistent",
        },
    )
    done = records.wait_job(api, resp.json()["job_id"], ("delivered", "unavailable"))
    assert done["state"] == "delivered" and done["assigned_peer_id"] == peer["peer_id"]


def test_offline_peer_is_unavailable(api, shim_url, sockets):
    name = f"carol-{secrets.token_hex(3)}"
    connect(shim_url, sockets, register(api, name))
    assert api.post(f"/peers/{name}/offline").json() == {"ok": True, "cancelled_queries": 0}
    assert api.get(f"/peers/{name}").json()["status"] == "offline"
    resp = api.post("/jobs", json={"title": "t", "assigned_peer_id": name})
    done = records.wait_job(api, resp.json()["job_id"])
    assert done["state"] == "unavailable" and done["state_reason"] == "assigned_peer_offline"


def test_unknown_and_ambiguous_peers(api):
    name = f"dup-{secrets.token_hex(3)}"
    a = register(api, name, circle="red")
    b = register(api, name, circle="blue")
    resp = api.post("/jobs", json={"title": "t", "assigned_peer_id": name})
    assert resp.status_code == 409
    detail = resp.json()["detail"]
    assert detail["error"] == "ambiguous_assigned_peer"
    assert {c["peer_id"] for c in detail["candidates"]} == {a["peer_id"], b["peer_id"]}
    ok = api.post(
        "/jobs",
        json={
            "title": "t",
            "assigned_peer_id": name,
            "circle": "red",
            "due_at": "2999-01-01T00:00:00Z",
        },
    )
    assert ok.json()["status"]["assigned_peer_id"] == a["peer_id"]
    assert api.get(f"/peers/{name}").status_code == 409
    assert api.get("/peers/nobody-here").status_code == 404
    missing = api.post("/jobs", json={"title": "t", "assigned_peer_id": "nobody-here"})
    assert missing.status_code == 404
    assert missing.json() == {"detail": {"error": "assigned_peer_not_found", "peer": "nobody-here"}}


def test_peer_validation_and_pending_errors(api):
    for body in (
        {"name": "bad name"},
        {"name": "x" * 65},
        {"name": "ok", "backend": "cobol"},
        {"name": "ok", "role": "king"},
        {},
    ):
        assert api.post("/peers", json=body).status_code == 422
    assert api.get("/asks/pending").status_code == 400
    assert api.get("/asks/pending", params={"peer_id": "a", "pane_id": "%1"}).status_code == 400
    assert api.get("/asks/pending", params={"peer_id": "repow-x-00000000"}).status_code == 404
    assert api.post("/ack", json={"correlation_id": "ask-00000000"}).status_code == 404


def test_pending_asks_by_pane(api, shim_url, sockets):
    name = f"pane-{secrets.token_hex(3)}"
    pane = f"%{secrets.randbelow(10**6)}"
    peer = register(api, name, pane_id=pane)
    connect(shim_url, sockets, peer, pane_id=pane)
    assert peer["pane_assigned"] is True
    resp = api.post("/jobs", json={"title": "t", "prompt": "by pane", "assigned_peer_id": name})
    records.wait_job(api, resp.json()["job_id"], ("delivered",))
    asks = api.get("/asks/pending", params={"pane_id": pane}).json()["asks"]
    assert len(asks) == 1 and "by pane" in asks[0]["text"]
    assert api.get("/asks/pending", params={"pane_id": "%999999999"}).status_code == 404
