"""Every Redis key dispatchyard uses, in one place.

A fixed key is an UPPER_CASE string; a key named by ids is a `Shape`: `keys.session(id)` is the
key in Python, and a Lua script that asks for it (`--! keys session`) gets `K.session(id)` built
from the same template, so no key shape is spelled twice.

`work:items`, `work:queue`, `agent:session:{id}` and `work:claim:{id}` are part of the public
layout (workers and tools outside this project read them); the rest are ours.
"""

from __future__ import annotations

import re

_SLOT = "{}"


class Shape:
    """A key template with one `{}` per id it is named by."""

    __slots__ = ("_pieces", "template")

    def __init__(self, template: str) -> None:
        self.template = template
        self._pieces = template.split(_SLOT)

    @property
    def prefix(self) -> str:
        """What every key of this shape starts with (a SCAN pattern's stem)."""
        return self._pieces[0]

    def __call__(self, *ids: str) -> str:
        if len(ids) != len(self._pieces) - 1:
            raise TypeError(f"{self.template} takes {len(self._pieces) - 1} id(s), got {ids}")
        out = self._pieces[0]
        for ident, piece in zip(ids, self._pieces[1:], strict=True):
            out += ident + piece
        return out

    def lua(self) -> str:
        """A Lua function of the ids that builds the key."""
        args = [f"a{i}" for i in range(len(self._pieces) - 1)]
        parts = [_lua_string(self._pieces[0])]
        for arg, piece in zip(args, self._pieces[1:], strict=True):
            parts.append(arg)
            if piece:
                parts.append(_lua_string(piece))
        return f"function({', '.join(args)}) return {' .. '.join(parts)} end"

    def __repr__(self) -> str:
        return f"Shape({self.template!r})"


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


# ---- Orgs, projects, API keys ------------------------------------------------------------------
ORGS = "orgs"
org = Shape("org:{}")
org_slug = Shape("org:slug:{}")
org_projects = Shape("org:{}:projects")
project = Shape("project:{}")
project_slug = Shape("org:{}:project:slug:{}")
org_keys = Shape("org:{}:keys")
apikey = Shape("apikey:{}")
apikey_hash = Shape("apikey:hash:{}")  # + SHA-256 of the secret -> key id

# ---- Daemon hosts (the platform API calls them "workers", hence the stored names) -------------
HOST_HEARTBEATS = "workers:heartbeats"  # ZSET host id -> last heartbeat ms (offline sweep)
# ZSET host id -> last heartbeat ms of the hosts the sweep marked offline, until one heartbeats,
# registers or deregisters (for /metrics: the hosts missing their heartbeats).
HOSTS_OFFLINE = "workers:offline"
host = Shape("worker:{}")
org_hosts = Shape("org:{}:workers")
host_machine = Shape("org:{}:worker:machine:{}")
host_sessions = Shape("worker:sessions:{}")  # SET: its claimed, running, finalizing sessions
host_jtis = Shape("worker:jtis:{}")
jwt_revoked = Shape("jwt:revoked:{}")

# ---- The session queue (contract names) --------------------------------------------------------
WORK_ITEMS = "work:items"
WORK_QUEUE = "work:queue"
session = Shape("agent:session:{}")
claim = Shape("work:claim:{}")
# Per-org and per-project indexes of `work:queue`, so a poll reads only work the host may take.
org_queue = Shape("work:queue:org:{}")
project_queue = Shape("work:queue:project:{}")
org_sessions = Shape("org:sessions:{}")
project_sessions = Shape("project:sessions:{}")
# HASH status -> how many sessions are in it, kept by every script that moves a session (for
# /metrics: counting by status would otherwise read every session).
SESSION_STATUS_COUNTS = "sessions:status_counts"

# ---- Beat ----------------------------------------------------------------------------------------
BEAT_LAST_TICK = "beat:last_tick"
# RedBeat's leader lock (workers/app.py sets it): a beat holds it while it leads.
BEAT_LOCK = "redbeat::lock"

# ---- Daemon config mutations -----------------------------------------------------------------
mutation = Shape("mutation:{}")
mutation_history = Shape("mutation:history:{}")
host_open_mutations = Shape("worker:mutations:open:{}")  # pending + delivered, by requestedAt
host_mutations = Shape("worker:mutations:all:{}")  # every mutation of a host, by requestedAt
org_mutations = Shape("org:mutations:{}")
org_mutations_in = Shape("org:mutations:{}:{}")  # org id, status
MUTATIONS_INFLIGHT = "mutations:inflight"  # delivered, scored by last delivery (for the sweep)

