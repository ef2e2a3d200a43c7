"""Every Redis key dispatchyard uses, in one place.

`work:items`, `work:queue`, `agent:session:{id}` and `work:claim:{id}` are part of the public
contract (platform.md §3); the rest are ours. Lua scripts that must build a key from an id they
read receive the prefix from here as an argument, so no key name is spelled twice.
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


def project(project_id: str) -> str:
    return f"project:{project_id}"


def project_slug(org_id: str, slug: str) -> str:
    return f"org:{org_id}:project:slug:{slug}"


def org_keys(org_id: str) -> str:
    return f"org:{org_id}:keys"


def apikey(key_id: str) -> str:
    return f"apikey:{key_id}"


def apikey_hash(sha256_hex: str) -> str:
    return f"apikey:hash:{sha256_hex}"


# Workers (daemon hosts) and their runtime tokens
WORKER_HEARTBEATS = "workers:heartbeats"  # ZSET worker id -> last heartbeat ms (offline sweep)


def worker(worker_id: str) -> str:
    return f"worker:{worker_id}"


def org_workers(org_id: str) -> str:
    return f"org:{org_id}:workers"


def worker_machine(org_id: str, machine_id: str) -> str:
    return f"org:{org_id}:worker:machine:{machine_id}"


WORKER_SESSIONS_PREFIX = "worker:sessions:"


def worker_sessions(worker_id: str) -> str:
    """SET of the worker's active (claimed, running, finalizing) session ids."""
    return f"{WORKER_SESSIONS_PREFIX}{worker_id}"


def worker_jtis(worker_id: str) -> str:
    return f"worker:jtis:{worker_id}"


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


def host_open_mutations(worker_id: str) -> str:
    return f"{HOST_OPEN_MUTATIONS_PREFIX}{worker_id}"


def host_mutations(worker_id: str) -> str:
    """Every mutation of a host, by requestedAt (for listing)."""
    return f"worker:mutations:all:{worker_id}"


def org_mutations(org_id: str, status: str | None = None) -> str:
    base = f"{ORG_MUTATIONS_PREFIX}{org_id}"
    return f"{base}:{status}" if status else base


# Durable jobs and recurring templates (daemon group)
JOBS_ALL = "jobs:all"  # ZSET job id -> created ms (list order, cursors)
JOBS_DUE = "jobs:due"  # ZSET queued job id -> when to (re)send its fire (ms)
JOBS_LEASES = "jobs:leases"  # ZSET job id -> lease expiry ms of its running attempt
JOBS_EXPIRY = "jobs:expiry"  # ZSET queued job id -> expires_at ms
JOBS_DEADLINES = "jobs:deadlines"  # ZSET active job id -> deadline_at ms
TEMPLATES_ALL = "templates:all"  # ZSET cal id -> next due ms (list order)
TEMPLATES_DUE = "templates:due"  # ZSET active cal id -> next due ms
EVENTS = "events"  # STREAM of job_state_changed and other events
MACHINES_ALIVE = "machines:alive"  # ZSET machine -> last seen ms (Celery workers)
WORKERS_ONLINE = "celery:workers:online"  # ZSET worker hostname -> last seen ms


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


def peer(peer_id: str) -> str:
    return f"peer:{peer_id}"


def peer_name(circle: str, name: str) -> str:
    return f"peer:name:{circle}:{name}"


def peers_named(name: str) -> str:
    """SET of the ids of peers called `name`, in any circle."""
    return f"peers:named:{name}"


def peer_pane(pane_id: str) -> str:
    """The peer bound to a tmux pane."""
    return f"peer:pane:{pane_id}"


def ask(correlation_id: str) -> str:
    return f"ask:{correlation_id}"


def asks_inbound(peer_id: str) -> str:
    return f"asks:inbound:{peer_id}"


def asks_outbound(peer_id: str) -> str:
    return f"asks:outbound:{peer_id}"
