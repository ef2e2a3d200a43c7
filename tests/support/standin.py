"""A TCP listener standing in for a dead Redis on its port, counting who tries to reach it.

A killed redis-server refuses connections and nothing records the attempts. Bound on the dead
server's port instead, `StandIn` accepts every connection and resets it at once (the client
sees its connection drop, a ConnectionError as in any outage), and records when each came and
from which local port, so a test can measure how often a process retries and how its waits
between tries grow.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Attempt:
    at: float  # time.monotonic() when it was accepted
    client_port: int


class StandIn:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._attempts: list[Attempt] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> StandIn:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # The killed server's port may still have connections in TIME_WAIT.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        sock.listen(256)
        self._sock = sock
        self._thread = threading.Thread(target=self._serve, name="stand-in", daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._sock], [], [], 0.05)
            if not ready:
                continue
            try:
                conn, (_, client_port) = self._sock.accept()
            except OSError:
                continue
            with self._lock:
                self._attempts.append(Attempt(time.monotonic(), client_port))
            # Reset, not a graceful close: the client fails at once, whatever it sends.
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    def attempts(self, since: float = 0.0, until: float = float("inf")) -> list[Attempt]:
        with self._lock:
            return [a for a in self._attempts if since <= a.at <= until]

    def close(self) -> None:
        """Stop listening (the port is free again for the restarted server)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def bursts(times: list[float], gap_s: float) -> list[list[float]]:
    """`times` (sorted) grouped into bursts: a new burst starts after a pause longer than
    `gap_s` (one try of a client and its quick retries make one burst)."""
    out: list[list[float]] = []
    for t in sorted(times):
        if out and t - out[-1][-1] <= gap_s:
            out[-1].append(t)
        else:
            out.append([t])
    return out
