"""repowire 0.17.0's own tools, unchanged, against dispatchyard (gunicorn, worker and beat on a
Redis of their own) and against `repowire serve` side by side: its CLI, as a subprocess, gives
the same exit code and the same output (ids, times and peer names aside) for the same command;
its WebSocket hook (`repowire.hooks.websocket_hook`) holds a real tmux pane's socket, types the
asks and notifies it gets into the pane, and its receipt of a notify lands in the notify's
`/traces` entry (of an ask, not yet: docs/decisions.md); its MCP server (`repowire mcp`, over
stdio with the mcp client) answers every tool as against repowire, `notify_peer` to a peer with
no socket included. Where a tool needs a route dispatchyard does not serve (spawning, the
relay's shares, reviews, role claims), the test asserts the error it gets (README, "Using
repowire's tools"); where an answer differs on purpose, the test says how."""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.support.mesh_client import MeshPeer
from tests.support.repowire_tools import BIN, Side, both, clean_env, repowire_serve
from tests.support.waits import wait_for


@pytest.fixture(scope="module")
def theirs(tmp_path_factory):
    with repowire_serve(tmp_path_factory.mktemp("repowire-serve")) as url:
        yield url


@pytest.fixture
def sides(stack, theirs, tmp_path) -> tuple[Side, Side]:
    """dispatchyard's side and repowire's, each CLI with a HOME of its own."""
    (tmp_path / "ours").mkdir()
    (tmp_path / "theirs").mkdir()
    return Side("ours", stack.url, tmp_path / "ours"), Side("theirs", theirs, tmp_path / "theirs")


def circle() -> str:
    return f"c{secrets.token_hex(3)}"


def same(sides: tuple[Side, Side], *args: str, rc: int = 0, cwd: Path | None = None) -> list[str]:
    """Run a command against both: the same exit code (`rc`) and the same output shape."""
    ours, theirs = both(sides, *args, cwd=cwd)
    assert (ours.rc, theirs.rc) == (rc, rc), (args, ours, theirs)
    shaped = sides[0].shape(ours.out)
    assert shaped == sides[1].shape(theirs.out), (args, ours.out, theirs.out)
    return shaped


def json_of(text: str):
    """The JSON a `--json` command printed (rich's print_json or click.echo)."""
    return json.loads(text)


