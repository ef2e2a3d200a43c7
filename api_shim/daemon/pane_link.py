"""Adopting a tmux pane as a peer (`link`) and restarting a peer's dead hook (`rehook`): the
checks, the registration, the hook process, and for a link the bounded wait for its socket and
the rollback when none arrives.

`link` waits at most LINK_WAIT_S (repowire's) for the hook's WebSocket, stopping early if the
hook exits, and rolls the registration back when none arrives, so a failed adoption leaves no
transportless peer. `rehook` starts a hook and does not wait. Refusals are raised as ApiError
with repowire's `{error, hint}` detail; the routes serialize what is returned.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from typing import Any

import redis

from api_shim.daemon import hook_processes as hooks
from api_shim.daemon import pane_names
from api_shim.errors import ApiError
from dispatchyard import tmux
from dispatchyard.settings import Settings
from dispatchyard.state import clock, panes, peer_lifecycle, peers
from dispatchyard.state.errors import Conflict, NotFound
from dispatchyard.state.models import PeerState

log = logging.getLogger("dispatchyard.panes")

LINK_WAIT_S = 8.0  # repowire's _LINK_WS_WAIT_SECONDS
# After a rollback, how long a hook that connected in the last instant may take to finish
# registering (its handler was already past the connect frame): its record is removed again.
ROLLBACK_GRACE_S = 0.5
HOOK_CAPABILITIES = {"hook_version": 1, "capabilities": ["delivery_receipts"]}


@dataclass(frozen=True)
class Linked:
    """How a link ended: `reason` is `linked`, `transport_unestablished` or
    `ws_hook_spawn_failed`; `peer` is the registered peer when linked."""

    reason: str
    peer: dict[str, Any] | None = None
    repair_hint: str | None = None


@dataclass(frozen=True)
class Rehooked:
    """What a rehook did: `reason` is repowire's (`already_healthy`, `dry_run`, `respawned`,
    `respawn_failed`, `respawn_skipped_pid_alive_or_contested`)."""

    reason: str
    acted: bool = False
    respawned: bool = False


def refusal(status: int, error: str, hint: str, **extra: Any) -> ApiError:
    """repowire's refusal body: `{"detail": {"error", "hint", ...}}`."""
    return ApiError(status, error, detail={"error": error, "hint": hint, **extra})


def already_linked(r: redis.Redis, pane_id: str, peer_id: str) -> ApiError:
    holder = peers.get(r, peer_id)
    name = holder["name"] if holder else peer_id
    hint = f"Pane {pane_id} is already bound to peer {name}."
    return refusal(409, "already_linked", hint, peer_id=peer_id)


def link(
    r: redis.Redis,
    s: Settings,
    pane_id: str,
    *,
    backend: str,
    name: str | None,
    circle: str | None,
    cwd: str | None,
    hook_url: str,
    wait_s: float = LINK_WAIT_S,
) -> Linked:
    """Register a new peer on the orphan pane `pane_id` and start its hook; waits at most
    `wait_s` for the hook's socket, else deletes the registration and the hook. Raises
    ApiError 409 `already_linked` / `name_taken` / `link_conflict`, 404 `pane_not_found`."""
    holder = panes.bound(r, [pane_id]).get(pane_id)
    if holder:
        raise already_linked(r, pane_id, holder)
    pane, conclusive = tmux.find_pane(s.tmux_socket, pane_id)
    if pane is None:
        why = "No live tmux pane" if conclusive else "tmux did not answer for pane"
        raise refusal(404, "pane_not_found", f"{why} {pane_id}.")
    cwd = cwd or pane["cwd"]
    repair = (
        "The ws-hook did not connect. Confirm the pane is a live local agent and retry: "
        f"repowire link --pane {pane_id} --backend {backend}"
    )
    lock = hooks.claim(s, pane_id)
    if lock is None:
        hint = f"A ws-hook (or another link) already holds pane {pane_id}."
        return Linked("ws_hook_spawn_failed", repair_hint=hint)
    try:
        fields = {
            "circle": circle or pane_names.slug(pane["session"], "global"),
            "backend": backend,
            "role": "agent",
            "path": cwd,
            "machine": socket.gethostname(),  # as POST /peers records it
            "tmux_session": pane["session"],
            "metadata": dict(HOOK_CAPABILITIES),
        }
        names = [name] if name else pane_names.default_names(backend, cwd)
        try:
            found = panes.adopt(r, pane_id, fields, names, clock.now_ms())
        except panes.PaneBound as bound:
            raise already_linked(r, pane_id, bound.holder) from None
        except panes.NameTaken as taken:
            raise refusal(409, "name_taken", taken.message) from None
        except Conflict as raced:
            raise refusal(409, "link_conflict", raced.message) from None
        peer = {**fields, "peer_id": found, "pane_id": pane_id}
        try:
            proc = hooks.start(s, lock, pane_id, peer, hook_url)
        except Exception as e:
            # Whatever failed, the registration goes: fail closed, no transportless peer.
            log.warning("pane %s: ws-hook spawn failed: %s", pane_id, e)
            _roll_back(r, s, found, pane_id, None)
            return Linked("ws_hook_spawn_failed", repair_hint=repair)
    finally:
        lock.close()  # the hook holds its own copy from here
    if hooks.await_socket(r, found, proc, wait_s):
        hooks.release(proc)
        return Linked("linked", peer)
    _roll_back(r, s, found, pane_id, proc)
    return Linked("transport_unestablished", repair_hint=repair)


