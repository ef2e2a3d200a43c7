"""What the peer and pane routes answer (repowire 0.17's shapes): a peer as PeerInfo, its
registration, its doctor report, an orchestrator's status, the orphan panes, link and rehook."""

from __future__ import annotations

from typing import Literal

from api_shim.answers import Answer, Json


class PeerInfo(Answer):
    """A peer as repowire's PeerInfo shows it; the probes this daemon does not make (pane
    safety, injection times) are always null."""

    peer_id: str
    name: str
    display_name: str
    path: str | None
    machine: str | None
    tmux_session: str | None
    backend: str
    model: str | None
    circle: str
    role: str
    status: Literal["online", "busy", "offline"]
    turn_state: str | None
    last_seen: str | None
    metadata: Json
    description: str
    ws_connected: bool
    hook_supports_receipts: bool
    last_successful_injection_at: None
    last_injection_failure_at: None
    pending_ask_count: int
    oldest_pending_age_seconds: float | None
    pane_safe: None
    inbound_status: Literal["offline", "no_hook", "legacy_unverified", "online"]


class Peers(Answer):
    peers: list[PeerInfo]


class PeerRegistered(Answer):
    ok: Literal[True]
    peer_id: str
    display_name: str
    pane_assigned: bool


class MarkedOffline(Answer):
    ok: Literal[True]
    cancelled_queries: int


class OrchestratorStatus(Answer):
    circle: str
    present: bool
    peer_id: str | None
    peer_name: str | None
    last_seen: str | None
    stale_after_seconds: int


class OrphanPane(Answer):
    pane_id: str
    pid: int
    command: str
    cwd: str
    session: str
    window: str
    detected_backend: str
    confidence: Literal["hint", "unknown"]


class OrphanPanes(Answer):
    panes: list[OrphanPane]


class Linked(Answer):
    linked: bool
    pane_id: str
    peer_id: str | None
    display_name: str | None
    transport_connected: bool
    reason: Literal["linked", "transport_unestablished", "ws_hook_spawn_failed"]
    repair_hint: str | None


class Rehooked(Answer):
    ok: Literal[True]
    acted: bool
    peer_id: str
    display_name: str
    pane_id: str
    ws_was_connected: bool
    ping_ok: None
    pane_verified: Literal[True]
    ws_hook_respawned: bool
    reason: Literal[
        "already_healthy",
        "dry_run",
        "respawned",
        "respawn_failed",
        "respawn_skipped_pid_alive_or_contested",
    ]


class TmuxEvidence(Answer):
    tmux_session: str
    current_path: str
    pane_pid: str


class Contradiction(Answer):
    code: str
    severity: Literal["error", "warning"]
    detail: str


class Doctor(Answer):
    """The peer's record against its pane, agent process, hook and pending asks; the local
    probes are null for a peer on another machine."""

    peer_id: str
    display_name: str
    status: Literal["online", "busy", "offline"]
    turn_state: str | None
    last_seen: str | None
    machine: str | None
    backend: str
    circle: str
    role: str
    pane_id: str | None
    is_local_machine: bool
    ws_connected: bool
    ws_pane_id: str | None
    tmux_pane_exists: bool | None
    tmux_evidence: TmuxEvidence | None
    hook_meta_available: bool
    hook_meta_peer_id: str | None
    hook_meta_display_name: str | None
    agent_pid: int | None
    agent_pid_alive: bool | None
    pending_inbound_count: int
    oldest_pending_age_seconds: float | None
    oldest_pending_cid: str | None
    contradictions: list[Contradiction]