def keys_match(ours, theirs, where: str = "") -> None:
    """Every key repowire answers, ours answers too, at every level of dicts (and of the
    first element of lists)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), where
        missing = set(theirs) - set(ours)
        assert not missing, f"{where}: ours lacks {missing}"
        for k in theirs:
            if k != "detail":  # a trace stage's detail is free-form, each daemon's own
                keys_match(ours[k], theirs[k], f"{where}.{k}")
    elif isinstance(theirs, list) and theirs:
        assert isinstance(ours, list) and ours, where
        keys_match(ours[0], theirs[0], f"{where}[0]")


def same_json(sides, *args: str, rc: int = 0):
    ours, theirs = both(sides, *args)
    assert (ours.rc, theirs.rc) == (rc, rc), (args, ours, theirs)
    mine, reference = json_of(ours.out), json_of(theirs.out)
    keys_match(mine, reference, " ".join(args))
    return mine, reference


def register(side: Side, name: str, c: str, folder: Path) -> dict:
    """Register a peer over HTTP (no socket); record what the daemon named it."""
    resp = side.api.post("/peers", json={"name": name, "circle": c, "path": str(folder)})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    side.names[body["display_name"]] = f"<{name}>"
    return body


def connect(side: Side, name: str, c: str, folder: Path) -> MeshPeer:
    """A bare socket peer. repowire names it after its folder (`<folder>-claude-code`), so each
    gets a folder of its own, the same on both sides."""
    peer = MeshPeer(side.url, name, c, path=str(folder / name))
    side.names[peer.connected["display_name"]] = f"<{name}>"
    return peer


def test_peer_commands(sides, tmp_path):
    c = circle()
    folder = tmp_path / "work"
    folder.mkdir()
    assert same(sides, "peer", "register", "alice", "-c", c, "-p", str(folder)) == [
        "Registered peer 'alice'",
        f" circle: {c}",
        f" path: {folder}",
    ]
    for side in sides:
        found = [p for p in side.api.get("/peers").json()["peers"] if p["circle"] == c]
        side.names[found[0]["display_name"]] = "<alice>"
    bobs = [connect(side, "bob", c, tmp_path) for side in sides]
    try:
        # The tables: their header, and this circle's rows (a daemon has other peers). alice,
        # registered over HTTP with no socket, is offline for us at once; repowire lists her
        # online until its lazy repair (at most every 30 s) demotes her: her status aside.
        for args in (("peer", "list", "-a"), ("peer", "list")):
            ours, theirs = both(sides, *args)
            assert ours.rc == theirs.rc == 0
            shaped = [
                [line for line in side.shape(run.out) if "Name" in line or c in line]
                for side, run in zip(sides, (ours, theirs), strict=True)
            ]
            assert ("<alice>" in "\n".join(shaped[0])) == (args[-1] == "-a")
            if args[-1] == "-a":
                assert "│ <alice> │ offline │" in "\n".join(shaped[0])
                shaped = [[mask_status(line, "<alice>") for line in lines] for lines in shaped]
            else:
                shaped = [[line for line in lines if "<alice>" not in line] for lines in shaped]
            assert shaped[0] == shaped[1], (ours.out, theirs.out)
            assert "│ <bob> │ online │" in "\n".join(shaped[0])

        ours, theirs = both(sides, "peer", "describe", "<alice>", "-c", c)
        described = [side.shape(run.out) for side, run in zip(sides, (ours, theirs), strict=True)]
        assert ours.rc == theirs.rc == 0 and "Status: offline" in described[0]
        described = [[mask_status(line, "Status:") for line in lines] for lines in described]
        assert described[0] == described[1]
        assert described[0][0] == "Peer: <alice> (<peer-id>)" and f"Circle: {c}" in described[0]
        assert same(sides, "peer", "describe", "nobody", rc=1)[0] == "Peer not found: nobody"

        # Asks: listed, acked with a reply, acked again (closed), an unknown one.
        for side, bob in zip(sides, bobs, strict=True):
            body = {"from_peer": "cli", "to_peer": bob.peer_id, "text": "ready?"}
            side.names[side.api.post("/ask", json=body).json()["correlation_id"]] = "<cid>"
            side.names[bob.peer_id] = "<bob-id>"
        assert same(sides, "peer", "asks", "--peer-id", "<bob-id>") == ["<cid> cli → <bob> ready?"]
        asks, _ = same_json(sides, "peer", "asks", "--peer-id", "<bob-id>", "--json")
        assert asks[0]["direction"] == "inbound" and asks[0]["text"] == "ready?"
        assert same(sides, "peer", "ack", "<cid>", "-m", "yes") == ["Acked #<cid> with reply"]
        again = same(sides, "peer", "ack", "<cid>", "-m", "again", rc=1)
        assert again[0].startswith("Ask <cid> is already closed; reply not delivered.")
        assert same(sides, "peer", "ack", "ask-00000000", rc=1) == [
            "No open ask with correlation_id: <ask>"
        ]

        # A notify to alice, who has no socket, waits for her on both (queued); the CLI drains
        # it once.
        for side in sides:
            body = {"from_peer": "cli", "to_peer": side.actual("<alice>"), "circle": c}
            sent = side.api.post("/notify", json={**body, "text": "later"})
            assert sent.status_code == 200 and sent.json()["status"] == "queued", sent.text
        drained, _ = same_json(sides, "peer", "deliveries", "--peer", "<alice>", "--json")
        assert [(d["kind"], d["text"]) for d in drained] == [("notify", "later")]
        assert same(sides, "peer", "deliveries", "--peer", "<alice>") == ["No queued deliveries"]

        report, _ = same_json(sides, "peer", "doctor", "<bob-id>", "--json")
        assert report["ws_connected"] is True and report["contradictions"] == []
        assert same(sides, "peer", "doctor", "ghost", rc=1) == ["Error: Peer 'ghost' not found"]
    finally:
        for bob in bobs:
            bob.close()


def mask_status(line: str, marker: str) -> str:
    return re.sub(r"\b(online|offline)\b", "<status>", line) if marker in line else line


def job_id(run) -> str:
    return json_of(run.out)["job_id"]


def test_jobs_commands(sides):
    title = f"fix the build {secrets.token_hex(2)}"
    create = ("jobs", "create", title, "--prompt", "fix", "--due-at", "1h", "--json")
    ours, theirs = both(sides, *create)
    assert ours.rc == theirs.rc == 0
    keys_match(json_of(ours.out), json_of(theirs.out), "jobs create --json")
    for side, run in zip(sides, (ours, theirs), strict=True):
        side.names[job_id(run)] = "<job>"
    assert same(sides, "jobs", "create", "second", "--prompt", "p", "--due-at", "2h")[:2] == [
        "Created job <job>",
        " title: second",
    ]
    template = same(sides, "jobs", "create", "nightly", "--prompt", "p", "--cron", "0 3 1 1 *")
    assert template[0] == "Created recurring job <template>" and " cron: 0 3 1 1 *" in template
    listed, their_list = same_json(sides, "jobs", "list", "--json")
    assert title in [w["title"] for w in listed["work"]]
    assert "nightly" in [t["title"] for t in listed["recurring"]]
    # The template: shown and cancelled by its cal- id.
    for side, mine in zip(sides, (listed, their_list), strict=True):
        nightly = [t for t in mine["recurring"] if t["title"] == "nightly"]
        side.names[nightly[-1]["calendar_id"]] = "<template>"
    shown = same(sides, "jobs", "show", "<template>")
    assert shown[:3] == ["Recurring job <template>", " title: nightly", " state: active"]
    gone, _ = same_json(sides, "jobs", "cancel", "<template>", "--json")
    assert gone["state"] == "cancelled"

    shown = same(sides, "jobs", "show", "<job>")
    assert shown[:3] == ["Job <job>", f" title: {title}", " state: queued"]
    assert " state: running" in same(
        sides, "jobs", "update", "<job>", "--state", "running", "--note", "half", "--phase", "b"
    )
    refused = same(sides, "jobs", "update", "<job>", "--state", "bogus", rc=1)
    assert refused[0].startswith("Error: Failed to update job: state must be one of")
    assert " state: running" in same(sides, "jobs", "result", "<job>")  # not ready: the status
    assert " result: done" in same(
        sides, "jobs", "update", "<job>", "--state", "completed", "--result-summary", "done"
    )
    done = same(sides, "jobs", "result", "<job>")
    assert done == ["Job <job>", " state: completed", " summary: done"]
    result, _ = same_json(sides, "jobs", "result", "<job>", "--json")
    assert (result["state"], result["summary"]) == ("completed", "done")
    assert same(sides, "jobs", "retry", "<job>", rc=1) == [
        "Error: Failed to retry job: Job cannot be retried from state completed"
    ]
    assert same(sides, "jobs", "run", "<job>", rc=1) == [
        "Error: Failed to run job: Job cannot be run from state completed"
    ]
    assert " cancel: cancel_requested" in same(sides, "jobs", "cancel", "<job>")  # idempotent
    assert same(sides, "jobs", "show", "work-000000000000", rc=1) == ["Error: No job: <job>"]

    # A queued job without a target, run now: both answer 0 with its status. repowire runs it
    # before it answers (unavailable, an attempt); dispatchyard answers at once (queued) and a
    # worker runs it, reaching the same state.
    def new_job(side: Side, title: str) -> str:
        body = {"title": title, "prompt": "p", "due_at": "2999-01-01T00:00:00Z"}
        job = side.api.post("/jobs", json=body).json()["status"]["job_id"]
        side.names[job] = "<job>"
        return job

    fresh = [new_job(side, "run me") for side in sides]
    ours, theirs = both(sides, "jobs", "run", "<job>")
    assert (ours.rc, theirs.rc) == (0, 0)
    assert sides[0].shape(ours.out)[:2] == sides[1].shape(theirs.out)[:2]
    assert sides[0].shape(ours.out)[:2] == ["Job <job>", " title: run me"]

    def state(side: Side, job: str) -> str:
        return side.api.get(f"/jobs/{job}").json()["status"]["state"]

    wait_for(lambda: state(sides[0], fresh[0]) != "queued", timeout=20, message="job run")
    assert state(sides[0], fresh[0]) == state(sides[1], fresh[1]) == "unavailable"

    for side in sides:
        new_job(side, "drop me")
    cancelled = same(sides, "jobs", "cancel", "<job>", "--reason", "not needed")
    assert " state: cancelled" in cancelled and " cancel: not needed" in cancelled


def test_schedule_commands(sides, tmp_path):
    c = circle()
    me = f"me{secrets.token_hex(3)}"
    created = same(
        sides, "schedule", "create", "carol", "1h", "ping", "--from-peer", "cli", "-c", c
    )
    assert created[:4] == ["Scheduled <schedule>", " from: cli", " to: carol", " kind: notify"]
    cron = same(
        sides, "schedule", "create", "carol", "0 3 1 1 *", "hi", "--cron", "--kind", "ask",
        "--from-peer", "cli", "-c", c,
    )  # fmt: skip
    assert " kind: ask" in cron and " cron: 0 3 1 1 *" in cron
    # A time neither form parses: the daemon's 400, printed (repowire's CLI exits 0 on it).
    assert same(sides, "schedule", "create", "carol", "soon", "x", "--from-peer", "cli") == [
        "Failed to create schedule: fire_at must be ISO-8601: Invalid isoformat string: 'soon'"
    ]
    assert same(sides, "schedule", "self", "10m", "remind me", "--from-peer", me)[:3] == [
        "Scheduled <schedule>",
        f" from: {me}",
        f" to: {me}",
    ]
    # Without --from-peer (and outside tmux) the sender is the folder's name.
    folder = tmp_path / f"f{secrets.token_hex(3)}"
    folder.mkdir()
    assert (
        same(sides, "schedule", "self", "1h", "stretch", cwd=folder)[1] == f" from: {folder.name}"
    )
    listed = same(sides, "schedule", "list", "--from-peer", me)
    assert [line for line in listed if me in line] == [
        f"│ <schedule> │ {me} │ {me} │ notify │ <ts> │ - │ remind me │"
    ]
    # Delete by id: the side's own schedule.
    for side in sides:
        mine = [s for s in side.api.get("/schedules").json()["schedules"] if s["from_peer"] == me]
        run = side.cli("schedule", "delete", mine[0]["schedule_id"])
        assert (run.rc, side.shape(run.out)) == (0, ["Deleted schedule <schedule>"])
        assert side.shape(side.cli("schedule", "list", "--from-peer", me).out) == ["No schedules."]
    assert same(sides, "schedule", "delete", "sched-00000000") == ["No schedule: <schedule>"]


def test_trace_status_and_doctor(sides, tmp_path):
    c = circle()
    bobs = [connect(side, "bob", c, tmp_path) for side in sides]
    try:
        for side, bob in zip(sides, bobs, strict=True):
            ask = {"from_peer": "cli", "to_peer": bob.peer_id, "text": "status?"}
            cid = side.api.post("/ask", json=ask).json()["correlation_id"]
            bob.expect("ask")
            ghost = register(side, f"g{secrets.token_hex(2)}", c, tmp_path / "ghost")
            note = {"from_peer": "cli", "to_peer": ghost["peer_id"], "text": "later"}
            delivery = side.api.post("/notify", json=note).json()["delivery_id"]
            side.names.update({cid: "<the-ask>", delivery: "<the-notify>"})
    finally:
        for bob in bobs:
            bob.close()

    # The same stages; the text numbers them from 1 for us, from 0 for repowire.
    for stand_in, kind, expected in (
        ("<the-ask>", "ask", ["created", "resolved_peer", "routed", "websocket_sent"]),
        ("<the-notify>", "notify", ["created", "resolved_peer", "pending"]),
    ):
        ours, theirs = both(sides, "trace", stand_in)
        assert ours.rc == theirs.rc == 0
        head = [side.shape(run.out)[:2] for side, run in zip(sides, (ours, theirs), strict=True)]
        assert head[0] == head[1] == ["", f"trace: {stand_in} ({kind})"]
        mine, reference = same_json(sides, "trace", stand_in, "--json")
        assert [s["stage"] for s in mine["stages"]] == expected
        assert [s["stage"] for s in reference["stages"]] == expected
    assert same(sides, "trace", "nope-123", rc=1) == ["Error: No delivery trace for 'nope-123'"]

    # status: the same lines; the peer counts are each daemon's own.
    ours, theirs = both(sides, "status")
    assert ours.rc == theirs.rc == 0
    counted = [
        [re.sub(r"\d+", "N", line) if line.startswith("Peers:") else line for line in shaped]
        for shaped in (sides[0].shape(ours.out), sides[1].shape(theirs.out))
    ]
    assert counted[0] == counted[1], (ours.out, theirs.out)
    assert counted[0][-2:] == ["✓ Daemon responding at <daemon>", "Peers: N online, N total"]

    # doctor: the same checks and exit code; its daemon check differs in what /health holds
    # (dispatchyard names its own version, so the CLI warns that it is not 0.17.0; repowire's
    # channel and ACP broker children are repowire's own subsystems).
    ours, theirs = both(sides, "doctor")
    assert ours.rc == theirs.rc == 0

    def checks(side: Side, out: str) -> list[str]:
        names = []
        for line in side.shape(out):
            if line.startswith(("✓", "⚠", "✗", "·")) and "Daemon" not in line:
                names.append(line[2:].split(" ", 1)[0])
        return names

    assert checks(sides[0], ours.out) == checks(sides[1], theirs.out)
    assert any(
        "Daemon reachable" in line and "<daemon>" in line for line in sides[0].shape(ours.out)
    )
    assert "daemon v0.1.0 differs from CLI v0.17.0" in ours.out


def test_commands_whose_routes_dispatchyard_does_not_serve(sides, tmp_path):
    """The relay's share links, role claims and restarts (repowire's tmux spawner) have no
    route in dispatchyard: each command says so with the daemon's 404/405, where repowire
    answers from its own subsystems (README, "Using repowire's tools")."""
    ours, theirs = sides
    c = circle()
    mine, its = (register(side, "sharer", c, tmp_path / "sharer") for side in sides)

    shared = ours.cli("share", mine["display_name"])
    assert (shared.rc, shared.out.strip()) == (0, 'Error: 404 — {"detail":"Not Found"}')
    reference = theirs.cli("share", its["display_name"])
    assert "Relay not configured" in reference.out  # the relay is repowire's, off here

    listed = ours.cli("share", "--list")
    assert listed.rc == 1 and "404" in listed.out

    claimed = ours.cli("peer", "claim-role", "orchestrator", "--peer", mine["display_name"])
    assert (claimed.rc, claimed.out.strip()) == (1, "Failed to claim role: Method Not Allowed")

    # The restart route's 404 reads, to repowire's CLI, as an unknown peer.
    restarted = ours.cli("peer", "restart", mine["display_name"], "--dry-run")
    assert (restarted.rc, restarted.out.strip()) == (1, "Error: Peer 'sharer' not found")
    assert ours.api.get(f"/peers/{mine['peer_id']}").status_code == 200


def test_peer_prune(sides, tmp_path):
    """Offline peers listed (dry run), then removed; a peer on a live socket stays."""
    c = circle()
    for side in sides:
        stale = register(side, "stale", c, tmp_path / "stale")
        # Offline on both now (repowire would list it online until its lazy repair).
        gone = side.api.post(f"/peers/{stale['display_name']}/offline", json={})
        assert gone.status_code == 200, gone.text
    online = [connect(side, "live", c, tmp_path) for side in sides]
    try:
        for side in sides:
            dry = side.cli("peer", "prune", "--dry-run")
            shaped = side.shape(dry.out)
            assert dry.rc == 0 and " • <stale>" in shaped and " • <live>" not in shaped
            assert re.fullmatch(r"Dry run - would remove \d+ peer\(s\)", shaped[-1]), shaped
        ours, theirs = both(sides, "peer", "prune", "-f")
        assert ours.rc == theirs.rc == 0
        for side, run in zip(sides, (ours, theirs), strict=True):
            shaped = side.shape(run.out)
            assert "✓ Removed <stale>" in shaped and shaped[-1].startswith("Pruned ")
            left = [p["display_name"] for p in side.api.get("/peers").json()["peers"]]
            assert side.actual("<live>") in left and side.actual("<stale>") not in left
    finally:
        for peer in online:
            peer.close()


@pytest.fixture
def tmux_pane(tmp_path):
    """A pane running `cat` (what the hook takes for the agent) in a session of its own on a
    private tmux server; the session's name is the hook's circle."""
    assert shutil.which("tmux"), "no tmux"  # `make test` installs it: a failure, not a skip
    socket = f"rw-hook-{secrets.token_hex(4)}"

    def tmux(*args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return done.stdout.strip()

    cwd = tmp_path / "hooked"
    cwd.mkdir()
    session = circle()
    pane = tmux("new-session", "-d", "-s", session, "-c", str(cwd), "-P", "-F", "#{pane_id}", "cat")
    socket_path, server_pid = tmux("display-message", "-p", "#{socket_path} #{pid}").split()
    yield {
        "pane": pane,
        "circle": session,
        "cwd": cwd,
        "tmux": tmux,
        "env": {"TMUX": f"{socket_path},{server_pid},0", "TMUX_PANE": pane},
    }
    with contextlib.suppress(subprocess.CalledProcessError):
        tmux("kill-server")
    Path(socket_path).unlink(missing_ok=True)


def start_hook(side: Side, tmux_pane: dict, home: Path) -> subprocess.Popen:
    env = clean_env(
        HOME=str(home),
        REPOWIRE_DAEMON_HOST="127.0.0.1",
        REPOWIRE_DAEMON_PORT=side.port,
        REPOWIRE_DISPLAY_NAME="hooked",
        **tmux_pane["env"],
    )
    return subprocess.Popen(
        [sys.executable, "-m", "repowire.hooks.websocket_hook"],
        cwd=tmux_pane["cwd"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "hook.log", "ab"),
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)


def test_websocket_hook_types_asks_and_notifies_and_its_receipts_land_in_traces(
    sides, tmux_pane, tmp_path
):
    """repowire's own ws-hook, on our /ws: it connects as the pane's peer, types the asks and
    notifies it is sent into the pane, and its `delivery_ack` receipt of a notify is the
    notify's trace's `hook_received` and `pane_injected`. A notify sent while it is down is
    queued and typed when it connects again, its receipt in its trace after `pending`."""
    ours = sides[0]
    c, pane, tmux = tmux_pane["circle"], tmux_pane["pane"], tmux_pane["tmux"]
    home = tmp_path / "hook-home"
    home.mkdir()

    def peer() -> dict:
        resp = ours.api.get("/peers/hooked", params={"circle": c})
        return resp.json() if resp.status_code == 200 else {}

    def stages(trace_id: str) -> list[str]:
        return [s["stage"] for s in ours.api.get(f"/traces/{trace_id}").json().get("stages", [])]

    def screen() -> str:
        return tmux("capture-pane", "-p", "-J", "-t", pane)

    hook = start_hook(ours, tmux_pane, home)
    try:
        wait_for(lambda: peer().get("status") == "online", timeout=20, message="hook online")
        by_pane = ours.api.get(f"/peers/by-pane/{quote(pane, safe='')}").json()
        assert (by_pane["peer_id"], by_pane["backend"]) == (peer()["peer_id"], "claude-code")
        ask = {"from_peer": "cli", "to_peer": "hooked", "circle": c, "text": "review PR 7"}
        cid = ours.api.post("/ask", json=ask).json()["correlation_id"]
        wait_for(lambda: f"@cli → @hooked [ask #{cid}]: review PR 7" in screen(), timeout=15)
        note = {"from_peer": "cli", "to_peer": "hooked", "circle": c, "text": "build is green"}
        sent = ours.api.post("/notify", json=note).json()
        assert sent["status"] == "sent"
        wait_for(lambda: "@cli → @hooked: build is green" in screen(), timeout=15)
        wait_for(lambda: "pane_injected" in stages(sent["delivery_id"]), message="receipt")
        assert stages(sent["delivery_id"]) == [
            "created", "resolved_peer", "routed", "websocket_sent", "hook_received",
            "pane_injected",
        ]  # fmt: skip
        # The hook acks an ask by its frame's delivery_id (`ask-delivery-…`), not its
        # correlation id: the receipt still lands on the ask's own trace, as repowire records it.
        wait_for(lambda: "pane_injected" in stages(cid), message="the ask's receipt")
        assert stages(cid) == [
            "created", "resolved_peer", "routed", "websocket_sent", "hook_received",
            "pane_injected",
        ]  # fmt: skip

        stop(hook)
        wait_for(lambda: peer().get("status") == "offline", timeout=15, message="hook gone")
        note["text"] = "while you were away"
        queued = ours.api.post("/notify", json=note).json()
        assert queued["status"] == "queued"
        hook = start_hook(ours, tmux_pane, home)
        wait_for(lambda: "@cli → @hooked: while you were away" in screen(), timeout=20)
        wait_for(lambda: "pane_injected" in stages(queued["delivery_id"]), message="receipt")
        assert stages(queued["delivery_id"])[:3] == ["created", "resolved_peer", "pending"]
    finally:
        stop(hook)


# Tools that need a route dispatchyard does not serve: repowire's tmux spawner (/spawn,
# /kill-peer), PR reviews (/reviews), the relay's share links (/shares).
UNSERVED_TOOLS = {
    "spawn_peer": {"backend": "claude-code", "path": "/tmp"},
    "kill_peer": {"peer_identifier": "nobody-here"},
    "mark_reviewed": {"pr_url": "https://example.test/pr/1"},
    "review_queue": {},
    "share_session": {"peer_name": "nobody-here"},
    "revoke_share": {"share_id": "sh_nothing"},
}


async def mcp_session(side: Side, folder: Path, steps) -> dict:
    """Drive `repowire mcp` (stdio) pointed at `side` through `steps(call)`; what it answered."""
    from mcp import ClientSession
    from mcp.client.stdio import StdioServerParameters, stdio_client

    params = StdioServerParameters(
        command=str(BIN / "repowire"),
        args=["mcp"],
        env=clean_env(HOME=str(side.home), REPOWIRE_DAEMON_URL=side.url),
        cwd=str(folder),
    )
    answers: dict = {}
    with open(side.home / "mcp.log", "w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            answers["tools"] = {t.name for t in (await session.list_tools()).tools}

            async def call(tool: str, **args) -> tuple[bool, str]:
                result = await session.call_tool(tool, args)
                text = "\n".join(c.text for c in result.content if hasattr(c, "text"))
                return bool(result.isError), text

            await steps(call, answers)
    return answers


def test_mcp_server_answers_as_against_repowire(sides, tmp_path):
    """Every tool of `repowire mcp` whose route dispatchyard serves answers as against
    `repowire serve` (same error flag, same text but for ids and names); notify_peer to a peer
    registered over HTTP with no socket queues the notify on both (its id answered, the notify
    then drained from /deliveries/pending); the tools of unserved routes get our 404."""
    tag = secrets.token_hex(3)
    folder = tmp_path / f"mcpagent{tag}"
    folder.mkdir()
    bobs, sleepers = [], []
    for side in sides:
        bobs.append(connect(side, f"bob{tag}", "default", tmp_path))
        sleepers.append(register(side, f"sleeper{tag}", "default", tmp_path / f"zz{tag}"))
        side.names[bobs[-1].peer_id] = "<bob-id>"
        side.names[sleepers[-1]["peer_id"]] = "<sleeper-id>"

    def steps_for(side: Side, bob: MeshPeer, sleeper: dict):
        bob_name, sleeper_name = bob.connected["display_name"], sleeper["display_name"]

        async def steps(call, out: dict) -> None:
            import asyncio

            out["whoami"] = await call("whoami")
            me = out["whoami"][1].splitlines()[1].split("\t")
            side.names[me[1]] = "<me>"
            side.names[me[0]] = "<me-id>"
            out["list_peers"] = await call("list_peers", show_offline=True, include_self=True)
            out["set_description"] = await call("set_description", description="reviewing")
            out["notify_sleeper"] = await call("notify_peer", peer_name=sleeper_name, message="up?")
            out["notify_bob"] = await call("notify_peer", peer_name=bob_name, message="fyi")
            out["notify_ghost"] = await call("notify_peer", peer_name="ghost-x", message="x")
            out["ask"] = await call("ask", peer_name=bob_name, query="ready?")
            cid = out["ask"][1]
            side.names[cid] = "<cid>"
            out["ack"] = await call("ack", correlation_id=cid)
            # bob acks the next one (a bare ack); the asker's wait gets it.
            second = (await call("ask", peer_name=bob_name, query="done?"))[1]
            side.names[second] = "<cid2>"
            await asyncio.to_thread(side.api.post, "/ack", json={"correlation_id": second})
            out["wait_on_ack"] = await call("wait_on_ack", correlation_id=second, timeout_seconds=5)
            out["answer_closed"] = await call("answer", correlation_id=second, text="late")
            many = await call("ask_many", peer_names=[bob_name], query="vote?")
            out["ask_many"] = many
            parent = many[1].split(" ")[0]
            side.names[parent] = "<parent>"
            out["ask_many_result"] = await call("ask_many_result", parent_id=parent)
            out["broadcast"] = await call("broadcast", message="all hands")
            out["orchestrator_status"] = await call("orchestrator_status")
            out["claim_orchestrator_role"] = await call("claim_orchestrator_role")

            created = await call(
                "job_create", title=f"job {tag}", prompt="p", due_at="2999-01-01T00:00:00Z"
            )
            out["job_create"] = created
            job = json.loads(created[1])["status"]["job_id"]
            for tool, args in (
                ("job_list", {}),
                ("job_status", {"job_id": job}),
                ("job_show", {"job_id": job}),
                ("job_update", {"job_id": job, "state": "running", "progress_note": "half"}),
                ("job_result", {"job_id": job}),
                ("job_cancel", {"job_id": job, "reason": "not needed"}),
                ("job_status_unknown", {"job_id": "work-000000000000"}),
            ):
                out[tool] = await call(tool.removesuffix("_unknown"), **args)

            sched = await call(
                "schedule_create", to_peer=sleeper_name, text="ping", fire_at="2999-01-01T00:00:00Z"
            )
            out["schedule_create"] = sched
            out["schedule_self"] = await call(
                "schedule_self", text="me", fire_at="2999-01-02T00:00:00Z"
            )
            out["schedule_cron"] = await call(
                "schedule_cron", to_peer=sleeper_name, text="tick", cron="0 3 1 1 *"
            )
            for answered in (out["schedule_self"], out["schedule_cron"], sched):
                side.names[answered[1]] = "<schedule>"
            out["schedule_list"] = await call("schedule_list", include_cron=True)
            out["schedule_delete"] = await call("schedule_delete", schedule_id=sched[1])

            for tool, args in UNSERVED_TOOLS.items():
                out[tool] = await call(tool, **args)

        return steps

    import asyncio

    async def run_both():
        return await asyncio.gather(
            *(
                mcp_session(side, folder, steps_for(side, bob, sleeper))
                for side, bob, sleeper in zip(sides, bobs, sleepers, strict=True)
            )
        )

    try:
        ours, theirs = asyncio.run(run_both())
        frames = [
            {k: bob.expect(k)["text"] for k in ("notify", "ask", "broadcast")} for bob in bobs
        ]
    finally:
        for bob in bobs:
            bob.close()
    assert ours["tools"] == theirs["tools"]
    assert frames[0]["broadcast"] == frames[1]["broadcast"] == "all hands"
    assert frames[0]["notify"].endswith("] fyi") and frames[1]["notify"].endswith("] fyi")
    assert UNSERVED_TOOLS.keys() <= ours["tools"]

    def shaped(side: Side, answer: tuple[bool, str]) -> tuple[bool, list[str]]:
        return answer[0], side.shape(answer[1])

    # The notify to the peer with no socket: queued on both, its id answered; then drained.
    for side, answers, sleeper in zip(sides, (ours, theirs), sleepers, strict=True):
        failed, text = answers["notify_sleeper"]
        assert not failed and re.fullmatch(r"notif-[0-9a-f]{8}", text), text
        pending = side.api.get("/deliveries/pending", params={"peer_id": sleeper["peer_id"]})
        assert [(d["kind"], d["text"]) for d in pending.json()["deliveries"]] == [
            ("notify", f"[#{text}] up?")
        ]

    # ask_many: repowire counts a child delivered only once its hook confirmed it, which a bare
    # test socket may or may not have done by then; ours counts the hand-off.
    ask_many = r"<parent> \(\d/1 delivered\)"
    assert re.fullmatch(ask_many, shaped(sides[1], theirs["ask_many"])[1][0])
    assert shaped(sides[0], ours["ask_many"]) == (False, ["<parent> (1/1 delivered)"])
    equal = (
        "whoami", "set_description", "notify_bob", "ask", "ack",
        "orchestrator_status", "claim_orchestrator_role", "schedule_create", "schedule_self",
        "schedule_cron", "schedule_delete",
    )  # fmt: skip
    for step in equal:
        mine, reference = shaped(sides[0], ours[step]), shaped(sides[1], theirs[step])
        if step == "whoami":  # the MCP peer has no socket: offline for us (see decisions.md)
            mine = (mine[0], [line.replace("\toffline\t", "\tonline\t") for line in mine[1]])
        assert mine == reference, (step, ours[step], theirs[step])

    # Shaped alike but for what each daemon is: the same header and the same rows for the
    # test's peers (repowire lists its own `jobs` service peer too).
    # A socket peer's machine is left empty by us when its connect frame names none (repowire
    # puts its own host there): the machine column aside.
    def rows(side: Side, answer: tuple[bool, str]) -> list[str]:
        lines = side.shape(answer[1])
        ours = sorted(
            mask_status(line, "<sleeper")
            for line in lines[1:]
            if "<bob" in line or "<sleeper" in line
        )
        return [
            lines[0],
            *("\t".join(line.split("\t")[:7] + line.split("\t")[8:]) for line in ours),
        ]

    assert rows(sides[0], ours["list_peers"]) == rows(sides[1], theirs["list_peers"])
    assert len(rows(sides[0], ours["list_peers"])) == 3
    rollup = r"ask-many <parent> — state=\w+ \(\d replied, \d acked, \d pending, \d failed\)"
    assert re.fullmatch(rollup, shaped(sides[1], theirs["ask_many_result"])[1][0])
    assert shaped(sides[0], ours["ask_many_result"]) == (
        False,
        [
            "ask-many <parent> — state=pending (0 replied, 0 acked, 1 pending, 0 failed)",
            f" <bob{tag}> — pending",
        ],
    )
    for step in ("answer_closed", "job_status_unknown", "schedule_list"):
        mine, reference = shaped(sides[0], ours[step]), shaped(sides[1], theirs[step])
        assert mine == reference, (step, ours[step], theirs[step])
    assert shaped(sides[0], ours["answer_closed"])[1][0].endswith(
        'is not a structured question; use /ack."}'
    )
    for side, answers in zip(sides, (ours, theirs), strict=True):
        failed, text = answers["broadcast"]
        assert not failed and f"<bob{tag}>" in side.shape(text)[0].split(": ", 1)[1].split(", ")
        # Both refuse a notify to an unknown peer with 404 (the wording is each daemon's).
        assert answers["notify_ghost"][0] and "Daemon error 404" in answers["notify_ghost"][1]
    waited = [json.loads(answers["wait_on_ack"][1]) for answers in (ours, theirs)]
    keys_match(waited[0], waited[1], "wait_on_ack")
    assert [(w["status"], w["close_reason"]) for w in waited] == [("resolved", "ack")] * 2
    for step in ("job_create", "job_list", "job_status", "job_show", "job_update", "job_result",
                 "job_cancel"):  # fmt: skip
        assert not ours[step][0] and not theirs[step][0], step
        mine, reference = json.loads(ours[step][1]), json.loads(theirs[step][1])
        if step == "job_cancel":
            # The job was marked running by job_update, with no executor. repowire leaves it
            # running, cancel requested, and notes that no peer could be told; we end it
            # cancelled at once (nothing runs it to signal).
            assert reference["status"]["state"] == "running"
            assert reference["status"]["protocol_cancel"]["attempted"] is False
            assert mine["status"]["state"] == "cancelled"
            assert mine["status"]["protocol_cancel"] is None
            reference["status"]["protocol_cancel"] = None
            for noted in ("protocol_cancel", "protocol_cancel_attempts"):
                reference["status"]["provenance"].pop(noted)
        keys_match(mine, reference, step)

    for tool in UNSERVED_TOOLS:
        assert ours[tool] == (
            True,
            f'Error executing tool {tool}: Daemon error 404: {{"detail":"Not Found"}}\n',
        ), ours[tool]
