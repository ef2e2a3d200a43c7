"""A mesh peer for tests: a real WebSocket client (the `websockets` library) that connects to
`/ws` as an agent's hook would, collects the frames the daemon pushes on a reader thread, and
can answer with receipts, status and response frames."""

from __future__ import annotations

import contextlib
import json
import queue
import threading
import time
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect


class MeshPeer:
    def __init__(self, base_url: str, name: str, circle: str = "global", **connect_fields: Any):
        url = base_url.replace("http://", "ws://") + "/ws"
        self._stack = contextlib.ExitStack()
        self.ws = self._stack.enter_context(connect(url, open_timeout=10))
        self.frames: queue.Queue[dict[str, Any]] = queue.Queue()
        self.closed: tuple[int | None, str] | None = None
        hello = {
            "type": "connect",
            "display_name": name,
            "circle": circle,
            "backend": "claude-code",
            **connect_fields,
        }
        self.ws.send(json.dumps(hello))
        first = json.loads(self.ws.recv(timeout=10))
        self.connected = first
        self.peer_id = first.get("session_id")
        self.name = name
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for raw in self.ws:
                self.frames.put(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.ws.protocol.close_rcvd
            self.closed = (rcvd.code, rcvd.reason) if rcvd else (None, "")

    def expect(self, kind: str, timeout: float = 10.0) -> dict[str, Any]:
        """The next frame of type `kind` (others before it are skipped)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{self.name}: no {kind!r} frame within {timeout} s")
            try:
                frame = self.frames.get(timeout=left)
            except queue.Empty:
                continue
            if frame.get("type") == kind:
                return frame

    def send(self, **frame: Any) -> None:
        self.ws.send(json.dumps(frame))

    def close(self) -> None:
        self._stack.close()
        self._reader.join(5)


def refused(base_url: str, hello: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
    """Connect with `hello` and return the error frame and the close code the daemon sent."""
    with connect(base_url.replace("http://", "ws://") + "/ws", open_timeout=10) as ws:
        ws.send(json.dumps(hello))
        error = json.loads(ws.recv(timeout=10))
        with contextlib.suppress(ConnectionClosed):
            ws.recv(timeout=10)
        rcvd = ws.protocol.close_rcvd
        return error, rcvd.code if rcvd else None
