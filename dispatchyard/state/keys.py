"""Every Redis key dispatchyard uses, in one place.

`work:items`, `work:queue`, `agent:session:{id}` and `work:claim:{id}` are part of the public layout
(workers and tools outside this project read them); the rest are ours. Lua scripts that must build a
key from an id they read receive the prefix from here as an argument, so no key name is spelled
twice.
"""

from __future__ import annotations

# Orgs, projects, API keys
ORGS = "orgs"


def org(org_id: str) -> str:
    return f"org:{org_id}"


def org_slug(slug: str) -> str:
    return f"org:slug:{slug}"


def org_projects(org_id: str) -> str:
    return f"org:{org_id}:projects"


PROJECT_PREFIX = "project:"


def project(project_id: str) -> str:
    return f"{PROJECT_PREFIX}{project_id}"


def project_slug(org_id: str, slug: str) -> str:
    return f"org:{org_id}:project:slug:{slug}"


def org_keys(org_id: str) -> str:
    return f"org:{org_id}:keys"


APIKEY_PREFIX = "apikey:"
APIKEY_HASH_PREFIX = "apikey:hash:"


def apikey(key_id: str) -> str:
    return f"{APIKEY_PREFIX}{key_id}"


def apikey_hash(sha256_hex: str) -> str:
    return f"{APIKEY_HASH_PREFIX}{sha256_hex}"


# Daemon hosts (the platform API calls them "workers", hence the stored names) and their
# runtime tokens
HOST_HEARTBEATS = "workers:heartbeats"  # ZSET host id -> last heartbeat ms (offline sweep)
HOST_PREFIX = "worker:"


def host(host_id: str) -> str:
    return f"{HOST_PREFIX}{host_id}"


def org_hosts(org_id: str) -> str:
    return f"org:{org_id}:workers"


def host_machine(org_id: str, machine_id: str) -> str:
    return f"org:{org_id}:worker:machine:{machine_id}"


HOST_SESSIONS_PREFIX = "worker:sessions:"


def host_sessions(host_id: str) -> str:
    """SET of the host's active (claimed, running, finalizing) session ids."""
    return f"{HOST_SESSIONS_PREFIX}{host_id}"


def host_jtis(host_id: str) -> str:
    return f"worker:jtis:{host_id}"


JWT_REVOKED_PREFIX = "jwt:revoked:"


def jwt_revoked(jti: str) -> str:
    return f"{JWT_REVOKED_PREFIX}{jti}"


# The session queue (contract names)
WORK_ITEMS = "work:items"
WORK_QUEUE = "work:queue"
SESSION_PREFIX = "agent:session:"
CLAIM_PREFIX = "work:claim:"
ORG_QUEUE_PREFIX = "work:queue:org:"
PROJECT_QUEUE_PREFIX = "work:queue:project:"
ORG_SESSIONS_PREFIX = "org:sessions:"
PROJECT_SESSIONS_PREFIX = "project:sessions:"


def session(session_id: str) -> str:
    return f"{SESSION_PREFIX}{session_id}"


def claim(session_id: str) -> str:
    return f"{CLAIM_PREFIX}{session_id}"


def org_queue(org_id: str) -> str:
    """Per-org index of `work:queue`, for workers that serve every project of the org."""
    return f"{ORG_QUEUE_PREFIX}{org_id}"


def project_queue(project_id: str) -> str:
    """Per-project index of `work:queue`, for workers limited to some projects."""
    return f"{PROJECT_QUEUE_PREFIX}{project_id}"


def org_sessions(org_id: str) -> str:
    return f"{ORG_SESSIONS_PREFIX}{org_id}"


def project_sessions(project_id: str) -> str:
    return f"{PROJECT_SESSIONS_PREFIX}{project_id}"


# What the queue scripts (lib_sessions.lua) build keys from: `P.<name> .. id`.
# HASH status -> how many sessions are in it, kept by every script that moves a session (for
# /metrics: counting by status would otherwise read every session).
SESSION_STATUS_COUNTS = "sessions:status_counts"
SESSION_SCRIPT_PREFIXES = {
    "status_counts": SESSION_STATUS_COUNTS,
    "items": WORK_ITEMS,
    "queue": WORK_QUEUE,
    "session": SESSION_PREFIX,
    "claim": CLAIM_PREFIX,
    "org_queue": ORG_QUEUE_PREFIX,
    "project_queue": PROJECT_QUEUE_PREFIX,
    "host_sessions": HOST_SESSIONS_PREFIX,
}