# ---- Durable jobs and recurring templates (daemon group) ------------------------------------
JOB_DOCS = "jobs:docs"  # HASH job id -> status object JSON
JOB_SUMMARIES = "jobs:summaries"  # HASH job id -> summary view JSON
JOBS_ALL = "jobs:all"  # ZSET job id -> created ms (list order, cursors)
JOBS_DUE = "jobs:due"  # ZSET queued job id -> when to (re)send its fire (ms)
JOBS_LEASES = "jobs:leases"  # ZSET job id -> lease expiry ms of its running attempt
JOBS_EXPIRY = "jobs:expiry"  # ZSET queued job id -> expires_at ms
JOBS_DEADLINES = "jobs:deadlines"  # ZSET active job id -> deadline_at ms
TEMPLATE_DOCS = "templates:docs"  # HASH cal id -> status object JSON
TEMPLATE_SUMMARIES = "templates:summaries"  # HASH cal id -> summary view JSON
TEMPLATES_BUFFERED = "templates:buffered"  # SET of templates holding a buffered child
TEMPLATES_ALL = "templates:all"  # ZSET cal id -> next due ms (list order)
TEMPLATES_DUE = "templates:due"  # ZSET active cal id -> next due ms
EVENTS = "events"  # STREAM of job_state_changed and other events
SCHEDULER_LOCK = "scheduler:tick:lock"  # owner token of the running scheduler tick
# Liveness of the Celery side: machines with a live worker node, nodes seen, beat's last tick.
MACHINES_ALIVE = "machines:alive"  # ZSET machine -> last seen ms
NODES_ONLINE = "celery:workers:online"  # ZSET Celery node name -> last seen ms
job = Shape("job:{}")  # the scalar HASH every change writes and transactions WATCH
jobs_by_state = Shape("jobs:state:{}")
jobs_by = Shape("jobs:by:{}:{}")  # an ownership/routing field (owner_peer_id, circle), value
# How far the one-off filing of jobs older than the search indexes got ("<score> <id>"), then
# "done" (state/job_search.py backfill).
JOBS_SEARCH_BACKFILL = "jobs:search:backfill"
# ZSET per minute (its start, ms) of fires: `fires`, `due`, `late_sum_ms`, `late_max_ms` as
# member scores (ZINCRBY, ZADD GT), expiring (state/fire_stats.py).
fires_minute = Shape("stats:fires:{}")
template = Shape("template:{}")
templates_by_state = Shape("templates:state:{}")
trace = Shape("trace:{}")
executors = Shape("executors:{}")  # HASH attempt id -> executor record, per machine

# ---- Peers and asks (the mesh) ---------------------------------------------------------------
PEERS = "peers"  # ZSET peer id -> registered ms
peer = Shape("peer:{}")
# SETs of peer ids by status and by circle, kept by the scripts that write those fields, so a
# list (and a persistent fire's search for an online peer) reads only the peers it may return.
peers_in_state = Shape("peers:status:{}")
peers_in_circle = Shape("peers:circle:{}")
peer_ws = Shape("peer:ws:{}")  # the shim process holding the peer's WebSocket (expires)
node_channel = Shape("mesh:node:{}")  # pub/sub: frames for the sockets one shim process holds
ASKS_RESOLVED = "mesh:asks:resolved"  # pub/sub: correlation ids answered, acked or closed
peer_name = Shape("peer:name:{}:{}")  # circle, name -> peer id
peers_named = Shape("peers:named:{}")  # SET of the ids of peers called that, in any circle
peer_pane = Shape("peer:pane:{}")  # the peer bound to a tmux pane
ask = Shape("ask:{}")
ASKS_OPEN = "asks:open"  # ZSET every open ask -> opened ms (the dashboard's list)
asks_inbound = Shape("asks:inbound:{}")  # + peer id: ZSET of its open inbound asks
asks_outbound = Shape("asks:outbound:{}")  # + asker id (or name): ZSET of its open asks
ask_many = Shape("askmany:{}")  # LIST of the child correlation ids of an ask-many
deliveries = Shape("deliveries:{}")  # LIST of deliveries queued for a peer that polls

# ---- Attachments -------------------------------------------------------------------------------
# Each has a hash that expires; the ledger and sizes outlive it so the bytes it reserved can be
# given back (lazily, by the next upload) once it has expired.
attachment = Shape("attachment:{}")
ATTACHMENTS_BYTES = "attachments:bytes"  # STRING: bytes reserved by unreleased attachments
ATTACHMENTS_LEDGER = "attachments:ledger"  # ZSET attachment id -> expires ms
ATTACHMENTS_SIZES = "attachments:sizes"  # HASH attachment id -> bytes it reserved

# ---- Scheduled messages ----------------------------------------------------------------------
# STRING: the schedule's record (JSON), which every change writes and transactions WATCH.
schedule = Shape("schedule:{}")
# ZSET pending schedule id -> the due time it waits for (ms): the scheduler tick reads the due
# ones, and GET /schedules lists in its order.
SCHEDULES_PENDING = "schedules:pending"
schedules_from = Shape("schedules:from:{}")  # one sender's pending schedules -> due ms

# ---- Retention (state/retention.py) -----------------------------------------------------------
# ZSET per kind (jobs, templates, sessions, mutations, hosts): record id -> ms it became final,
# written in the same atomic step as the move into a final state (and removed by a move out of
# it), so the retention sweep reads only what is due and never scans the keyspace.
final_at = Shape("final:{}")
template_children = Shape("template:children:{}")  # ZSET of a template's children -> created
# ZSET template id -> when a child of it last became final (whose history may need trimming).
TEMPLATES_HISTORY = "templates:history"
# Set once the records final before the retention index existed were filed in it.
RETENTION_BACKFILLED = "retention:backfilled"

_FIXED = re.compile(r"^[A-Z][A-Z0-9_]*$")


def lua_entry(name: str) -> str:
    """The Lua value `K.<name>` of a script that asks for `name`: a fixed key as a string
    (named in lower case), a shape as a function of its ids."""
    value = globals().get(name) or globals().get(name.upper())
    if isinstance(value, Shape):
        return value.lua()
    if isinstance(value, str) and _FIXED.match(name.upper()) and name == name.lower():
        return _lua_string(value)
    raise KeyError(f"no key named {name!r} in keys.py")
