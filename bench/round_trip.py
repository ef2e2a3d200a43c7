"""The ask round trip between two live sockets, as `operations.md` defines it: A's `POST /ask` ->
B's socket receives the ask frame -> B's `POST /ack` (with a reply) -> A's socket receives the
reply frame; every frame answered with its `delivery_ack`. Timed from the ask sent to the reply
frame received.

One thread drives a pair; each socket has a reader thread that acknowledges every frame as it
arrives, as repowire's hook does. The client adds the same cost to any server it drives: the
same client measures dispatchyard and repowire 0.17.0 in the same run. `pairs` pairs run at
once, each in its own thread; the clients are spread over processes so that the client's own
GIL does not decide the figure.

When the server stamps hops into its frames (`DISPATCHYARD_HOP_STAMPS=1`, dispatchyard only),
the pair keeps, per round trip, the time of each hop (bench/mesh.py puts one table of them in
docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import queue
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests
from websockets.sync.client import connect


class Socket:
    """A peer's WebSocket whose reader thread answers every frame with its `delivery_ack` the
    moment it arrives (repowire holds some answers until the frame is acknowledged, as its hook
    does at once) and queues it, stamped with its arrival, for the pair's thread."""

    def __init__(self, url: str, name: str, circle: str) -> None:
        self.ws = connect(url.replace("http", "ws", 1) + "/ws", compression=None)
        hello = {
            "type": "connect",
            "display_name": name,
            "circle": circle,
            "backend": "claude-code",
        }
        self.ws.send(json.dumps(hello))
        self.hello: dict[str, Any] = json.loads(self.ws.recv(timeout=10))
        self.frames: queue.SimpleQueue[tuple[dict[str, Any], int]] = queue.SimpleQueue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        with contextlib.suppress(Exception):
            for raw in self.ws:
                arrived = time.time_ns()
                frame = json.loads(raw)
                delivery = frame.get("delivery_id")
                if delivery:
                    ack = {"type": "delivery_ack", "delivery_id": delivery, "status": "injected"}
                    if frame.get("correlation_id"):
                        ack["correlation_id"] = frame["correlation_id"]
                    self.ws.send(json.dumps(ack))
                self.frames.put((frame, arrived))

    def next(self, want: str, key: str, value: str) -> tuple[dict[str, Any], int]:
        """The next frame of type `want` whose `key` holds `value`, and when it arrived
        (time.time_ns, comparable with the server's stamps)."""
        while True:
            frame, arrived = self.frames.get(timeout=10)
            if frame.get("type") == want and value in str(frame.get(key, "")):
                return frame, arrived

    def close(self) -> None:
        self.ws.close()


@dataclass
class Result:
    latencies_ms: list[float] = field(default_factory=list)
    # Per round trip: the client's marks and the server's stamps, ns since the epoch.
    marks: list[dict[str, int]] = field(default_factory=list)


def drive(url: str, count: int, warmup: int = 20) -> Result:
    """One pair, `count` round trips in a loop (after `warmup` untimed ones)."""
    circle = f"rt{secrets.token_hex(3)}"
    a = Socket(url, f"a{secrets.token_hex(3)}", circle)
    b = Socket(url, f"b{secrets.token_hex(3)}", circle)
    http = requests.Session()
    result = Result()
    # repowire names a socket's peer itself; the names it answered are the ones to use.
    asker, target = a.hello["display_name"], b.hello["session_id"]
    try:
        for i in range(warmup + count):
            started = time.time_ns()
            body = {"from_peer": asker, "to_peer": target, "text": f"rt {i}"}
            opened = http.post(url + "/ask", json=body, timeout=10)
            opened.raise_for_status()
            cid = opened.json()["correlation_id"]
            ask_answered = time.time_ns()
            ask, ask_arrived = b.next("ask", "correlation_id", cid)
            acked = http.post(
                url + "/ack", json={"correlation_id": cid, "message": "ok"}, timeout=10
            )
            acked.raise_for_status()
            ack_answered = time.time_ns()
            reply, reply_arrived = a.next("notify", "text", cid)
            if i < warmup:
                continue
            result.latencies_ms.append((reply_arrived - started) / 1e6)
            marks = {
                "ask_sent": started,
                "ask_answered": ask_answered,
                "ask_frame": ask_arrived,
                "ack_answered": ack_answered,
                "reply_frame": reply_arrived,
            }
            for prefix, frame in (("ask.", ask), ("reply.", reply)):
                for hop, ns in (frame.get("hops") or {}).items():
                    marks[prefix + hop] = int(ns)
            result.marks.append(marks)
    finally:
        a.close()
        b.close()
    return result


def _drive_many(args: tuple[str, int, int]) -> tuple[list[float], list[dict[str, int]], float]:
    url, pairs, count = args
    results: list[Result] = [Result() for _ in range(pairs)]
    spans: list[float] = [0.0] * pairs
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            t0 = time.perf_counter()
            results[i] = drive(url, count)
            spans[i] = time.perf_counter() - t0
        except BaseException as error:  # reported to the parent
            errors.append(error)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(pairs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    lat = [x for r in results for x in r.latencies_ms]
    marks = [m for r in results for m in r.marks]
    return lat, marks, max(spans)


def measure(url: str, pairs: int, count: int, processes: int = 1) -> tuple[float, Result]:
    """(round trips per second, all samples) of `pairs` pairs at once, `count` each, spread
    over `processes` client processes."""
    if processes <= 1:
        lat, marks, _ = _drive_many((url, pairs, count))
        result = Result(lat, marks)
        return _rate(result, pairs), result
    per = [pairs // processes + (1 if i < pairs % processes else 0) for i in range(processes)]
    with multiprocessing.get_context("fork").Pool(processes) as pool:
        parts = pool.map(_drive_many, [(url, n, count) for n in per if n])
    result = Result([x for p in parts for x in p[0]], [m for p in parts for m in p[1]])
    return _rate(result, pairs), result


def _rate(result: Result, pairs: int) -> float:
    """Round trips per second: the timed ones over the span from the first timed ask sent to
    the last reply received (the warm-up excluded)."""
    first = min(m["ask_sent"] for m in result.marks)
    last = max(m["reply_frame"] for m in result.marks)
    return len(result.marks) / ((last - first) / 1e9)
