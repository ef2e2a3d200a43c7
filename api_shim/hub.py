"""The mesh side of one shim process: the WebSockets it holds, and its one subscription.

Each gunicorn worker process has one hub, started on first use (after the fork). Its listener
thread holds a single Redis pub/sub connection subscribed to the process's own channel (frames
for the sockets it holds, published by any process or Celery worker) and to the channel of
resolved asks (which wakes the requests waiting on an answer here). The listener only queues a
frame on its socket (api_shim/held_socket.py: each socket has a writer thread and a bounded
backlog), so a peer that stops reading delays no other. A renewer thread keeps the process's
connection keys alive; if the process dies they expire and its peers go offline. The hub also
counts the WebSockets open in the process, against the cap `ws_max_sockets`.

Waiting on an answer holds the request's thread for at most its cap and no Redis connection:
a waiter checks the ask, then sleeps on a local event that the listener sets, checking again
at least every second in case a message was missed while the subscription reconnected.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis

from api_shim.held_socket import BACKLOG_BYTES, Socket, Written, report
from api_shim.stage_writer import StageWriter
from dispatchyard.state import clock, connections, hops, keys

log = logging.getLogger("dispatchyard.hub")
T = TypeVar("T")
RECHECK_S = 1.0  # a waiter looks at the store at least this often, whatever it hears


class Hub:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r
        self.node = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.sockets: dict[str, Socket] = {}
        self.open = 0  # WebSocket handlers running in this process, peers or not yet
        self.waiters: dict[str, set[threading.Event]] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.subscribed = threading.Event()
        self.stages = StageWriter(r)
        # A frame for a socket held here comes straight to `_on_message`, not over Redis.
        connections.hold_locally(self.node, self._on_message)
        threading.Thread(target=self._listen, name="hub-listen", daemon=True).start()
        threading.Thread(target=self._renew, name="hub-renew", daemon=True).start()

    # ---- sockets ----------------------------------------------------------------------------

    def admit(self, limit: int) -> bool:
        """Count a new WebSocket in, unless `limit` are open in this process already."""
        with self.lock:
            if self.open >= limit:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self.lock:
            self.open -= 1

    def attach(self, peer_id: str, ws: Any, backlog_bytes: int = BACKLOG_BYTES) -> Socket:
        """Hold `ws` for the peer here; an older socket of the same peer here is closed."""
        held = Socket(ws, peer_id, backlog_bytes)
        with self.lock:
            old = self.sockets.get(peer_id)
            self.sockets[peer_id] = held
        if old is not None:
            old.close(4005, "superseded")
        return held

    def detach(self, held: Socket) -> bool:
        """Forget the socket; True when it was still the peer's socket here."""
        with self.lock:
            if self.sockets.get(held.peer_id) is held:
                del self.sockets[held.peer_id]
                return True
        return False

    def local(self, peer_id: str) -> Socket | None:
        with self.lock:
            return self.sockets.get(peer_id)

    def _on_message(self, message: dict[str, Any]) -> None:
        """A frame or a close for a socket held here, from this process or over its channel."""
        held = self.local(message["peer_id"])
        if held is None:
            return  # it disconnected meanwhile; the sender's ask stays open
        if "frame" in message:
            frame = message["frame"]
            hops.add(frame, "hub")
            trace_id = frame.get("correlation_id") or frame.get("delivery_id")
            if frame.get("correlation_id") and frame.get("delivery_id"):
                held.alias(frame["delivery_id"], frame["correlation_id"])
            written = self._tracer(trace_id, held.peer_id) if trace_id else None
            if not held.send(frame, written):
                report(written, False)
        if "close" in message:
            close = message["close"]
            if close.get("frame"):
                held.send(close["frame"])
            held.close(int(close.get("code", 1000)), close.get("reason", ""))

    def _tracer(self, trace_id: str, peer_id: str) -> Written:
        """The trace stage of a frame: written to the socket, or not."""

        def written(ok: bool) -> None:
            stage = "websocket_sent" if ok else "injection_failed"
            self.stages.stage(trace_id, stage, clock.now_ms(), ok=ok, peer_id=peer_id)

        return written

    # ---- waiting on asks ---------------------------------------------------------------------

    def wait(
        self, correlation_id: str, timeout_s: float, check: Callable[[], T | None]
    ) -> T | None:
        """`check()` until it answers something or `timeout_s` passes; wakes as soon as the
        ask is resolved on any process."""
        event = threading.Event()
        with self.lock:
            self.waiters.setdefault(correlation_id, set()).add(event)
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                found = check()
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                event.wait(min(left, RECHECK_S))
                event.clear()
        finally:
            with self.lock:
                waiting = self.waiters.get(correlation_id)
                if waiting is not None:
                    waiting.discard(event)
                    if not waiting:
                        del self.waiters[correlation_id]

    def _on_resolved(self, correlation_id: str) -> None:
        with self.lock:
            waiting = list(self.waiters.get(correlation_id, ()))
        for event in waiting:
            event.set()

    # ---- threads -----------------------------------------------------------------------------

    def _listen(self) -> None:
        channel = keys.node_channel(self.node)
        backoff = 0.1
        while not self.stopping.is_set():
            pubsub = self.r.pubsub(ignore_subscribe_messages=True)
            try:
                pubsub.subscribe(channel, keys.ASKS_RESOLVED)
                self.subscribed.set()
                backoff = 0.1
                while not self.stopping.is_set():
                    message = pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    data = message["data"]
                    try:
                        if message["channel"] == keys.ASKS_RESOLVED:
                            self._on_resolved(data)
                        else:
                            self._on_message(json.loads(data))
                    except Exception:
                        log.exception("hub message on %s failed", message["channel"])
            except redis.exceptions.RedisError:
                self.subscribed.clear()
                log.warning("hub subscription lost; retrying in %.1f s", backoff)
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(redis.exceptions.RedisError):
                    pubsub.close()

    def _renew(self) -> None:
        while not self.stopping.wait(connections.TTL_MS / 3000):
            with self.lock:
                held = list(self.sockets)
            try:
                lost = connections.renew(self.r, self.node, held)
            except redis.exceptions.RedisError:
                continue
            for peer_id in lost:
                # Another process took the peer over, or our key lapsed while we stalled.
                sock = self.local(peer_id)
                if sock is not None:
                    sock.close(4005, "superseded")


_hubs: dict[int, Hub] = {}
_hubs_lock = threading.Lock()


def get(r: redis.Redis) -> Hub:
    """This process's hub (one per process: a forked child starts its own)."""
    pid = os.getpid()
    with _hubs_lock:
        hub = _hubs.get(pid)
        if hub is None:
            hub = _hubs[pid] = Hub(r)
    return hub
