"""Sockets under stress, on one real gunicorn process (one worker, so every socket of a test is
held by the same process and shares its hub): a peer that stops reading delays no frame to the
other peers and is cut once its backlog is full; beyond the cap on sockets per process a new
socket is told to try again later (1013), and a socket that never connects counts until its
connect timeout closes it."""

from __future__ import annotations

import contextlib
import secrets
import statistics
import threading
import time
from pathlib import Path

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests.support.mesh_client import MeshPeer
from tests.support.raw_ws import RawPeer
from tests.support.stack import BIN, Stack
from tests.support.waits import wait_for

MAX_SOCKETS = 4
BACKLOG = 8 * 1_048_576  # ws_send_backlog_bytes as shipped
CONNECT_TIMEOUT_S = 2.0
# The most the kernel buffers for one connection's writes (net.ipv4.tcp_wmem's maximum): past
# it (and the reader's small receive buffer), whatever the daemon wrote waits in its backlog.
KERNEL_SEND_BUFFER = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    with Stack(
        tmp_path_factory.mktemp("sockets"),
        DISPATCHYARD_WS_MAX_SOCKETS=str(MAX_SOCKETS),
        DISPATCHYARD_WS_CONNECT_TIMEOUT_S=str(CONNECT_TIMEOUT_S),
        DISPATCHYARD_PEER_RATE_PER_S="0",  # the flood below is one sender
    ) as s:
        s.start(
            "shim",
            [
                str(BIN / "gunicorn"),
                "api_shim.wsgi:app",
                "--worker-class",
                "gthread",
                "--workers",
                "1",
                "--threads",
                "16",
                "--bind",
                f"127.0.0.1:{s.port}",
            ],
        )
        wait_for(lambda: _healthy(s.url), timeout=30, message="gunicorn /health")
        yield s


