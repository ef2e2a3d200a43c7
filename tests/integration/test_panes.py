"""tmux panes in the mesh (the /panes routes, docs/api.md) against a REAL tmux server on a private
socket (DISPATCHYARD_TMUX_SOCKET, set in conftest): orphan panes, linking one (a real ws-hook
process types a notification into the pane), the rollback of a link whose hook never connects, the
doctor's contradictions, and rehook."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.http import Api
from tests.support.waits import wait_for

SOCKET = os.environ["DISPATCHYARD_TMUX_SOCKET"]
HOOK_DIR = Path(os.environ["DISPATCHYARD_DATA_DIR"]) / "pane-hooks"


def tmux(*args: str) -> str:
    done = subprocess.run(
        ["tmux", "-L", SOCKET, "-f", "/dev/null", *args],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    )
    return done.stdout.strip()


@pytest.fixture(scope="module")
def tmux_server(tmp_path_factory):
    """A private tmux server (its first session keeps it up); killed, and every ws-hook the
    tests started seen gone, at the end."""
    # `make test` installs tmux (Makefile system-deps): its absence is a failure, not a skip.
    assert subprocess.run(["which", "tmux"], capture_output=True).returncode == 0, "no tmux"
    home = tmp_path_factory.mktemp("tmux")
    tmux("new-session", "-d", "-s", "keepalive", "-c", str(home), "cat")
    socket_path = Path(tmux("display-message", "-p", "#{socket_path}"))
    yield home
    with contextlib.suppress(subprocess.CalledProcessError):
        tmux("kill-server")
    socket_path.unlink(missing_ok=True)  # tmux leaves the socket file behind
    # A hook exits once its pane is gone (it checks every 2 s).
    for meta in HOOK_DIR.glob("*.json"):
        pid = json.loads(meta.read_text())["pid"]
        wait_for(lambda pid=pid: not _alive(pid), timeout=15, message=f"hook {pid}")


def _alive(pid: int) -> bool:
    try:
        # Our child (the shim runs in this process): reap it if it ended.
        return os.waitpid(pid, os.WNOHANG) == (0, 0)
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def new_pane(home: Path, command: str = "cat", folder: str | None = None) -> tuple[str, Path]:
    """A new session (its own circle) whose one pane runs `command` in a fresh folder."""
    cwd = home / (folder or f"proj-{secrets.token_hex(3)}")
    cwd.mkdir()
    session = f"s{secrets.token_hex(3)}"
    pane = tmux(
        "new-session", "-d", "-s", session, "-c", str(cwd), "-P", "-F", "#{pane_id}", command
    )
    return pane, cwd


def screen(pane: str) -> str:
    return tmux("capture-pane", "-p", "-J", "-t", pane)


def link(api, pane: str, **body):
    return api.post(f"/panes/{quote(pane, safe='')}/link", json={"backend": "claude-code", **body})


def orphans(api) -> dict[str, dict]:
    resp = api.get("/panes/orphans")
    assert resp.status_code == 200, resp.text
    return {p["pane_id"]: p for p in resp.json()["panes"]}


def peer(api, ident: str) -> dict:
    resp = api.get(f"/peers/{ident}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def doctor(api, ident: str) -> dict:
    resp = api.get(f"/peers/{ident}/doctor")
    assert resp.status_code == 200, resp.text
    return resp.json()


def codes(report: dict) -> dict[str, str]:
    return {c["code"]: c["severity"] for c in report["contradictions"]}


def hook_pid(pane: str) -> int:
    meta = HOOK_DIR / f"{SOCKET}-{pane.lstrip('%')}.json"
    return json.loads(meta.read_text())["pid"]


def linked(api, home: Path, command: str = "cat", **body) -> tuple[str, Path, dict]:
    pane, cwd = new_pane(home, command)
    resp = link(api, pane, **body)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["linked"] is True, answer
    return pane, cwd, answer


@pytest.fixture
def other_shim():
    """Another shim on the same Redis with some settings changed."""
    from werkzeug.serving import make_server

    from api_shim import create_app
    from dispatchyard.settings import Settings

    servers = []

    def start(**overrides) -> Api:
        server = make_server("127.0.0.1", 0, create_app(Settings(**overrides)), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return Api(f"http://127.0.0.1:{server.server_port}")

    yield start
    for server in servers:
        server.shutdown()


def test_an_orphan_pane_is_listed_linked_and_typed_into(api, tmux_server):
    pane, cwd = new_pane(tmux_server)
    listed = orphans(api)[pane]
    assert listed["command"] == "cat" and listed["cwd"] == str(cwd)
    assert listed["session"] and listed["window"] == "0" and listed["pid"] > 0
    assert (listed["detected_backend"], listed["confidence"]) == ("unknown", "unknown")

    resp = link(api, pane)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["linked"] is True and answer["transport_connected"] is True
    assert answer["reason"] == "linked" and answer["pane_id"] == pane
    assert answer["display_name"] == f"{cwd.name}-claude-code"
    assert pane not in orphans(api)
    info = peer(api, answer["peer_id"])
    assert info["ws_connected"] is True and info["status"] == "online"
    assert info["path"] == str(cwd) and info["circle"] == listed["session"]
    assert api.get(f"/peers/by-pane/{quote(pane, safe='')}").json()["peer_id"] == answer["peer_id"]

    text = f"hello-pane-{secrets.token_hex(4)}"
    sent = api.post(
        "/notify", json={"from_peer": "tester", "to_peer": answer["peer_id"], "text": text}
    )
    assert sent.status_code == 200, sent.text
    wait_for(lambda: f"@tester → @{answer['display_name']}: {text}" in screen(pane))

    def stages():
        return [
            s["stage"] for s in api.get(f"/traces/{sent.json()['delivery_id']}").json()["stages"]
        ]

    wait_for(lambda: "pane_injected" in stages())

    again = link(api, pane)
    assert again.status_code == 409
    assert again.json()["detail"]["error"] == "already_linked"
    assert again.json()["detail"]["peer_id"] == answer["peer_id"]


def test_the_backend_guess_is_a_hint_from_the_command(api, tmux_server):
    # A process whose name is `claude` (a link to cat: the kernel names it after the link).
    bin_dir = tmux_server / f"bin-{secrets.token_hex(3)}"
    bin_dir.mkdir()
    (bin_dir / "claude").symlink_to(
        subprocess.run(["which", "cat"], capture_output=True, text=True, check=True).stdout.strip()
    )
    pane, _ = new_pane(tmux_server, command=str(bin_dir / "claude"))
    wait_for(lambda: orphans(api).get(pane, {}).get("command") == "claude")
    listed = orphans(api)[pane]
    assert (listed["detected_backend"], listed["confidence"]) == ("claude-code", "hint")


def test_a_second_link_in_one_folder_gets_a_suffixed_name_and_an_explicit_name_is_kept(
    api, tmux_server
):
    _, cwd, first = linked(api, tmux_server)
    # Another pane in the same folder and the same circle.
    session = peer(api, first["peer_id"])["circle"]
    pane2 = tmux(
        "split-window", "-d", "-t", session, "-c", str(cwd), "-P", "-F", "#{pane_id}", "cat"
    )
    second = link(api, pane2).json()
    assert second["linked"] is True
    assert second["display_name"] == f"{cwd.name}-2-claude-code"

    pane3, _ = new_pane(tmux_server)
    named = link(api, pane3, name="reviewer", circle="panes-test").json()
    assert (named["linked"], named["display_name"]) == (True, "reviewer")
    assert peer(api, named["peer_id"])["circle"] == "panes-test"
    pane4, _ = new_pane(tmux_server)
    taken = link(api, pane4, name="reviewer", circle="panes-test")
    assert taken.status_code == 409 and taken.json()["detail"]["error"] == "name_taken"


def test_link_refusals(api, tmux_server):
    assert link(api, "abc").status_code == 422
    assert link(api, "%1x").status_code == 422
    missing = link(api, "%999999")
    assert missing.status_code == 404
    assert missing.json()["detail"]["error"] == "pane_not_found"
    pane, _ = new_pane(tmux_server)
    no_backend = api.post(f"/panes/{quote(pane, safe='')}/link", json={})
    assert no_backend.status_code == 422
    bad_backend = link(api, pane, backend="vim")
    assert bad_backend.status_code == 422
    assert pane in orphans(api)  # nothing was registered


def test_a_link_whose_hook_never_connects_is_rolled_back(api, r, tmux_server, other_shim):
    # The hook is told to dial a port nothing listens on: it keeps retrying, never connects.
    dead = other_shim(pane_hook_url="http://127.0.0.1:9")
    pane, cwd = new_pane(tmux_server)
    resp = link(dead, pane)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert answer["linked"] is False and answer["transport_connected"] is False
    assert answer["reason"] == "transport_unestablished"
    assert answer["peer_id"] is None and answer["repair_hint"]
    # No peer, no pane index entry, no hook left.
    assert api.get(f"/peers/by-pane/{quote(pane, safe='')}").status_code == 404
    assert api.get(f"/peers/{cwd.name}-claude-code").status_code == 404
    assert not r.exists(f"peer:pane:{pane}")
    assert not (HOOK_DIR / f"{SOCKET}-{pane.lstrip('%')}.json").exists()
    # It failed for the reason staged: it ran, and could not reach the daemon.
    assert (
        "cannot reach ws://127.0.0.1:9/ws"
        in (HOOK_DIR / f"{SOCKET}-{pane.lstrip('%')}.log").read_text()
    )
    assert pane in orphans(api)
    # The pane stays linkable: the hook's lock went with it.
    assert link(api, pane).json()["linked"] is True


def test_a_link_that_cannot_start_its_hook_registers_nothing(api, tmux_server):
    pane, cwd = new_pane(tmux_server)
    HOOK_DIR.mkdir(parents=True, exist_ok=True)
    # Another hook holds the pane (its lock is taken).
    with (HOOK_DIR / f"{SOCKET}-{pane.lstrip('%')}.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        answer = link(api, pane).json()
    assert (answer["linked"], answer["reason"]) == (False, "ws_hook_spawn_failed")
    assert answer["peer_id"] is None
    assert api.get(f"/peers/{cwd.name}-claude-code").status_code == 404


def test_orphans_without_a_tmux_server_is_an_empty_list(other_shim):
    nowhere = other_shim(tmux_socket=f"dy-test-none-{secrets.token_hex(4)}")
    resp = nowhere.get("/panes/orphans")
    assert resp.status_code == 200 and resp.json() == {"panes": []}


def test_doctor_of_a_healthy_linked_peer_then_a_stale_ask_then_a_missing_pane(api, tmux_server):
    from dispatchyard.state import clock

    pane, cwd, answer = linked(api, tmux_server)
    peer_id = answer["peer_id"]
    report = doctor(api, peer_id)
    assert report["contradictions"] == []
    assert report["peer_id"] == peer_id and report["display_name"] == answer["display_name"]
    assert report["is_local_machine"] is True and report["ws_connected"] is True
    assert report["tmux_pane_exists"] is True and report["pane_id"] == pane
    assert report["tmux_evidence"]["current_path"] == str(cwd)
    assert report["hook_meta_peer_id"] == peer_id and report["hook_meta_available"] is True
    assert report["agent_pid"] is None and report["agent_pid_alive"] is None
    assert (report["pending_inbound_count"], report["oldest_pending_age_seconds"]) == (0, None)

    asked = api.post(
        "/ask", json={"from_peer": "tester", "to_peer": peer_id, "text": "anyone there?"}
    )
    assert asked.status_code == 200, asked.text
    cid = asked.json()["correlation_id"]
    wait_for(lambda: f"[ask #{cid}]: anyone there?" in screen(pane))
    clock.advance(31 * 60)
    report = doctor(api, peer_id)
    assert report["pending_inbound_count"] == 1 and report["oldest_pending_cid"] == cid
    assert report["oldest_pending_age_seconds"] > 1800
    assert codes(report) == {"STALE_PENDING_ASK": "warning"}

    tmux("kill-pane", "-t", pane)
    # The hook sees its pane gone and exits; the socket's end takes the peer offline.
    wait_for(lambda: not peer(api, peer_id)["ws_connected"], timeout=15)
    report = doctor(api, peer_id)
    assert report["tmux_pane_exists"] is False and report["status"] == "offline"
    assert codes(report)["PANE_MISSING"] == "error"
    assert "ONLINE_BUT_NO_WS" not in codes(report)


def test_doctor_agent_pid_dead_and_online_without_a_socket(api, r, tmux_server):
    pane, cwd = new_pane(tmux_server)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    resp = api.post(
        "/peers",
        json={
            "name": f"pid-{secrets.token_hex(3)}",
            "path": str(cwd),
            "pane_id": pane,
            "agent_pid": gone.pid,
            "circle": "doctor-test",
        },
    )
    assert resp.status_code == 200, resp.text
    peer_id = resp.json()["peer_id"]
    report = doctor(api, peer_id)
    assert report["agent_pid"] == gone.pid and report["agent_pid_alive"] is False
    assert report["tmux_pane_exists"] is True
    assert codes(report) == {"AGENT_PID_DEAD": "error"}

    # A record that still says online with no socket holding it: what a shim process that
    # died holding the socket leaves once its connection key expired.
    r.hset(f"peer:{peer_id}", "status", "online")
    report = doctor(api, peer_id)
    assert report["status"] == "online" and report["ws_connected"] is False
    assert codes(report) == {"AGENT_PID_DEAD": "error", "ONLINE_BUT_NO_WS": "error"}

    assert api.get("/peers/nobody-at-all/doctor").status_code == 404
    twin = f"twin-{secrets.token_hex(3)}"
    for c in ("doctor-a", "doctor-b"):
        assert api.post("/peers", json={"name": twin, "circle": c}).status_code == 200
    ambiguous = api.get(f"/peers/{twin}/doctor")
    assert ambiguous.status_code == 409
    assert ambiguous.json()["detail"]["error"] == "ambiguous_peer"
    assert api.get(f"/peers/{twin}/doctor?circle=doctor-b").json()["circle"] == "doctor-b"


def test_doctor_does_not_probe_another_hosts_peer(api, tmux_server):
    pane, _ = new_pane(tmux_server)
    body = {"name": f"far-{secrets.token_hex(3)}", "pane_id": pane, "machine": "another-host"}
    body["agent_pid"] = 999_999_999  # no such process here; not ours to judge
    peer_id = api.post("/peers", json=body).json()["peer_id"]
    report = doctor(api, peer_id)
    assert report["is_local_machine"] is False
    assert report["tmux_pane_exists"] is None and report["agent_pid_alive"] is None
    assert report["contradictions"] == []


def test_the_hook_refuses_to_type_into_a_bare_shell(api, tmux_server):
    # The agent is gone and a shell holds the pane: Enter would run the text as a command.
    pane, _, answer = linked(api, tmux_server, command="sh")
    text = f"echo-not-run-{secrets.token_hex(4)}"
    sent = api.post(
        "/notify", json={"from_peer": "tester", "to_peer": answer["peer_id"], "text": text}
    )
    assert sent.status_code == 200, sent.text
    trace = f"/traces/{sent.json()['delivery_id']}"

    def failed():
        stages = api.get(trace).json()["stages"]
        return next((s for s in stages if s["stage"] == "injection_failed"), None)

    stage = wait_for(failed)
    assert "shell" in stage["detail"]["detail"]
    assert text not in screen(pane)


def test_rehook_is_a_dry_run_by_default_and_respawns_a_dead_hook(api, tmux_server):
    pane, _, answer = linked(api, tmux_server)
    name = answer["display_name"]
    healthy = api.post(f"/peers/{name}/rehook").json()
    assert (healthy["acted"], healthy["reason"]) == (False, "already_healthy")
    assert healthy["ws_was_connected"] is True and healthy["peer_id"] == answer["peer_id"]

    os.kill(hook_pid(pane), signal.SIGKILL)
    wait_for(lambda: not peer(api, name)["ws_connected"], timeout=15)
    dry = api.post(f"/peers/{name}/rehook", json={})
    assert dry.status_code == 200, dry.text
    assert dry.json()["reason"] == "dry_run" and dry.json()["acted"] is False
    assert dry.json()["ws_was_connected"] is False and dry.json()["ws_hook_respawned"] is False
    assert not peer(api, name)["ws_connected"]  # a dry run starts nothing

    done = api.post(f"/peers/{name}/rehook", json={"apply": True}).json()
    assert done["reason"] == "respawned" and done["acted"] is True
    assert done["ws_hook_respawned"] is True and done["pane_verified"] is True
    wait_for(lambda: peer(api, name)["ws_connected"], timeout=15)
    assert peer(api, name)["peer_id"] == answer["peer_id"]  # the same identity came back
    text = f"after-rehook-{secrets.token_hex(4)}"
    api.post("/notify", json={"from_peer": "tester", "to_peer": name, "text": text})
    wait_for(lambda: text in screen(pane))


def test_rehook_refusals(api, tmux_server):
    def register(**fields) -> str:
        body = {"name": f"rh-{secrets.token_hex(3)}", "circle": "rehook-test", **fields}
        resp = api.post("/peers", json=body)
        assert resp.status_code == 200, resp.text
        return body["name"]

    pane, cwd = new_pane(tmux_server)
    elsewhere = api.post(
        f"/peers/{register(pane_id=pane, path=str(cwd), machine='another-host')}/rehook"
    )
    assert elsewhere.status_code == 409
    assert elsewhere.json()["detail"]["error"] == "cross_host"
    no_pane = api.post(f"/peers/{register(path=str(cwd))}/rehook")
    assert no_pane.status_code == 409 and no_pane.json()["detail"]["error"] == "missing_pane"
    gone_pane = api.post(f"/peers/{register(pane_id='%999999', path=str(cwd))}/rehook")
    assert gone_pane.status_code == 409 and gone_pane.json()["detail"]["error"] == "missing_pane"
    foreign = api.post(f"/peers/{register(pane_id=pane, path='/somewhere/else')}/rehook")
    assert foreign.status_code == 409
    assert foreign.json()["detail"]["error"] == "pane_unverified"
    assert api.post("/peers/nobody-at-all/rehook").status_code == 404
