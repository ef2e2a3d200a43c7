"""Bounded memory, proven: 200,000 jobs and 50,000 sessions are created and finished in rounds,
the real retention sweep task runs after each round with a short retention (the clock moved
past it), and Redis `used_memory` plateaus: the samples of the last quarter of the run grow
less than 5%. At the end every finished record is gone, and the keys and memory are back near
where they started.

The records are made through the state layer in bulk, by the real functions and scripts that
make them final, so the retention index is the one production writes: jobs by
`jobs.write_new` and the rule `job_rules.end_without_attempt` stored by `documents.put` (the
commands those functions put on a redis-py pipeline are sent in one write and their replies read
in one go, see `send`: redis-py's own per-command packing would take a minute here), sessions by
the scripts `enqueue_session`, `poll` and `set_session_status` on pipelines. Jobs are made by
two processes at once. The figures are printed and written to
`var/test-figures/retention_memory.json`."""

from __future__ import annotations

import json
import multiprocessing
import secrets
import socket
import time
from pathlib import Path

import hiredis
import pytest
import redis

from dispatchyard.settings import get_settings
from dispatchyard.state import (
    clock,
    documents,
    hosts,
    job_rules,
    job_shape,
    jobs,
    keys,
    orgs,
    retention,
    sessions,
)
from dispatchyard.state.models import Final, JobState, SessionState
from dispatchyard.state.scripts import scripts
from tasks import retention as retention_task
from tasks.connection import redis_client as task_redis
from tests.support.redis_server import RedisServer

JOBS = 200_000
SESSIONS = 50_000
ROUNDS = 40
RETENTION_S = 15
# The clock moves this much a round (plus the round's own few seconds): a round's records are
# still there at the sweep after it and gone at the next, whatever the machine's load.
STEP_S = 10
FIGURES = Path(__file__).resolve().parents[2] / "var" / "test-figures" / "retention_memory.json"
FIELDS = {"title": "load", "request": {"prompt": "p", "execution": {}}}
ENDS = (JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED)
BUILDERS = 2


@pytest.fixture
def private(monkeypatch, tmp_path):
    """A redis-server of this test's own (its counts and memory are this test's alone, and
    moving the clock past the retention deletes nobody else's records), and the settings every
    process reads pointing at it, with a short retention and batches that keep up with a
    round; the sweep task's Redis client follows."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    monkeypatch.setenv("DISPATCHYARD_REDIS_URL", server.url)
    monkeypatch.setenv("DISPATCHYARD_RETENTION_S", str(RETENTION_S))
    monkeypatch.setenv("DISPATCHYARD_RETENTION_BATCH", str(JOBS))
    get_settings.cache_clear()
    task_redis.cache_clear()
    yield server.client()
    server.stop()
    get_settings.cache_clear()  # the environment is restored after this
    task_redis.cache_clear()


def send(r, pipe) -> None:
    """Run the commands queued on a redis-py pipeline: packed by hiredis into one write on a
    connection of `r`'s pool, every reply read back, and any error reply raised."""
    if pipe.scripts:
        pipe.load_scripts()  # what EVALSHA runs is loaded first, as redis-py's execute does
    commands = [args for args, _ in pipe.command_stack]
    pipe.reset()
    conn = r.connection_pool.get_connection()
    try:
        conn.send_packed_command([b"".join(hiredis.pack_command(tuple(a)) for a in commands)])
        reader = hiredis.Reader()
        sock: socket.socket = conn._sock  # read the replies in bulk, not one parse at a time
        replies = 0
        while replies < len(commands):
            reader.feed(sock.recv(1 << 20))
            while (reply := reader.gets()) is not False:
                if isinstance(reply, Exception):
                    raise reply
                replies += 1
    finally:
        r.connection_pool.release(conn)


def finished_jobs(r, count: int, now: int) -> None:
    """`count` jobs created queued and ended, through the document store's real writes."""
    for start in range(0, count, 1000):
        pipe = r.pipeline(transaction=False)
        for i in range(start, min(count, start + 1000)):
            doc = job_shape.new_doc(FIELDS, now)
            jobs.write_new(pipe, doc, now, due_ms=None)
            before = dict(doc)
            end = job_rules.end_without_attempt(doc, now, state=ENDS[i % 3], reason="load")
            documents.put(pipe, jobs.KIND, before, doc, now, end.meta)
        send(r, pipe)


_client: redis.Redis | None = None


def _jobs_in_child(url: str, count: int, now: int) -> None:
    """`finished_jobs` in a pool process, on a client of its own."""
    global _client
    if _client is None:
        _client = redis.Redis.from_url(url, decode_responses=True)
    finished_jobs(_client, count, now)


