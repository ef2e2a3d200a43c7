"""`GET /events/stream` under gunicorn stays open while idle: a keepalive comment line comes on
schedule, each Redis read waits less than the client's socket timeout (so an idle read never
times out), events written after a long quiet arrive, and nothing is logged as an error. With
Redis gone the stream stays open on its keepalives and resumes once Redis is back.

Both times are shortened here, in the production relation: the keepalive (15 s as shipped) is
longer than the Redis socket timeout (10 s), which is the case that used to drop the stream."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
import requests

from tests.support.stack import Stack
from tests.support.waits import wait_for

KEEPALIVE_S = 1.5
SOCKET_TIMEOUT_S = 1.0
assert KEEPALIVE_S / SOCKET_TIMEOUT_S == 15 / 10  # as shipped


@pytest.fixture(scope="module")
def shim(tmp_path_factory):
    with Stack(
        tmp_path_factory.mktemp("stream"),
        DISPATCHYARD_EVENT_STREAM_KEEPALIVE_S=str(KEEPALIVE_S),
        DISPATCHYARD_REDIS_SOCKET_TIMEOUT_S=str(SOCKET_TIMEOUT_S),
    ) as s:
        s.gunicorn()
        yield s


class Reader:
    """One `curl -N` of the stream: its lines with the time each arrived, read on a thread."""

    def __init__(self, url: str) -> None:
        self.opened = time.monotonic()
        self.response = requests.get(url + "/events/stream", stream=True, timeout=(5, 30))
        assert self.response.status_code == 200
        assert self.response.headers["Content-Type"].startswith("text/event-stream")
        # The headers come at once (with an opening comment), not with the first keepalive.
        assert time.monotonic() - self.opened < KEEPALIVE_S / 2
        self.lines: list[tuple[float, str]] = []
        self.ended: BaseException | str | None = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        buffer = ""
        try:
            for chunk in self.response.iter_content(chunk_size=None, decode_unicode=True):
                buffer += chunk
                *complete, buffer = buffer.split("\n")
                now = time.monotonic()
                self.lines.extend((now, line) for line in complete if line)
            self.ended = "the stream ended"
        except BaseException as error:  # what ended it is the finding
            self.ended = error

    def keepalives(self, after: float = 0.0) -> list[float]:
        return [t for t, line in self.lines if line == ": keepalive" and t > after]

    def close(self) -> None:
        self.response.close()


def test_an_idle_stream_keeps_going_and_delivers_what_comes_later(shim):
    reader = Reader(shim.url)
    try:
        # Idle for six socket timeouts (the old stream died at the first one, after retries).
        wait_for(lambda: len(reader.keepalives()) >= 4, timeout=4 * KEEPALIVE_S + 5)
        times = [reader.opened, *reader.keepalives()[:4]]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        print(f"\nkeepalive gaps: {', '.join(f'{g:.3f}' for g in gaps)} s")
        assert all(KEEPALIVE_S * 0.9 <= gap <= KEEPALIVE_S + 0.5 for gap in gaps), gaps
        assert reader.ended is None
        # An event written now arrives.
        posted = time.monotonic()
        turn = {"peer": "late", "role": "user", "text": "after the quiet"}
        assert requests.post(shim.url + "/events/chat", json=turn, timeout=10).status_code == 200
        line = wait_for(
            lambda: next((x for x in reader.lines if "after the quiet" in x[1]), None), timeout=5
        )
        print(
            f"event after {posted - reader.opened:.1f} s idle arrived in {line[0] - posted:.3f} s"
        )
        assert line[1].startswith("data: ")
        # And the stream goes on.
        wait_for(lambda: reader.keepalives(after=line[0]), timeout=KEEPALIVE_S + 2)
        assert reader.ended is None
    finally:
        reader.close()
    log = shim.log("shim")
    for bad in ("ERROR", "Traceback", "TimeoutError", "Exception"):
        assert bad not in log, log[-3000:]


def test_a_stream_rides_out_a_redis_outage(shim):
    reader = Reader(shim.url)
    try:
        wait_for(lambda: reader.keepalives(), timeout=KEEPALIVE_S + 5)
        assert shim.redis_server is not None
        shim.redis_server.kill()
        down = time.monotonic()
        # Keepalives go on while Redis is away; the stream stays open.
        wait_for(lambda: len(reader.keepalives(after=down)) >= 2, timeout=2 * KEEPALIVE_S + 5)
        assert reader.ended is None
        shim.redis_server.start()
        turn = {"peer": "back", "role": "user", "text": "after the outage"}
        wait_for(
            lambda: (
                requests.post(shim.url + "/events/chat", json=turn, timeout=10).status_code == 200
            ),
            timeout=10,
        )
        wait_for(lambda: any("after the outage" in line for _, line in reader.lines), timeout=10)
        assert reader.ended is None
    finally:
        reader.close()
    # One line per open stream when Redis goes (the first test's stream may be open still: a
    # server notices a closed stream at its next write) and when it is back; no traceback.
    log = shim.log("shim")
    assert 1 <= log.count("event stream: Redis unreachable") <= 2, log[-3000:]
    assert "event stream: Redis reachable again" in log, log[-3000:]
    assert "Traceback" not in log, log[-3000:]