def _healthy(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(url + "/health", timeout=1).status_code == 200
    return False


def circle() -> str:
    return f"c{secrets.token_hex(3)}"


def connected(shim: Stack, peer_id: str) -> bool:
    return bool(requests.get(f"{shim.url}/peers/{peer_id}", timeout=10).json()["ws_connected"])


class Flood:
    """Notifies of 32 KiB to one peer from a thread, as fast as the shim takes them."""

    def __init__(self, shim: Stack, to_peer: str, circle: str) -> None:
        self.url, self.to_peer, self.circle = shim.url, to_peer, circle
        self.posted = 0  # characters of text sent
        self.delivery_ids: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        http = requests.Session()
        while not self.stop.is_set():
            text = secrets.token_hex(16 * 1024)  # incompressible, though nothing compresses
            body = {"from_peer": "flood", "to_peer": self.to_peer, "text": text}
            answer = http.post(self.url + "/notify", json={**body, "circle": self.circle})
            if answer.status_code == 200 and answer.json()["status"] == "sent":
                self.posted += len(text)
                self.delivery_ids.append(answer.json()["delivery_id"])

    def halt(self) -> None:
        self.stop.set()
        self.thread.join(30)


def notify_latency(shim: Stack, peer: MeshPeer, circle: str, n: int) -> float:
    """Seconds from posting a notify to the peer until its socket delivered it."""
    text = f"m{n}-{secrets.token_hex(4)}"
    started = time.monotonic()
    body = {"from_peer": "probe", "to_peer": peer.name, "text": text, "circle": circle}
    answer = requests.post(shim.url + "/notify", json=body, timeout=30)
    assert answer.status_code == 200 and answer.json()["status"] == "sent", answer.text
    while True:
        frame = peer.expect("notify", timeout=10)
        if frame["text"] == text:
            return time.monotonic() - started


def test_a_reader_that_stops_reading_delays_no_other_peer(shim):
    c = circle()
    slow = RawPeer(shim.url, receive_buffer=4096)
    slow_id = slow.connect("slow", c)["session_id"]
    others = [MeshPeer(shim.url, f"fast{i}", c) for i in range(2)]
    flood = Flood(shim, slow_id, c)
    try:
        # Once more has been sent than the kernel holds, the slow socket's writer is blocked
        # on its full window and the rest waits in its backlog (under its bound yet).
        wait_for(lambda: flood.posted > KERNEL_SEND_BUFFER + 1_048_576, timeout=60)
        flood.halt()
        filled = flood.posted
        assert filled < KERNEL_SEND_BUFFER + BACKLOG
        # While it is stuck: frames to the others, each beside a frame to the stuck peer (which
        # the hub's listener queues for it).
        stuck = []
        for n in range(60):
            body = {"from_peer": "probe", "to_peer": slow_id, "text": "still there?"}
            requests.post(shim.url + "/notify", json={**body, "circle": c}, timeout=30)
            stuck.append(notify_latency(shim, others[n % 2], c, n))
        assert connected(shim, slow_id), "the slow peer was cut before the measurement ended"
        # Flood it past its backlog: its connection is cut, the others go on.
        flood = Flood(shim, slow_id, c)
        wait_for(lambda: not connected(shim, slow_id), timeout=60, message="the slow peer cut")
        flood.halt()
        after = [notify_latency(shim, others[n % 2], c, n) for n in range(20)]
        # The slow client sees its connection end without a close frame: 1006.
        slow.sock.settimeout(10)
        assert slow.close_frame(timeout=30)[0] == 1006
        stages = [
            [
                s["stage"]
                for s in requests.get(f"{shim.url}/traces/{d}", timeout=10).json()["stages"]
            ]
            for d in flood.delivery_ids[-5:]
        ]
        assert any("injection_failed" in s for s in stages), stages
    finally:
        flood.halt()
        slow.close()
        for peer in others:
            peer.close()
    stuck.sort()
    p50, p99 = statistics.median(stuck), stuck[int(len(stuck) * 0.99) - 1]
    print(
        f"\nwhile one reader was stuck: p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, "
        f"max {stuck[-1] * 1000:.1f} ms over {len(stuck)} frames; after it was cut: "
        f"max {max(after) * 1000:.1f} ms; cut after {(filled + flood.posted) / 1_048_576:.1f} "
        f"MiB sent to it"
    )
    assert p50 < 0.25 and p99 < 1.0, (p50, p99)
    assert max(after) < 1.0, after


def _open(shim: Stack, name: str, c: str) -> MeshPeer | None:
    """A peer connected, or None if it was turned away (its close may come first)."""
    try:
        peer = MeshPeer(shim.url, name, c)
    except ConnectionClosed:
        return None
    if peer.connected.get("type") == "connected":
        return peer
    peer.close()
    return None


def _turned_away(shim: Stack) -> tuple[dict, int | None, str]:
    """Open one more socket: the frame the daemon sends and its close code and reason."""
    import json

    with connect(shim.url.replace("http://", "ws://") + "/ws", open_timeout=10) as ws:
        frame = json.loads(ws.recv(timeout=10))
        with contextlib.suppress(ConnectionClosed):
            ws.recv(timeout=10)
        rcvd = ws.protocol.close_rcvd
        return frame, rcvd.code if rcvd else None, rcvd.reason if rcvd else ""


def test_sockets_beyond_the_cap_are_told_to_try_again_later(shim):
    c = circle()
    peers: list[MeshPeer] = []
    silent = None
    try:
        # Sockets of earlier tests may still be on their way out: wait for each place.
        for i in range(MAX_SOCKETS - 1):
            peers.append(wait_for(lambda i=i: _open(shim, f"p{i}", c), timeout=10))
        silent = RawPeer(shim.url)  # no connect frame yet: it counts all the same
        frame, code, reason = _turned_away(shim)
        assert code == 1013, (code, reason)
        assert reason == frame["error"]
        assert reason.startswith("Try again later") and str(MAX_SOCKETS) in reason
        assert frame["type"] == "error" and frame["code"] == "too_many_sockets"
        # The silent socket is closed at its connect timeout, and its place is free again.
        assert silent.close_frame(timeout=CONNECT_TIMEOUT_S + 5) == (
            4000,
            "First message must be connect",
        )
        peers.append(wait_for(lambda: _open(shim, "late", c), timeout=10))
        assert _turned_away(shim)[1] == 1013
        # A peer that leaves frees its place too.
        peers.pop(0).close()
        peers.append(wait_for(lambda: _open(shim, "later", c), timeout=10))
    finally:
        for peer in peers:
            peer.close()
        if silent is not None:
            silent.close()
    assert "Traceback" not in shim.log("shim")
