"""The agent mesh against repowire 0.17.0, in one run on this machine:

1. the ask round trip between live sockets as operations.md defines it (bench/round_trip.py):
   A's `POST /ask` -> B's socket receives the ask frame -> B's `POST /ack` -> A's socket
   receives the reply frame, every frame answered with its `delivery_ack`; 1 pair in a loop
   and 8 pairs at once, the same client against both servers; plus one table of the time of
   each hop of the 1-pair round trip (our frames carry per-hop stamps when the shim runs with
   DISPATCHYARD_HOP_STAMPS=1) beside the floors: a bare request (an unknown path, 404, through
   the same gunicorn), a bare Redis round trip (PING) and a bare WebSocket echo;
2. `POST /notify` -> the frame received on a WebSocket, p50/p99: ours with the socket held by one
   shim process (gunicorn master) and the notify posted to another on the same Redis; repowire
   with both on its one process;
3. a blocking question held by one shim process, answered on another: answer sent -> waiter
   released, p50/p99 (no peer: repowire has one process).
Targets: operations.md's performance table (docs/benchmarks.md copies it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator

import redis
import requests
from websockets.sync.client import connect
from websockets.sync.server import serve

from bench import round_trip
from bench.common import (
    BIN,
    ROOT,
    SECTIONS,
    bench_env,
    gunicorn,
    median,
    private_redis,
    quick,
    row,
)
from dispatchyard.cli.devstack import free_port

NOTIFIES = quick(300, 80)
QUESTIONS = quick(100, 30)
ROUNDS = quick(3, 1)


@contextlib.contextmanager
def repowire_017() -> Iterator[str]:
    """repowire 0.17.0 (the project's test dependency) serving on a free port."""
    home = tempfile.mkdtemp(prefix="repowire-home-")
    port = free_port()
    env = {**os.environ, "HOME": home, "REPOWIRE_DISABLE_HOOK_INSTALL": "1"}
    proc = subprocess.Popen(
        [str(BIN / "repowire"), "serve", "--no-install-hooks", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/health", timeout=1).ok:
                break
        if time.monotonic() > deadline:
            raise RuntimeError("repowire did not start")
        time.sleep(0.2)
    try:
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def notify_latency(sender: str, holder: str) -> tuple[float, float]:
    circle = f"b{secrets.token_hex(3)}"
    peer = round_trip.Socket(holder, "reader", circle)
    http = requests.Session()
    latencies = []
    try:
        for i in range(NOTIFIES):
            text = f"n{i}-{secrets.token_hex(2)}"
            body = {"from_peer": "bench", "to_peer": peer.hello["session_id"], "text": text}
            sent = time.time_ns()
            http.post(sender + "/notify", json=body, timeout=10).raise_for_status()
            _, arrived = peer.next("notify", "text", text)
            latencies.append((arrived - sent) / 1e6)
    finally:
        peer.close()
    q = statistics.quantiles(latencies, n=100)
    return q[49], q[98]


def blocking_release(holder: str, answerer: str) -> tuple[float, float]:
    http = requests.Session()
    latencies = []
    for _ in range(QUESTIONS):
        cid = f"bench-{secrets.token_hex(4)}"
        released: dict[str, float] = {}
        body = {
            "prompt": "allow?",
            "options": [{"id": "allow", "title": "Allow"}],
            "scope": "tool_permission",
            "timeout_seconds": 20,
            "correlation_id": cid,
        }

        def hold(body: dict = body, released: dict = released) -> None:
            requests.post(holder + "/questions/ask-blocking", json=body, timeout=30)
            released["at"] = time.perf_counter()

        waiter = threading.Thread(target=hold)
        waiter.start()
        while not http.get(f"{answerer}/traces/{cid}", timeout=5).ok:
            time.sleep(0.005)
        time.sleep(0.02)  # let the holder settle into its wait, as a real answer comes later
        answered = time.perf_counter()
        http.post(
            answerer + "/answer", json={"correlation_id": cid, "option_id": "allow"}, timeout=10
        ).raise_for_status()
        waiter.join(30)
        latencies.append((released["at"] - answered) * 1000)
    q = statistics.quantiles(latencies, n=100)
    return q[49], q[98]


# The hops of one round trip, each the median over the 1-pair samples of (later - earlier):
# client marks (ask_sent, ask_answered, ask_frame, ack_answered, reply_frame) and our frames'
# stamps (ask.* on the ask frame, reply.* on the reply frame; dispatchyard/state/hops.py).
HOPS = [
    ("A's `POST /ask` sent -> body parsed in the shim", "ask_sent", "ask.parsed"),
    (
        "parsed -> frame handed to the script (state written and published in one step)",
        "ask.parsed",
        "ask.published",
    ),
    ("the script, publish -> the holding process has the frame", "ask.published", "ask.hub"),
    ("-> its socket's writer writes it", "ask.hub", "ask.sent"),
    ("-> B's client has the ask frame", "ask.sent", "ask_frame"),
    ("(A has the `/ask` answer)", "ask_sent", "ask_answered"),
    ("B's `POST /ack` sent -> body parsed", "ack_sent", "reply.parsed"),
    (
        "parsed -> reply handed to the script (delivered and closed in one step)",
        "reply.parsed",
        "reply.published",
    ),
    ("the script, publish -> the holding process has the frame", "reply.published", "reply.hub"),
    ("-> its socket's writer writes it", "reply.hub", "reply.sent"),
    ("-> A's client has the reply frame", "reply.sent", "reply_frame"),
    ("(B has the `/ack` answer)", "ack_sent", "ack_answered"),
    ("the round trip: ask sent -> reply frame received", "ask_sent", "reply_frame"),
]


def hop_table(marks: list[dict[str, int]], floors: dict[str, float]) -> str:
    """Markdown: the median time of each hop of the 1-pair round trip, and the floors."""
    for m in marks:  # B sends its /ack once it has both the ask frame and the /ask answer
        m["ack_sent"] = max(m["ask_frame"], m["ask_answered"])
    lines = ["| hop | median ms |", "| --- | --- |"]
    for label, start, stop in HOPS:
        spans = [(m[stop] - m[start]) / 1e6 for m in marks if start in m and stop in m]
        if spans:
            lines.append(f"| {label} | {median(spans):.3f} |")
    lines += [f"| floor: {name} | {ms:.3f} |" for name, ms in floors.items()]
    return "\n".join(lines)


def floors(shim: str, redis_url: str) -> dict[str, float]:
    """p50 of a bare request through the same gunicorn (an unknown path: routing and the error
    answer, no Redis), a bare Redis PING, and a bare WebSocket echo (a server in this process),
    each timed by the same kind of client as the round trip."""
    http = requests.Session()
    bare = []
    for _ in range(quick(500, 100)):
        t = time.perf_counter()
        http.get(shim + "/bench-floor-no-such-route", timeout=5)
        bare.append((time.perf_counter() - t) * 1000)
    r = redis.Redis.from_url(redis_url)
    ping = []
    for _ in range(quick(2000, 200)):
        t = time.perf_counter()
        r.ping()
        ping.append((time.perf_counter() - t) * 1000)
    with serve(lambda ws: [ws.send(m) for m in ws], "127.0.0.1", 0, compression=None) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        port = server.socket.getsockname()[1]
        echo = []
        with connect(f"ws://127.0.0.1:{port}", compression=None) as ws:
            for i in range(quick(1000, 100)):
                t = time.perf_counter()
                ws.send(f"echo {i}")
                ws.recv(timeout=5)
                echo.append((time.perf_counter() - t) * 1000)
        server.shutdown()
    return {
        "a bare request through the same gunicorn (404), p50": median(bare[50:]),
        "a bare Redis round trip (PING), p50": median(ping[100:]),
        "a bare WebSocket echo (send -> echo received), p50": median(echo[50:]),
    }


def round_trips(ours: str, theirs: str, redis_url: str) -> list[dict]:
    rows = []
    for pairs, target in ((1, 1.25), (8, 2.0)):
        count = quick(400, 60) if pairs == 1 else quick(150, 30)
        procs = 1 if pairs == 1 else 2
        mine, peer = [], []
        kept: list[round_trip.Result] = []
        for _ in range(ROUNDS):
            rate, result = round_trip.measure(ours, pairs, count, procs)
            mine.append((rate, *_quantiles(result.latencies_ms)))
            kept.append(result)
            rate, result = round_trip.measure(theirs, pairs, count, procs)
            peer.append((rate, *_quantiles(result.latencies_ms)))
        rate, p50, p99 = (median([x[i] for x in mine]) for i in range(3))
        rrate, r50, r99 = (median([x[i] for x in peer]) for i in range(3))
        ratio = rate / rrate
        met = ratio >= target and (pairs > 1 or p99 <= 20)
        print(
            f"  ask round trip, {pairs} pair(s): ours {rate:,.0f}/s p50 {p50:.2f} ms p99 "
            f"{p99:.2f} ms | repowire 0.17 {rrate:,.0f}/s p50 {r50:.2f} ms p99 {r99:.2f} ms | "
            f"ratio {ratio:.2f} (target >= {target:g})"
        )
        rows.append(
            row(
                "ask round trip between live sockets (ask sent -> ask frame -> `/ack` -> reply "
                "frame received, every frame acked), 1 pair in a loop"
                if pairs == 1
                else "the same, 8 pairs at once",
                f"{rate:,.0f} round trips/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                f"repowire 0.17.0: {rrate:,.0f}/s, p50 {r50:.2f} ms, p99 {r99:.2f} ms",
                f"{ratio:.2f}",
                "round trips/s >= 1.25x repowire's with 1 pair in a loop and >= 2x with 8 pairs "
                "at once; 1-pair p99 <= 20 ms; docs/benchmarks.md shows the time of each hop",
                met,
            )
        )
        if pairs == 1:
            marks = [m for result in kept for m in result.marks]
            SECTIONS.append(
                "Time of each hop of the 1-pair ask round trip (medians over "
                f"{len(marks):,} round trips of this run; bench/mesh.py), beside the floors:\n\n"
                + hop_table(marks, floors(ours, redis_url))
            )
    return rows


def _quantiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=100)
    return q[49], q[98]


def run() -> list[dict]:
    with private_redis() as (url, _port):
        env = bench_env(url, DISPATCHYARD_HOP_STAMPS="1")
        rows = []
        with gunicorn(env, workers=2) as one, gunicorn(env, workers=2) as two, repowire_017() as rw:
            rows += round_trips(one, rw, url)
            ours_n, theirs_n = [], []
            for _ in range(ROUNDS):
                ours_n.append(notify_latency(two, one))
                theirs_n.append(notify_latency(rw, rw))
            p50, p99 = median([a for a, _ in ours_n]), median([b for _, b in ours_n])
            r50, r99 = median([a for a, _ in theirs_n]), median([b for _, b in theirs_n])
            print(
                f"  notify -> frame: ours (across shim processes) p50 {p50:.2f} ms p99 {p99:.2f} "
                f"ms | repowire (one process) p50 {r50:.2f} ms p99 {r99:.2f} ms | p50 ratio "
                f"{p50 / r50:.2f} (target <= 1, p99 <= 20 ms)"
            )
            rows.append(
                row(
                    "`POST /notify` -> frame on a WebSocket (ours: socket on one gunicorn master, "
                    "notify to another)",
                    f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                    f"repowire 0.17.0 (one process): p50 {r50:.2f} ms, p99 {r99:.2f} ms",
                    f"p50 {p50 / r50:.2f}",
                    "p50 ratio <= 1, p99 <= 20 ms",
                    p50 <= r50 and p99 <= 20,
                )
            )
            released = [blocking_release(one, two) for _ in range(ROUNDS)]
            b50, b99 = median([a for a, _ in released]), median([b for _, b in released])
            print(
                f"  blocking question answered on another process -> released: p50 {b50:.2f} ms "
                f"p99 {b99:.2f} ms (target p99 <= 50 ms)"
            )
            rows.append(
                row(
                    "blocking question answered on another shim process -> waiter released",
                    f"p50 {b50:.2f} ms, p99 {b99:.2f} ms",
                    target="p99 <= 50 ms",
                    met=b99 <= 50,
                )
            )
        return rows
