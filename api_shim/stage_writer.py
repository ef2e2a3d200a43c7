"""The trace stages a shim process records about its own sockets (`websocket_sent` as a frame
goes out, `hook_received` and `pane_injected` as a peer's receipt comes in), written to Redis
by one thread of the process, many at a time.

They used to be written by the thread that had the frame or the receipt in hand: two Redis
round trips before every frame went out, four for every receipt, on the path an ask and its
reply travel. Now that thread only queues the stage (its time taken then, so the trace's
timestamps are those of the events) and goes on; the writer drains the queue into one
MULTI/EXEC per batch. A stage is therefore in Redis shortly after the event rather than before
it: `traces.read` orders stages by their time, so a stage written late still reads in its
place. Traces are best-effort (as before: a Redis error loses the stage, logged once per
outage); the queue is bounded, so a long outage drops the oldest stages, not the process.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

import redis

from dispatchyard.state import traces

log = logging.getLogger("dispatchyard.hub")
MAX_QUEUED = 50_000  # stages waiting for Redis; past it the oldest are dropped
BATCH = 256  # stages per MULTI/EXEC
LINGER_S = 0.003  # how long the writer lets stages gather before it writes them


class StageWriter:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.queue: deque[tuple[str, dict[str, Any]]] = deque(maxlen=MAX_QUEUED)
        self.ready = threading.Condition()
        self.failing = False
        threading.Thread(target=self._run, name="stage-writer", daemon=True).start()

    def stage(self, trace_id: str, name: str, now_ms: int, **fields: Any) -> None:
        """Queue a stage (the arguments of `traces.stage`); never waits on Redis."""
        with self.ready:
            self.queue.append((trace_id, traces.entry(name, now_ms, **fields)))
            if len(self.queue) == 1:
                self.ready.notify()

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Wait until what is queued now is written (tests, shutdown); False on timeout."""
        done = threading.Event()
        with self.ready:
            self.queue.append(("", {"flushed": done}))
            self.ready.notify()
        return done.wait(timeout_s)

    def _run(self) -> None:
        while True:
            with self.ready:
                while not self.queue:
                    self.ready.wait()
            # Let the stages of the moment gather (a frame's receipt follows it within a
            # millisecond or two): one write for many, and no wake-up per stage meanwhile.
            time.sleep(LINGER_S)
            with self.ready:
                batch = [self.queue.popleft() for _ in range(min(BATCH, len(self.queue)))]
            self._write(batch)

    def _write(self, batch: list[tuple[str, dict[str, Any]]]) -> None:
        waiting = [entry["flushed"] for trace_id, entry in batch if not trace_id]
        by_trace: dict[str, list[dict[str, Any]]] = {}
        for trace_id, entry in batch:
            if trace_id:
                by_trace.setdefault(trace_id, []).append(entry)
        try:
            pipe = self.r.pipeline(transaction=True)
            for trace_id, entries in by_trace.items():
                traces.append(pipe, trace_id, *entries)
            pipe.execute()
            self.failing = False
        except redis.exceptions.RedisError as error:
            if not self.failing:
                log.warning("could not record %d trace stages: %s", len(batch), error)
            self.failing = True
        for done in waiting:
            done.set()
