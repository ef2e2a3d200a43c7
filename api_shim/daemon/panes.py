"""tmux panes in the mesh (docs/api.md, repowire 0.17.0's shapes): orphan panes, adopting one
(`link`), a peer's doctor report, and re-hooking a peer whose inbound hook died.

A pane's inbound hook is `api_shim/pane_hook.py`, started here in its own session and detached
from the request. One hook per pane: the starter takes an exclusive flock on the pane's lock
file under `<data_dir>/pane-hooks/` and hands it to the hook (pass_fds), which holds it until
it exits; a second link or rehook of the pane finds it taken and starts nothing. The same
directory keeps each pane's hook log and metadata (the peer it serves, read by the doctor and
by rehook's ownership check).

`link` waits (bounded, LINK_WAIT_S as repowire) for the hook's WebSocket to arrive and rolls
the registration back when none does, so a failed adoption leaves no transportless peer.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from flask import request
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies, pane_hook
from api_shim.context import r, settings
from api_shim.daemon import blueprint
from api_shim.daemon.peers import PeerBackend, _one, agent_alive
from api_shim.errors import ApiError
from dispatchyard.state import asks, clock, connections, panes, peer_lifecycle, peer_lookups, peers
from dispatchyard.state.clock import iso
from dispatchyard.state.models import PeerState

log = logging.getLogger("dispatchyard.panes")

PANE_ID = re.compile(r"^%\d+$")
LINK_WAIT_S = 8.0  # repowire's _LINK_WS_WAIT_SECONDS
LINK_POLL_S = 0.25
# After a rollback, how long a hook that connected in the last instant may take to finish
# registering (its handler was already past the connect frame): its record is removed again.
ROLLBACK_GRACE_S = 0.5
DEFAULT_NAME_SUFFIXES = 20  # {folder}-{n}-{backend}, n = 2.., before a link gives up on names
STALE_PENDING_S = 1800.0  # repowire's STALE_PENDING_THRESHOLD_SECONDS
HOOK_CAPABILITIES = {"hook_version": 1, "capabilities": ["delivery_receipts"]}
# Known agent command basenames -> backend hint (repowire's orphan_panes._AGENT_COMMANDS).
AGENT_COMMANDS = {
    "claude": "claude-code",
    "codex": "codex",
    "gemini": "gemini",
    "opencode": "opencode",
    "antigravity": "antigravity",
    "pi": "pi",
}
NAME_CHARS = re.compile(r"[^a-zA-Z0-9._-]")


class LinkBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    backend: PeerBackend
    name: str | None = Field(None, pattern=r"^[a-zA-Z0-9._-]+$", max_length=64)
    circle: str | None = Field(None, pattern=r"^[A-Za-z0-9._-]{1,64}$")
    cwd: str | None = Field(None, min_length=1, max_length=4096)


class RehookBody(BaseModel):
    model_config = ConfigDict(extra="ignore")
    apply: bool = False
    circle: str | None = Field(None, max_length=64)
    from_peer: str | None = Field(None, max_length=200)  # repowire's hook for authorization


# ---- tmux and hook processes -------------------------------------------------------------


def _socket() -> str | None:
    return settings().tmux_socket


def detect_backend(command: str) -> tuple[str, str]:
    """(backend, confidence) from a pane's command: a display hint, never acted on."""
    backend = AGENT_COMMANDS.get(command.strip().rsplit("/", 1)[-1].lower())
    return (backend, "hint") if backend else ("unknown", "unknown")


def _slug(text: str, fallback: str) -> str:
    """A folder or session name as a peer name or circle (repowire's _sanitize_folder_name)."""
    return re.sub(r"-{2,}", "-", NAME_CHARS.sub("-", text)).strip("-")[:40] or fallback