def finished_sessions(r, org_id: str, project_id: str, host_id: str, count: int, now: int):
    """`count` sessions enqueued, claimed by one poll and completed, by the real scripts."""
    run = scripts(r)
    ids = [f"ses_load{now:x}{i:06d}" for i in range(count)]
    pipe = r.pipeline(transaction=False)
    for session_id in ids:
        record = {
            "id": session_id,
            "orgId": org_id,
            "projectId": project_id,
            "status": SessionState.QUEUED,
            "priority": 3,
            "score": sessions.score(3, now),
            "queuedAt": now,
            "updatedAt": now,
        }
        payload = json.dumps({"sessionId": session_id, "priority": 3, "prompt": "p"})
        flat = [str(x) for pair in record.items() for x in pair]
        run.enqueue_session(
            keys=[
                keys.WORK_ITEMS,
                keys.WORK_QUEUE,
                keys.org_queue(org_id),
                keys.project_queue(project_id),
                keys.session(session_id),
                keys.org_sessions(org_id),
                keys.project_sessions(project_id),
            ],
            args=[session_id, payload, record["score"], now, *flat],
            client=pipe,
        )
    send(r, pipe)
    claimed = sessions.poll(r, host_id, org_id, now, count)
    assert len(claimed) == count
    pipe = r.pipeline(transaction=False)
    for session_id in ids:
        run.set_session_status(
            keys=[keys.session(session_id), keys.host_sessions(host_id)],
            args=[host_id, SessionState.COMPLETED, now, "{}"],
            client=pipe,
        )
    send(r, pipe)


def used_memory(r) -> int:
    return int(r.info("memory")["used_memory"])


def test_memory_plateaus_under_retention(private):
    r = private
    started = time.monotonic()
    org = orgs.create_org(r, "Load", f"load-{secrets.token_hex(4)}", clock.now_ms())
    project = orgs.create_project(r, org["id"], "app", "App", "github.com/x/app", clock.now_ms())
    host = hosts.register(
        r,
        org["id"],
        hostname="load",
        capacity=10 * SESSIONS,
        version=None,
        projects="all",
        machine_id=None,
        region=None,
        reg_key_id="legacy",
        now_ms=clock.now_ms(),
    )
    keys_before, memory_before = r.dbsize(), used_memory(r)
    samples: list[int] = []
    deleted = {str(kind): 0 for kind in Final}
    spent = {"jobs": 0.0, "sessions": 0.0, "sweeps": 0.0}
    url = get_settings().redis_url  # the Redis `r` and the sweep task use
    # Jobs are made by two processes (the two cores; Redis itself is mostly idle meanwhile).
    with multiprocessing.get_context("spawn").Pool(BUILDERS) as pool:
        for _ in range(ROUNDS):
            now = clock.now_ms()
            t0 = time.monotonic()
            share = JOBS // ROUNDS // BUILDERS
            pool.starmap(_jobs_in_child, [(url, share, now)] * BUILDERS)
            t1 = time.monotonic()
            finished_sessions(r, org["id"], project["id"], host["id"], SESSIONS // ROUNDS, now)
            t2 = time.monotonic()
            clock.advance(STEP_S)
            for kind, n in retention_task.sweep().items():
                deleted[kind] = deleted.get(kind, 0) + n
            samples.append(used_memory(r))
            spent["jobs"] += t1 - t0
            spent["sessions"] += t2 - t1
            spent["sweeps"] += time.monotonic() - t2
    peak_alive = {str(kind): r.zcard(keys.final_at(kind)) for kind in Final}
    # Past the retention, everything left goes too.
    clock.advance(RETENTION_S + 1)
    for kind, n in retention_task.sweep().items():
        deleted[kind] = deleted.get(kind, 0) + n
    keys_after, memory_after = r.dbsize(), used_memory(r)
    seconds = round(time.monotonic() - started, 1)

    quarter = ROUNDS // 4
    last = samples[-quarter:]
    growth = (max(last) - last[0]) / last[0]
    figures = {
        "jobs": JOBS,
        "sessions": SESSIONS,
        "rounds": ROUNDS,
        "retention_s": RETENTION_S,
        "clock_step_s": STEP_S,
        "deleted": deleted,
        "final_left_at_last_round": peak_alive,
        "used_memory_at_quarters": [samples[q * quarter - 1] for q in range(1, 5)],
        "last_quarter_growth": round(growth, 4),
        "keys_before": keys_before,
        "keys_after": keys_after,
        "used_memory_before": memory_before,
        "used_memory_after": memory_after,
        "seconds": seconds,
        "seconds_by_step": {k: round(v, 1) for k, v in spent.items()},
    }
    print("retention memory:", json.dumps(figures))
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")

    assert deleted[Final.JOBS] == JOBS and deleted[Final.SESSIONS] == SESSIONS
    assert growth < 0.05, figures
    # Every record made here is gone with its index entries: what is left is the org, its
    # project, the host, the capped events stream and the counters.
    assert keys_after - keys_before <= 8, figures
    assert retention.due(r, Final.JOBS, clock.now_ms(), 10) == []
    assert r.zcard(keys.org_sessions(org["id"])) == 0
    assert r.scard(keys.host_sessions(host["id"])) == 0
