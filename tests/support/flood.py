"""Load for the request-budget tests: a flood (threads sending a fixed number of requests as
fast as the server answers) and steady callers (one request every so often, each in a thread of
its own, until the flood is over)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import requests

Send = Callable[[requests.Session], requests.Response]


@dataclass
class Answered:
    status: int
    retry_after: str | None
    body: Any
    seconds: float  # how long the request took


def _answered(send: Send, http: requests.Session) -> Answered:
    started = time.monotonic()
    resp = send(http)
    try:
        body = resp.json()
    except ValueError:
        body = resp.text
    return Answered(
        resp.status_code, resp.headers.get("Retry-After"), body, time.monotonic() - started
    )


def flood(send: Send, total: int, threads: int = 8) -> list[Answered]:
    """`total` requests from `threads` threads at once, each on its own connection."""
    numbers = itertools.count()
    out: list[Answered] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def run() -> None:
        http = requests.Session()
        start.wait()
        try:
            while next(numbers) < total:
                answered = _answered(send, http)
                with lock:
                    out.append(answered)
        except BaseException as e:  # surfaced below
            errors.append(e)

    workers = [threading.Thread(target=run, daemon=True) for _ in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not errors, errors
    assert len(out) == total, f"{len(out)} of {total} answered"
    return out


class Steady:
    """Callers that each send one request every `every` seconds, from the moment the block
    opens until it closes (and at least once): `answers[name]` holds what each was told."""

    def __init__(self) -> None:
        self.answers: dict[str, list[Answered]] = {}
        self._callers: list[tuple[str, Send, float]] = []
        self._stop = threading.Event()
        self._errors: list[BaseException] = []

    def add(self, name: str, send: Send, every: float) -> None:
        self._callers.append((name, send, every))
        self.answers[name] = []

    def _run(self, name: str, send: Send, every: float) -> None:
        http = requests.Session()
        try:
            while True:
                self.answers[name].append(_answered(send, http))
                if self._stop.wait(every):  # the pace of a client, not a wait for an effect
                    return
        except BaseException as e:  # surfaced when the block closes
            self._errors.append(e)

    @contextmanager
    def running(self) -> Iterator[Steady]:
        threads = [
            threading.Thread(target=self._run, args=caller, daemon=True) for caller in self._callers
        ]
        for t in threads:
            t.start()
        try:
            yield self
        finally:
            self._stop.set()
            for t in threads:
                t.join(60)
        assert not self._errors, self._errors


def statuses(answers: list[Answered]) -> dict[int, int]:
    """How many answers of each status."""
    counts: dict[int, int] = {}
    for a in answers:
        counts[a.status] = counts.get(a.status, 0) + 1
    return dict(sorted(counts.items()))
