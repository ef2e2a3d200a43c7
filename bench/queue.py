"""Enqueue + pop-and-claim through state/, against redis-benchmark EVALSHA of the same script.

Peer: `redis-benchmark -c 50` running EVALSHA of state/scripts/poll.lua (batch 1) against a
queue prefilled so every call claims one session. Ours: Python processes calling
`state.sessions.enqueue` then `state.sessions.poll` (batch 1) in a loop; one cycle = one session
enqueued and claimed. Target (operations.md's performance table): ours >= 50% of the peer per
call. Both ratios are printed: state/ calls per second (each an enqueue or a pop-and-claim, one
EVALSHA from Python) and whole cycles.
"""

from __future__ import annotations

import multiprocessing as mp
import re
import subprocess
import time

from bench.common import client, median, private_redis, quick, ratio_line, row

PROCESSES = 3
THREADS = 4
SECONDS = quick(5.0, 2.0)
PEER_REQUESTS = quick(100_000, 20_000)
ROUNDS = quick(3, 1)


def _setup(url: str) -> tuple[str, str]:
    from dispatchyard.state import clock, hosts, orgs

    r = client(url)
    org = orgs.create_org(r, "Bench", f"bench-{time.time_ns()}", clock.now_ms())
    w = hosts.register(
        r,
        org["id"],
        hostname="bench",
        capacity=10**9,
        version=None,
        projects="all",
        machine_id=None,
        region=None,
        reg_key_id="bench",
        now_ms=clock.now_ms(),
    )
    return org["id"], w["id"]


def _enqueue_args(org_id: str, n: int, prefix: str):
    from dispatchyard.state import clock

    now = clock.now_ms()
    for i in range(n):
        sid = f"{prefix}-{i}"
        payload = {"sessionId": sid, "priority": 3, "prompt": "p" * 200, "queuedAt": now}
        yield sid, payload, now


def _prefill(url: str, org_id: str, n: int) -> None:
    from dispatchyard.state import sessions

    r = client(url)
    pipe = r.pipeline(transaction=False)
    for i, (sid, payload, now) in enumerate(_enqueue_args(org_id, n, f"pre{time.time_ns()}")):
        sessions.enqueue(
            pipe,
            org_id=org_id,
            project_id="prj_bench",
            session_id=sid,
            payload=payload,
            record={},
            now_ms=now,
        )
        if i % 2000 == 1999:
            pipe.execute()
    pipe.execute()


def _cycle_worker(url: str, org_id: str, worker_id: str, seconds: float, out) -> None:
    import threading

    from dispatchyard.state import clock, sessions

    r = client(url)
    counts = []

    def loop(tag: int) -> None:
        n = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            sid = f"c{tag}-{time.time_ns()}-{n}"
            now = clock.now_ms()
            sessions.enqueue(
                r,
                org_id=org_id,
                project_id="prj_bench",
                session_id=sid,
                payload={"sessionId": sid, "priority": 3, "prompt": "p" * 200, "queuedAt": now},
                record={},
                now_ms=now,
            )
            sessions.poll(r, worker_id, org_id, now, 1)
            n += 1
        counts.append(n)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.put(sum(counts))


def ours(url: str, org_id: str, worker_id: str) -> float:
    q: mp.Queue = mp.Queue()
    procs = [
        mp.Process(target=_cycle_worker, args=(url, org_id, worker_id, SECONDS, q))
        for _ in range(PROCESSES)
    ]
    for p in procs:
        p.start()
    total = sum(q.get() for _ in procs)
    for p in procs:
        p.join()
    return total / SECONDS


def peer(url: str, port: int, org_id: str, worker_id: str) -> float:
    from dispatchyard.state import clock, keys
    from dispatchyard.state.scripts import source

    r = client(url)
    _prefill(url, org_id, PEER_REQUESTS + 1000)
    sha = r.script_load(source("poll"))
    argv = [
        "redis-benchmark",
        "-p",
        str(port),
        "-c",
        "50",
        "-n",
        str(PEER_REQUESTS),
        "-q",
        "EVALSHA",
        sha,
        "2",
        keys.host(worker_id),
        keys.host_sessions(worker_id),
        str(clock.now_ms()),
        "1",
        "",
        org_id,
    ]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return float(re.search(r"([\d.]+) requests per second", out).group(1))


def run() -> list[dict]:
    with private_redis() as (url, port):
        org_id, worker_id = _setup(url)
        mine, theirs = [], []
        for i in range(ROUNDS):
            theirs.append(peer(url, port, org_id, worker_id))
            mine.append(ours(url, org_id, worker_id))
            print(
                f"  round {i + 1}: ours {mine[-1]:,.0f} cycles/s, peer {theirs[-1]:,.0f} EVALSHA/s"
            )
        # Each cycle is two state/ calls (one EVALSHA each): an enqueue and a pop-and-claim.
        print(
            ratio_line(
                "state/ calls (enqueue or pop-and-claim) vs redis-benchmark EVALSHA poll.lua",
                2 * median(mine),
                median(theirs),
                "calls/s",
                ">= 50% of it per call",
            )
        )
        print(
            ratio_line(
                "full cycles (enqueue + pop-and-claim) vs the same peer",
                median(mine),
                median(theirs),
                "cycles/s",
            )
        )
    calls, cycles, peer_rate = 2 * median(mine), median(mine), median(theirs)
    peer_text = f"redis-benchmark EVALSHA `poll.lua`, 50 clients: {peer_rate:,.0f}/s"
    return [
        row(
            "enqueue + pop-and-claim through `state/` (each call an enqueue or a pop-and-claim), "
            f"{PROCESSES} procs x {THREADS} threads",
            f"{calls:,.0f} calls/s",
            peer_text,
            f"{calls / peer_rate:.2f}",
            ">= 50% of it per call",
            calls / peer_rate >= 0.5,
        ),
        row(
            "full enqueue + pop-and-claim cycles",
            f"{cycles:,.0f} cycles/s",
            "same",
            f"{cycles / peer_rate:.2f}",
        ),
    ]
