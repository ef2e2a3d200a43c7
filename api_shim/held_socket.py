"""A WebSocket held by this process, written by a thread of its own (api_shim/hub.py holds
them): senders queue, the socket's writer waits on the peer's TCP window alone."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import redis

from dispatchyard.state import hops

log = logging.getLogger("dispatchyard.hub")
ALIASES_KEPT = 256  # recent frames' delivery ids remembered per socket, for their receipts
BACKLOG_BYTES = 8 * 1_048_576  # the default of the setting ws_send_backlog_bytes
CLOSE_GRACE_S = 5.0  # a close not written by then (the writer is stuck): the connection is cut
Written = Callable[[bool], None]  # told whether a frame went out (True) or never will (False)


class Socket:
    """A held WebSocket, written by a thread of its own.

    `send` only queues: whoever sends (the hub's listener, a request thread) never waits on the
    peer's TCP window, so a reader that stops reading delays nobody but itself. The backlog is
    bounded in characters; a frame that would pass the bound cuts the connection instead (a
    close frame would queue behind the very bytes the reader is not reading, so the client sees
    1006). A close is written after the frames queued before it; if that has not happened
    within CLOSE_GRACE_S (the writer is stuck), the connection is cut too.
    """

    def __init__(self, ws: Any, peer_id: str, backlog_bytes: int = BACKLOG_BYTES) -> None:
        self.ws = ws
        self.peer_id = peer_id
        self.backlog_bytes = backlog_bytes
        self.lock = threading.Condition()
        # (text, told when written, the frame when it carries hop stamps to finish)
        self.queue: deque[tuple[str, Written | None, dict[str, Any] | None]] = deque()
        self.queued = 0  # characters waiting in `queue`
        self.closed = False  # nothing more is taken
        self.dropping = False  # what is queued is dropped, not written
        self.closing: tuple[int, str] | None = None  # the close frame the writer ends with
        # delivery id -> the trace it belongs to: a hook may acknowledge an ask by its frame's
        # delivery id alone (repowire's does), and the receipt belongs on the ask's trace.
        self.aliases: OrderedDict[str, str] = OrderedDict()
        self.writer = threading.Thread(target=self._write, name=f"ws-{peer_id}", daemon=True)
        self.writer.start()

    def send(self, frame: dict[str, Any], written: Written | None = None) -> bool:
        """Queue `frame`; False when it will not be written (the socket is closed, or this
        frame overflowed the backlog and the connection was cut). The writer calls
        `written(True)` right before the frame goes out, `written(False)` if it never does."""
        text = json.dumps(frame)
        with self.lock:
            if self.closed:
                return False
            overflow = bool(self.queue) and self.queued + len(text) > self.backlog_bytes
            if not overflow:
                stamped = frame if "hops" in frame else None
                self.queue.append((text, written, stamped))
                self.queued += len(text)
                self.lock.notify()
        if overflow:
            log.warning("peer %s stopped reading (backlog full): connection cut", self.peer_id)
            self.abort()
        return not overflow

    def alias(self, delivery_id: str, trace_id: str) -> None:
        with self.lock:
            self.aliases[delivery_id] = trace_id
            if len(self.aliases) > ALIASES_KEPT:
                self.aliases.popitem(last=False)

    def trace_of(self, delivery_id: str) -> str:
        """The trace a frame this socket was sent belongs to, by its delivery id."""
        with self.lock:
            return self.aliases.get(delivery_id, delivery_id)

    def close(self, code: int, reason: str = "") -> None:
        """Write the close frame after what is queued; cut the connection if it has not gone
        out within CLOSE_GRACE_S."""
        with self.lock:
            if self.closed:
                return
            self.closed = True
            self.closing = (code, reason)
            self.lock.notify()
        timer = threading.Timer(CLOSE_GRACE_S, self._cut)
        timer.daemon = True
        timer.start()

    def abort(self) -> None:
        """Cut the connection now: queued frames are dropped, a blocked write fails, and the
        socket's reader sees the end (its handler then cleans up)."""
        self.end()
        self._cut()

    def finish(self) -> None:
        """Its handler is done with the socket: a close already asked for is written first
        (within CLOSE_GRACE_S), anything else queued is dropped."""
        with self.lock:
            closing = self.closing is not None and not self.dropping
        if closing:
            self.writer.join(CLOSE_GRACE_S)
        self.end()

    def end(self) -> None:
        """Take nothing more; the writer drops what is queued and stops."""
        with self.lock:
            self.closed = self.dropping = True
            self.lock.notify()

    def _cut(self) -> None:
        """Reset the connection: what the kernel still holds for the peer is discarded when
        the socket is closed (SO_LINGER 0), and a write or read blocked on it returns now."""
        with contextlib.suppress(OSError, AttributeError):
            self.ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.ws.sock.shutdown(socket.SHUT_RDWR)

    def _write(self) -> None:
        while True:
            with self.lock:
                while not self.queue and not self.closed:
                    self.lock.wait()
                if self.dropping or not self.queue:
                    dropped = list(self.queue) if self.dropping else []
                    closing = None if self.dropping else self.closing
                    self.queue.clear()
                    self.queued = 0
                    break
                text, written, stamped = self.queue.popleft()
                self.queued -= len(text)
            report(written, True)
            if stamped is not None:
                hops.add(stamped, "sent")
                text = json.dumps(stamped)
            try:
                self.ws.send(text)
            except Exception:  # the peer went away mid-send; its handler cleans up
                report(written, False)
                self.end()
        # Reported here, not by whoever ended the socket (the hub's listener must not wait).
        for _, written, _ in dropped:
            report(written, False)
        if closing is not None:
            try:
                self.ws.close(reason=closing[0], message=closing[1])
            except Exception:
                log.debug("close of %s failed", self.peer_id)


def report(written: Written | None, ok: bool) -> None:
    if written is not None:
        try:
            written(ok)
        except redis.exceptions.RedisError as error:
            log.warning("could not record a frame's trace: %s", error)
