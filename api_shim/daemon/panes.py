"""tmux panes in the mesh (docs/api.md, repowire 0.17.0's shapes): orphan panes, adopting one
(`link`), a peer's doctor report, and re-hooking a peer whose inbound hook died.

Each route parses, makes one call and serializes: the reads are in `pane_reports`, link and
rehook (the hook process, the bounded wait for its socket, the rollback) in `pane_link`.
"""

from __future__ import annotations

from typing import Any

from flask import request
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies
from api_shim.context import r, settings
from api_shim.daemon import blueprint, pane_link, pane_reports, peer_answers
from api_shim.daemon.pane_names import PANE_ID
from api_shim.daemon.peer_requests import PeerBackend
from api_shim.daemon.peers import one
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import peers


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


def _peer(ident: str, circle: str | None) -> dict[str, Any]:
    """404 `Peer not found: X`, 409 for a name in several circles: the peer routes' rule."""
    return one(peers.resolve(r(), ident, circle), ident)


def _hook_url() -> str:
    """The URL a started hook dials: the configured one, else the one this request came in on."""
    return settings().pane_hook_url or request.host_url


@blueprint.get("/panes/orphans")
@declare(responses={200: peer_answers.OrphanPanes})
def orphan_panes() -> dict[str, Any]:
    return {"panes": pane_reports.orphans(r(), settings())}


@blueprint.post("/panes/<pane_id>/link")
@declare(body=LinkBody, responses={200: peer_answers.Linked})
def link_pane(pane_id: str) -> dict[str, Any]:
    body = bodies.parse(LinkBody)
    if not PANE_ID.match(pane_id):
        raise ApiError(422, f"Invalid tmux pane id: {pane_id!r} (expected like %42)")
    done = pane_link.link(
        r(),
        settings(),
        pane_id,
        backend=body.backend,
        name=body.name,
        circle=body.circle,
        cwd=body.cwd,
        hook_url=_hook_url(),
    )
    linked = done.reason == "linked"
    return {
        "linked": linked,
        "pane_id": pane_id,
        "peer_id": done.peer["peer_id"] if done.peer else None,
        "display_name": done.peer["name"] if done.peer else None,
        "transport_connected": linked,
        "reason": done.reason,
        "repair_hint": done.repair_hint,
    }


@blueprint.get("/peers/<ident>/doctor")
@declare(responses={200: peer_answers.Doctor})
def peer_doctor(ident: str) -> dict[str, Any]:
    peer = _peer(ident, request.args.get("circle") or None)
    return pane_reports.doctor(r(), settings(), peer)


@blueprint.post("/peers/<name>/rehook")
@declare(body=RehookBody, optional_body=True, responses={200: peer_answers.Rehooked})
def rehook_peer(name: str) -> dict[str, Any]:
    body = bodies.validate(RehookBody, bodies.raw_json(allow_empty=True))
    peer = _peer(name, body.circle or request.args.get("circle") or None)
    done = pane_link.rehook(r(), settings(), peer, apply=body.apply, hook_url=_hook_url())
    return {
        "ok": True,
        "acted": done.acted,
        "peer_id": peer["peer_id"],
        "display_name": peer["name"],
        "pane_id": peer["pane_id"],
        "ws_was_connected": bool(peer.get("ws_connected")),
        # No ping here: a held connection key is renewed by the live process holding the
        # socket, which is the health this daemon has. Not claimed as a ping.
        "ping_ok": None,
        "pane_verified": True,
        "ws_hook_respawned": done.respawned,
        "reason": done.reason,
    }
