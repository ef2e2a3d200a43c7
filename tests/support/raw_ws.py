"""A WebSocket client over a plain socket (wsproto frames it), for peers that misbehave: one that
never sends its connect frame, or one that stops reading so its TCP window fills. The `websockets`
client cannot be one: its reader thread keeps reading whatever the test does."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, Request, TextMessage


class RawPeer:
    """Opens `/ws` on `base_url` (the upgrade only; nothing is sent after it unless asked).
    `receive_buffer` shrinks the socket's receive buffer, so a peer that stops reading fills
    its TCP window quickly."""

    def __init__(self, base_url: str, receive_buffer: int | None = None) -> None:
        host, _, port = base_url.removeprefix("http://").partition(":")
        self.sock = socket.socket()
        if receive_buffer is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"{host}:{port}", target="/ws")))
        self.events: list[Event] = []
        self.ended = False  # the connection ended (EOF or reset)
        while not any(isinstance(e, AcceptConnection) for e in self.events):
            assert self._read(time.monotonic() + 10), "no WebSocket upgrade"

    def send(self, **frame: Any) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=json.dumps(frame))))

    def connect(self, name: str, circle: str) -> dict[str, Any]:
        """Send the connect frame and return the daemon's `connected` frame."""
        self.send(type="connect", display_name=name, circle=circle, backend="claude-code")
        frame = self.frame(timeout=10)
        assert frame is not None and frame["type"] == "connected", frame
        return frame

    def frame(self, timeout: float) -> dict[str, Any] | None:
        """The next text frame; None when the connection closed or ended first."""
        deadline = time.monotonic() + timeout
        while True:
            for i, event in enumerate(self.events):
                if isinstance(event, TextMessage):
                    del self.events[i]
                    return dict(json.loads(event.data))
                if isinstance(event, CloseConnection):
                    return None
            if self.ended or not self._read(deadline):
                return None

    def close_frame(self, timeout: float) -> tuple[int, str] | None:
        """Read until the daemon's close frame (its code and reason) or the end of the
        connection without one (None)."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if isinstance(event, CloseConnection):
                    return event.code, event.reason
            self.events = [e for e in self.events if isinstance(e, CloseConnection)]
            if self.ended:
                return None
            if not self._read(deadline):
                raise AssertionError(f"the connection was still open after {timeout} s")

    def ends(self, timeout: float) -> bool:
        """Whether the connection ends (EOF or reset) within `timeout`; what arrives is kept."""
        deadline = time.monotonic() + timeout
        while not self.ended:
            if not self._read(deadline):
                return False
        return True

    def _read(self, deadline: float) -> bool:
        """Read what arrived (waiting until `deadline`); False on timeout."""
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return False
        except ConnectionResetError:
            data = b""
        if not data:
            self.ended = True
        self.ws.receive_data(data or None)
        self.events.extend(self.ws.events())
        return True

    def close(self) -> None:
        self.sock.close()