def _default_names(backend: str, cwd: str) -> list[str]:
    """`{folder}-{backend}`, then repowire's collision names `{folder}-{n}-{backend}`."""
    folder = _slug(cwd.rstrip("/").rsplit("/", 1)[-1], "peer")
    return [f"{folder}-{backend}"] + [
        f"{folder}-{n}-{backend}" for n in range(2, DEFAULT_NAME_SUFFIXES + 2)
    ]


def _hook_dir() -> Path:
    path = settings().data_dir / "pane-hooks"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def _hook_file(pane_id: str, suffix: str) -> Path:
    # Pane ids are per tmux server: the server's name keeps two servers' %3 apart.
    return _hook_dir() / f"{_socket() or 'default'}-{pane_id.lstrip('%')}{suffix}"


def _claim(pane_id: str) -> IO[str] | None:
    """The pane's hook lock, taken; None when a hook (or another link) holds it."""
    lock = _hook_file(pane_id, ".lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        return None
    return lock


def hook_meta(pane_id: str) -> dict[str, Any]:
    try:
        found = json.loads(_hook_file(pane_id, ".json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _forget_meta(pane_id: str) -> None:
    _hook_file(pane_id, ".json").unlink(missing_ok=True)


def _hook_url() -> str:
    return settings().pane_hook_url or request.host_url


def _spawn(lock: IO[str], pane_id: str, peer: dict[str, Any]) -> subprocess.Popen[bytes]:
    """Start the pane's hook for `peer` in its own session, holding `lock`. Raises OSError."""
    options = {
        "--url": _hook_url(),
        "--pane": pane_id,
        "--name": peer["name"],
        "--circle": peer.get("circle") or "global",
        "--backend": peer.get("backend") or "claude-code",
        "--role": peer.get("role") or "agent",
        "--peer-id": peer.get("peer_id"),
        "--path": peer.get("path"),
        "--machine": peer.get("machine"),
        "--tmux-session": peer.get("tmux_session"),
        "--agent-pid": peer.get("agent_pid"),
        "--model": peer.get("model"),
        "--tmux-socket": _socket(),
    }
    # `--flag=value`: a value starting with "-" (a folder, a name) must not read as a flag.
    argv = [sys.executable, "-m", "api_shim.pane_hook"]
    argv += [f"{flag}={value}" for flag, value in options.items() if value not in (None, "")]
    env = dict(os.environ)
    token = settings().daemon_auth_token
    if token is not None:
        env[pane_hook.PANE_HOOK_TOKEN_ENV] = token.get_secret_value()
    with _hook_file(pane_id, ".log").open("ab") as out:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            pass_fds=(lock.fileno(),),
        )
    meta = {
        "pid": proc.pid,
        "peer_id": peer.get("peer_id"),
        "display_name": peer["name"],
        "pane_id": pane_id,
        "started_at": iso(clock.now_ms()),
    }
    try:
        tmp = _hook_file(pane_id, ".json.tmp")
        tmp.write_text(json.dumps(meta))
        tmp.replace(_hook_file(pane_id, ".json"))
    except OSError:
        _stop(proc)  # a hook the caller will not hear of must not run on
        raise
    return proc


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Collect the detached hook's exit status whenever it ends (no zombie is left)."""
    threading.Thread(target=proc.wait, name=f"pane-hook-{proc.pid}", daemon=True).start()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the hook and anything it started (its session is its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(5)


def _await_socket(peer_id: str, proc: subprocess.Popen[bytes]) -> bool:
    """Whether the hook's WebSocket arrives within LINK_WAIT_S; gives up early if it exits."""
    deadline = time.monotonic() + LINK_WAIT_S
    while time.monotonic() < deadline:
        if connections.live(r(), [peer_id])[0]:
            return True
        if proc.poll() is not None:
            break
        time.sleep(LINK_POLL_S)
    return connections.live(r(), [peer_id])[0]


def _roll_back(peer_id: str, pane_id: str, proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None:
        _stop(proc)
    peer_lifecycle.delete(r(), peer_id)
    _forget_meta(pane_id)
    if proc is not None:
        # A hook that connected just before it was killed may still be registering on the
        # shim's side; its record must not outlive the rollback.
        time.sleep(ROLLBACK_GRACE_S)
        peer_lifecycle.delete(r(), peer_id)


# ---- peers ----------------------------------------------------------------------------------


def _peer(ident: str, circle: str | None) -> dict[str, Any]:
    """404 `Peer not found: X`, 409 for a name in several circles: the peer routes' rule."""
    return _one(peers.resolve(r(), ident, circle), ident)


def _this_machine() -> set[str]:
    return {settings().machine_name(), socket.gethostname()}


def _is_local(peer: dict[str, Any]) -> bool:
    """repowire's is_local_machine: the peer's machine is this one, or unknown with a pane."""
    machine = peer.get("machine")
    if machine in _this_machine():
        return True
    return machine in (None, "", "unknown") and bool(peer.get("pane_id"))


def _pid(value: Any) -> int | None:
    try:
        pid = int(value)
    except (TypeError, ValueError):
        return None
    return pid if pid > 0 else None


def _same_path(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return a.rstrip("/") == b.rstrip("/") or os.path.realpath(a) == os.path.realpath(b)


# ---- routes ---------------------------------------------------------------------------------


@blueprint.get("/panes/orphans")
def orphan_panes():
    found = pane_hook.list_panes(_socket()) or []  # no tmux server: no orphans, not an error
    held = panes.bound(r(), [p["pane_id"] for p in found])
    listed = []
    for pane in found:
        if pane["pane_id"] in held:
            continue
        backend, confidence = detect_backend(pane["command"])
        listed.append({**pane, "detected_backend": backend, "confidence": confidence})
    return {"panes": listed}


def _linked(pane_id: str, reason: str, peer: dict[str, Any] | None = None, **extra: Any):
    return {
        "linked": reason == "linked",
        "pane_id": pane_id,
        "peer_id": peer["peer_id"] if peer else None,
        "display_name": peer["name"] if peer else None,
        "transport_connected": reason == "linked",
        "reason": reason,
        "repair_hint": None,
        **extra,
    }


def _already_linked(pane_id: str, peer_id: str) -> ApiError:
    holder = peers.get(r(), peer_id)
    name = holder["name"] if holder else peer_id
    detail = {
        "error": "already_linked",
        "hint": f"Pane {pane_id} is already bound to peer {name}.",
        "peer_id": peer_id,
    }
    return ApiError(409, "already_linked", detail=detail)


@blueprint.post("/panes/<pane_id>/link")
def link_pane(pane_id: str):
    body = bodies.parse(LinkBody)
    if not PANE_ID.match(pane_id):
        raise ApiError(422, f"Invalid tmux pane id: {pane_id!r} (expected like %42)")
    holder = panes.bound(r(), [pane_id]).get(pane_id)
    if holder:
        raise _already_linked(pane_id, holder)
    pane, conclusive = pane_hook.find_pane(_socket(), pane_id)
    if pane is None:
        why = "No live tmux pane" if conclusive else "tmux did not answer for pane"
        detail = {"error": "pane_not_found", "hint": f"{why} {pane_id}."}
        raise ApiError(404, "pane_not_found", detail=detail)
    cwd = body.cwd or pane["cwd"]
    repair = (
        "The ws-hook did not connect. Confirm the pane is a live local agent and retry: "
        f"repowire link --pane {pane_id} --backend {body.backend}"
    )
    lock = _claim(pane_id)
    if lock is None:
        hint = f"A ws-hook (or another link) already holds pane {pane_id}."
        return _linked(pane_id, "ws_hook_spawn_failed", repair_hint=hint)
    try:
        fields = {
            "circle": body.circle or _slug(pane["session"], "global"),
            "backend": body.backend,
            "role": "agent",
            "path": cwd,
            "machine": socket.gethostname(),  # as POST /peers records it
            "tmux_session": pane["session"],
            "metadata": dict(HOOK_CAPABILITIES),
        }
        names = [body.name] if body.name else _default_names(body.backend, cwd)
        outcome, found = panes.adopt(r(), pane_id, fields, names, clock.now_ms())
        if outcome == "bound":
            raise _already_linked(pane_id, found)
        if outcome == "name_taken":
            hint = f"A peer named {found} already exists in circle {fields['circle']}."
            raise ApiError(409, "name_taken", detail={"error": "name_taken", "hint": hint})
        if outcome != "ok":
            hint = "Another registration changed this pane or name meanwhile; retry."
            raise ApiError(409, "link_conflict", detail={"error": "link_conflict", "hint": hint})
        peer = {**fields, "peer_id": found, "pane_id": pane_id}
        try:
            proc = _spawn(lock, pane_id, peer)
        except Exception as e:
            # Whatever failed, the registration goes: fail closed, no transportless peer.
            log.warning("pane %s: ws-hook spawn failed: %s", pane_id, e)
            _roll_back(found, pane_id, None)
            return _linked(pane_id, "ws_hook_spawn_failed", repair_hint=repair)
    finally:
        lock.close()  # the hook holds its own copy from here
    if _await_socket(found, proc):
        _reap(proc)
        return _linked(pane_id, "linked", peer)
    _roll_back(found, pane_id, proc)
    return _linked(pane_id, "transport_unestablished", repair_hint=repair)


@blueprint.get("/peers/<ident>/doctor")
def peer_doctor(ident: str):
    peer = _peer(ident, request.args.get("circle") or None)
    peer_id = peer["peer_id"]
    now = clock.now_ms()
    local = _is_local(peer)
    recorded = panes.recorded_status(r(), peer_id)
    ws_connected = bool(peer.get("ws_connected"))
    agent_pid = _pid(peer.get("agent_pid"))
    pane_id = peer.get("pane_id")
    pane_exists: bool | None = None
    evidence = None
    meta: dict[str, Any] = {}
    if local and pane_id:
        pane, conclusive = pane_hook.find_pane(_socket(), pane_id)
        pane_exists = (pane is not None) if conclusive else None
        if pane is not None:
            evidence = {
                "tmux_session": f"{pane['session']}:{pane['window']}",
                "current_path": pane["cwd"],
                "pane_pid": str(pane["pid"]),
            }
        meta = hook_meta(pane_id)
    pid_alive = agent_alive(agent_pid) if local and agent_pid is not None else None
    count, oldest_ms = asks.inbound_count_and_oldest(r(), peer_id)
    age = None if oldest_ms is None else max(0.0, (now - oldest_ms) / 1000)
    status = peer_lookups.wire_status({"status": recorded or PeerState.OFFLINE})
    found = []
    if local and panes.claims_connected(recorded) and not ws_connected:
        detail = f"peer is {status} but has no live WebSocket connection"
        found.append({"code": "ONLINE_BUT_NO_WS", "severity": "error", "detail": detail})
    if local and pane_id and pane_exists is False:
        detail = f"registry pane {pane_id} is not present in tmux"
        found.append({"code": "PANE_MISSING", "severity": "error", "detail": detail})
    if local and agent_pid is not None and pid_alive is False:
        detail = f"agent pid {agent_pid} is not a live process"
        found.append({"code": "AGENT_PID_DEAD", "severity": "error", "detail": detail})
    meta_peer = meta.get("peer_id") if isinstance(meta.get("peer_id"), str) else None
    oldest_cid = panes.oldest_inbound(r(), peer_id) if count else None
    if age is not None and age > STALE_PENDING_S:
        detail = f"oldest pending inbound ask {oldest_cid} has been open ~{int(age // 60)}m"
        found.append({"code": "STALE_PENDING_ASK", "severity": "warning", "detail": detail})
    last_seen = peer.get("last_seen")
    name = meta.get("display_name")
    return {
        "peer_id": peer_id,
        "display_name": peer["name"],
        "status": status,
        "turn_state": peer.get("turn_state"),
        "last_seen": iso(int(last_seen)) if last_seen else None,
        "machine": peer.get("machine"),
        "backend": peer.get("backend") or "claude-code",
        "circle": peer.get("circle") or "global",
        "role": peer.get("role") or "agent",
        "pane_id": pane_id,
        "is_local_machine": local,
        "ws_connected": ws_connected,
        # The socket registers the pane it serves on the peer: while connected, it is this.
        "ws_pane_id": pane_id if ws_connected else None,
        "tmux_pane_exists": pane_exists,
        "tmux_evidence": evidence,
        "hook_meta_available": bool(meta),
        "hook_meta_peer_id": meta_peer,
        "hook_meta_display_name": name if isinstance(name, str) else None,
        "agent_pid": agent_pid,
        "agent_pid_alive": pid_alive,
        "pending_inbound_count": count,
        "oldest_pending_age_seconds": age,
        "oldest_pending_cid": oldest_cid,
        "contradictions": found,
    }


def _refuse(error: str, hint: str, **extra: Any) -> ApiError:
    return ApiError(409, error, detail={"error": error, "hint": hint, **extra})


@blueprint.post("/peers/<name>/rehook")
def rehook_peer(name: str):
    body = bodies.validate(RehookBody, bodies.raw_json(allow_empty=True))
    peer = _peer(name, body.circle or request.args.get("circle") or None)
    machine = peer.get("machine")
    if not _is_local(peer) and machine not in (None, "", "unknown"):
        raise _refuse(
            "cross_host",
            "Peer rehook is same-host only.",
            peer_machine=machine,
            self_machine=socket.gethostname(),
        )
    pane_id = peer.get("pane_id")
    if not pane_id:
        raise _refuse("missing_pane", "Peer has no recorded pane; nothing to rehook.")
    pane, conclusive = pane_hook.find_pane(_socket(), pane_id)
    if pane is None:
        why = "is not present in tmux" if conclusive else "could not be checked (tmux)"
        raise _refuse("missing_pane", f"Peer pane {pane_id} {why}.", pane_id=pane_id)
    # Ownership: before a hook types future messages into the pane, show the pane is this
    # peer's (its working directory, or the metadata of the hook that served it), not a
    # reused pane id (as repowire's pane_verified).
    meta = hook_meta(pane_id)
    if not (
        _same_path(pane["cwd"], peer.get("path"))
        or meta.get("peer_id") == peer["peer_id"]
        or (meta.get("display_name") and meta.get("display_name") == peer["name"])
    ):
        hint = "Could not prove the pane belongs to this peer (pane path and hook metadata differ)."
        raise _refuse("pane_unverified", hint, pane_id=pane_id)
    if peer.get("status") == PeerState.RETIRED:
        raise _refuse("peer_retired", "The peer is retired; its agent must register again.")
    answer = {
        "ok": True,
        "acted": False,
        "peer_id": peer["peer_id"],
        "display_name": peer["name"],
        "pane_id": pane_id,
        "ws_was_connected": bool(peer.get("ws_connected")),
        # No ping here: a held connection key is renewed by the live process holding the
        # socket, which is the health this daemon has. Not claimed as a ping.
        "ping_ok": None,
        "pane_verified": True,
        "ws_hook_respawned": False,
    }
    if answer["ws_was_connected"]:
        return {**answer, "reason": "already_healthy"}
    if not body.apply:
        return {**answer, "reason": "dry_run"}
    lock = _claim(pane_id)
    if lock is None:
        return {**answer, "acted": True, "reason": "respawn_skipped_pid_alive_or_contested"}
    try:
        proc = _spawn(lock, pane_id, peer)
    except OSError as e:
        log.warning("pane %s: ws-hook respawn failed: %s", pane_id, e)
        return {**answer, "acted": True, "reason": "respawn_failed"}
    finally:
        lock.close()
    _reap(proc)
    return {**answer, "acted": True, "ws_hook_respawned": True, "reason": "respawned"}
