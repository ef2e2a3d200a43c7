"""A redis-server of its own: on a free port, its files in a directory of the test's, started,
killed and started again on the same port and files."""

from __future__ import annotations

import atexit
import signal
import subprocess
from pathlib import Path

import redis

from dispatchyard.cli.devstack import REDIS_CONF, free_port, start_redis

# Every server still running when the test process exits (a fixture that did not get to its
# teardown) is stopped then, never left behind.
_running: set[RedisServer] = set()


class RedisServer:
    """A private redis-server. By default it keeps nothing on disk (as the suite's own);
    `durable=True` runs it with the shipped redis.conf (AOF, `appendfsync everysec`), so what it
    wrote survives a kill and a `start` on the same files."""

    def __init__(self, data_dir: Path, durable: bool = False) -> None:
        self.port = free_port()
        self.dir = data_dir
        self.durable = durable
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Returns once it answers PING (with `durable`, after its AOF is loaded)."""
        conf = REDIS_CONF if self.durable else None
        self.proc = start_redis(self.port, self.dir, conf=conf, persist=self.durable)
        _running.add(self)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        _running.discard(self)

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url, decode_responses=True, socket_timeout=5)


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        server.stop()