def _roll_back(
    r: redis.Redis, s: Settings, peer_id: str, pane_id: str, proc: subprocess.Popen[bytes] | None
) -> None:
    if proc is not None:
        hooks.stop(proc)
    with contextlib.suppress(NotFound):
        peer_lifecycle.delete(r, peer_id)
    hooks.forget(s, pane_id)
    if proc is not None:
        # A hook that connected just before it was killed may still be registering on the
        # shim's side; its record must not outlive the rollback.
        time.sleep(ROLLBACK_GRACE_S)
        with contextlib.suppress(NotFound):
            peer_lifecycle.delete(r, peer_id)


def rehook(
    r: redis.Redis, s: Settings, peer: dict[str, Any], *, apply: bool, hook_url: str
) -> Rehooked:
    """Restart the hook of `peer`'s pane when its socket is gone and `apply` is set (else a dry
    run). Raises ApiError 409 `cross_host`, `missing_pane`, `pane_unverified`, `peer_retired`."""
    machine = peer.get("machine")
    if not pane_names.is_local(s, peer) and machine not in (None, "", "unknown"):
        raise refusal(
            409,
            "cross_host",
            "Peer rehook is same-host only.",
            peer_machine=machine,
            self_machine=socket.gethostname(),
        )
    pane_id = peer.get("pane_id")
    if not pane_id:
        raise refusal(409, "missing_pane", "Peer has no recorded pane; nothing to rehook.")
    pane, conclusive = tmux.find_pane(s.tmux_socket, pane_id)
    if pane is None:
        why = "is not present in tmux" if conclusive else "could not be checked (tmux)"
        raise refusal(409, "missing_pane", f"Peer pane {pane_id} {why}.", pane_id=pane_id)
    # Ownership: before a hook types future messages into the pane, show the pane is this
    # peer's (its working directory, or the metadata of the hook that served it), not a
    # reused pane id (as repowire's pane_verified).
    meta = hooks.meta(s, pane_id)
    if not (
        _same_path(pane["cwd"], peer.get("path"))
        or meta.get("peer_id") == peer["peer_id"]
        or (meta.get("display_name") and meta.get("display_name") == peer["name"])
    ):
        hint = "Could not prove the pane belongs to this peer (pane path and hook metadata differ)."
        raise refusal(409, "pane_unverified", hint, pane_id=pane_id)
    if peer.get("status") == PeerState.RETIRED:
        raise refusal(409, "peer_retired", "The peer is retired; its agent must register again.")
    if peer.get("ws_connected"):
        return Rehooked("already_healthy")
    if not apply:
        return Rehooked("dry_run")
    lock = hooks.claim(s, pane_id)
    if lock is None:
        return Rehooked("respawn_skipped_pid_alive_or_contested", acted=True)
    try:
        proc = hooks.start(s, lock, pane_id, peer, hook_url)
    except OSError as e:
        log.warning("pane %s: ws-hook respawn failed: %s", pane_id, e)
        return Rehooked("respawn_failed", acted=True)
    finally:
        lock.close()
    hooks.release(proc)
    return Rehooked("respawned", acted=True, respawned=True)


def _same_path(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return a.rstrip("/") == b.rstrip("/") or os.path.realpath(a) == os.path.realpath(b)
