"""Mass insertion: the commands a state/ writer queues on a pipeline (the same writes the API
makes), sent through `redis-cli --pipe` (Redis's documented bulk load) instead of redis-py, whose
per-command encoding and reply parsing would take most of the time of a 100,000-record set."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterable
from typing import Any

import hiredis
import redis


class BulkLoad:
    """`with BulkLoad(port) as load: load.add(lambda pipe: jobs.write_new(pipe, doc, ...))`."""

    def __init__(self, port: int) -> None:
        self.proc = subprocess.Popen(
            ["redis-cli", "-p", str(port), "--pipe"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        # Never executed: it only collects what a writer queues.
        self.pipe = redis.Redis(port=port).pipeline(transaction=False)
        self.chunk: list[bytes] = []

    def add(self, write: Callable[[Any], None]) -> None:
        write(self.pipe)
        stack: Iterable[tuple[tuple[Any, ...], dict[str, Any]]] = self.pipe.command_stack
        self.chunk.extend(hiredis.pack_command(args) for args, _ in stack)
        self.pipe.command_stack.clear()
        if len(self.chunk) >= 20_000:
            self._flush()

    def _flush(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"".join(self.chunk))
        self.chunk = []

    def __enter__(self) -> BulkLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self._flush()
        out, _ = self.proc.communicate(timeout=120)
        if exc[0] is None:
            assert self.proc.returncode == 0 and b"errors: 0," in out, out[-500:]