# Beat
BEAT_LAST_TICK = "beat:last_tick"

# Daemon config mutations
MUTATION_PREFIX = "mutation:"
MUTATION_HISTORY_PREFIX = "mutation:history:"
HOST_OPEN_MUTATIONS_PREFIX = "worker:mutations:open:"  # pending + delivered, by requestedAt
ORG_MUTATIONS_PREFIX = "org:mutations:"  # + org id (all) or + org id + ":" + status
MUTATIONS_INFLIGHT = "mutations:inflight"  # delivered, scored by last delivery (for the sweep)


def mutation(mutation_id: str) -> str:
    return f"{MUTATION_PREFIX}{mutation_id}"


def mutation_history(mutation_id: str) -> str:
    return f"{MUTATION_HISTORY_PREFIX}{mutation_id}"


HOST_MUTATIONS_PREFIX = "worker:mutations:all:"


def host_open_mutations(host_id: str) -> str:
    return f"{HOST_OPEN_MUTATIONS_PREFIX}{host_id}"


def host_mutations(host_id: str) -> str:
    """Every mutation of a host, by requestedAt (for listing)."""
    return f"{HOST_MUTATIONS_PREFIX}{host_id}"


def org_mutations(org_id: str, status: str | None = None) -> str:
    base = f"{ORG_MUTATIONS_PREFIX}{org_id}"
    return f"{base}:{status}" if status else base


# What the mutation scripts (lib_mutations.lua, heartbeat.lua) build keys from. The heartbeat
# also reads the registering API key and counts the queues the host serves.
MUTATION_SCRIPT_PREFIXES = {
    "mutation": MUTATION_PREFIX,
    "history": MUTATION_HISTORY_PREFIX,
    "open": HOST_OPEN_MUTATIONS_PREFIX,
    "host_all": HOST_MUTATIONS_PREFIX,
    "org_mutations": ORG_MUTATIONS_PREFIX,
    "inflight": MUTATIONS_INFLIGHT,
    "apikey": APIKEY_PREFIX,
    "org_queue": ORG_QUEUE_PREFIX,
    "project_queue": PROJECT_QUEUE_PREFIX,
}


# Durable jobs and recurring templates (daemon group)
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


def job(job_id: str) -> str:
    return f"job:{job_id}"


def jobs_by_state(state: str) -> str:
    return f"jobs:state:{state}"


def jobs_by(field: str, value: str) -> str:
    """Index of jobs by an ownership/routing field (owner_peer_id, circle, ...)."""
    return f"jobs:by:{field}:{value}"


def template(template_id: str) -> str:
    return f"template:{template_id}"


def templates_by_state(state: str) -> str:
    return f"templates:state:{state}"


def trace(trace_id: str) -> str:
    return f"trace:{trace_id}"


def executors(machine: str) -> str:
    """HASH attempt id -> executor process record, for the processes one host started."""
    return f"executors:{machine}"


# Peers and asks (the mesh registry persistent jobs are delivered through)
PEERS = "peers"  # ZSET peer id -> registered ms
PEER_PREFIX = "peer:"
# SETs of peer ids by status and by circle, kept by the scripts that write those fields, so a
# list (and a persistent fire's search for an online peer) reads only the peers it may return.
PEERS_IN_STATE_PREFIX = "peers:status:"
PEERS_IN_CIRCLE_PREFIX = "peers:circle:"


def peer(peer_id: str) -> str:
    return f"{PEER_PREFIX}{peer_id}"


def peers_in_state(state: str) -> str:
    return f"{PEERS_IN_STATE_PREFIX}{state}"


def peers_in_circle(circle: str) -> str:
    return f"{PEERS_IN_CIRCLE_PREFIX}{circle}"


# What the peer scripts build keys from (the peer id, or its old status or circle, is read
# inside the script).
PEER_WS_PREFIX = "peer:ws:"  # + peer id -> the shim process holding its WebSocket (expires)
PEER_SCRIPT_PREFIXES = {
    "peer": PEER_PREFIX,
    "ws": PEER_WS_PREFIX,
    "state": PEERS_IN_STATE_PREFIX,
    "circle": PEERS_IN_CIRCLE_PREFIX,
}


def peer_ws(peer_id: str) -> str:
    """The shim process (node id) holding the peer's live WebSocket; expires unless renewed."""
    return f"{PEER_WS_PREFIX}{peer_id}"


NODE_CHANNEL_PREFIX = "mesh:node:"


def node_channel(node: str) -> str:
    """Pub/sub channel of one shim process: frames for the sockets it holds."""
    return f"{NODE_CHANNEL_PREFIX}{node}"


ASKS_RESOLVED = "mesh:asks:resolved"  # pub/sub: correlation ids answered, acked or closed


PEER_NAME_PREFIX = "peer:name:"  # + circle + ":" + name -> peer id
PEERS_NAMED_PREFIX = "peers:named:"
PEER_PANE_PREFIX = "peer:pane:"


def peer_name(circle: str, name: str) -> str:
    return f"{PEER_NAME_PREFIX}{circle}:{name}"


def peers_named(name: str) -> str:
    """SET of the ids of peers called `name`, in any circle."""
    return f"{PEERS_NAMED_PREFIX}{name}"


def peer_pane(pane_id: str) -> str:
    """The peer bound to a tmux pane."""
    return f"{PEER_PANE_PREFIX}{pane_id}"


# What the scripts that remove a peer or move it to another circle build keys from: every
# index of a peer is named from fields they read in the same atomic step.
PEER_INDEX_PREFIXES = {
    **PEER_SCRIPT_PREFIXES,
    "name": PEER_NAME_PREFIX,
    "named": PEERS_NAMED_PREFIX,
    "pane": PEER_PANE_PREFIX,
    "node": NODE_CHANNEL_PREFIX,
}


def ask(correlation_id: str) -> str:
    return f"ask:{correlation_id}"


ASKS_OPEN = "asks:open"  # ZSET every open ask -> opened ms (the dashboard's list)
ASKS_INBOUND_PREFIX = "asks:inbound:"  # + peer id: ZSET of its open inbound asks
ASKS_OUTBOUND_PREFIX = "asks:outbound:"  # + asker id (or name): ZSET of its open asks


def asks_inbound(peer_id: str) -> str:
    return f"{ASKS_INBOUND_PREFIX}{peer_id}"


def asks_outbound(asker: str) -> str:
    return f"{ASKS_OUTBOUND_PREFIX}{asker}"


def ask_many(parent_id: str) -> str:
    """LIST of the child correlation ids of an ask-many, beside its parent hash."""
    return f"askmany:{parent_id}"


def deliveries(peer_id: str) -> str:
    """LIST of deliveries queued for a peer that polls (`metadata.repowire_cli_fallback`)."""
    return f"deliveries:{peer_id}"


# Attachments (the /attachments API, docs/api.md). Each has a hash that expires; the ledger and
# sizes outlive it so the bytes it reserved can be given back (lazily, by the next upload) once it
# has expired.
ATTACHMENT_PREFIX = "attachment:"
ATTACHMENTS_BYTES = "attachments:bytes"  # STRING: bytes reserved by unreleased attachments
ATTACHMENTS_LEDGER = "attachments:ledger"  # ZSET attachment id -> expires ms
ATTACHMENTS_SIZES = "attachments:sizes"  # HASH attachment id -> bytes it reserved


def attachment(attachment_id: str) -> str:
    return f"{ATTACHMENT_PREFIX}{attachment_id}"


# Scheduled messages (the /schedules API, docs/api.md)
SCHEDULE_PREFIX = "schedule:"
# ZSET pending schedule id -> the due time it waits for (ms): the scheduler tick reads the due
# ones, and GET /schedules lists in its order.
SCHEDULES_PENDING = "schedules:pending"


def schedule(schedule_id: str) -> str:
    """STRING: the schedule's record (JSON), which every change writes and transactions WATCH;
    a fired one-shot's expires."""
    return f"{SCHEDULE_PREFIX}{schedule_id}"


def schedules_from(from_peer: str) -> str:
    """ZSET of one sender's pending schedules -> due ms (GET /schedules?from_peer=)."""
    return f"schedules:from:{from_peer}"
