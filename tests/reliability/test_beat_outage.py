"""Beat through a Redis kill and restart (no shim, no worker: what beat sends stays in the
queue's list, where the test counts it):

- one beat survives, logs one line when the outage starts and one when it ends, and, its lock
  having expired during the outage, takes it again before it sends anything;
- of two beats, exactly one sends after the restart, and when that one dies the other takes
  over after the lock timeout;
- `dispatchyard run` restarts a child that dies instead of stopping the whole stack.

The lock timeout is 2 s here and every outage lasts longer, so the lock is always gone when
Redis comes back (its expiry is absolute in the AOF).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from dispatchyard.cli.devstack import free_port
from tasks import names
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack
from tests.support.waits import wait_for

LOCK_TIMEOUT_S = 2
OUTAGE_S = LOCK_TIMEOUT_S + 1.5
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]

OUTAGE_LINE = "beat: Redis unavailable"
BACK_LINE = "beat: Redis answers again"
ACQUIRED = "beat: Acquired lock"
SENDING = "Scheduler: Sending due task"


@pytest.fixture
def beats(tmp_path):
    """A restartable redis-server with the shipped redis.conf, and a stack on it."""
    red = RedisServer(tmp_path / "redis", durable=True)
    red.start()
    try:
        with Stack(
            tmp_path,
            redis_url=red.url,
            DISPATCHYARD_BEAT_LOCK_TIMEOUT_S=str(LOCK_TIMEOUT_S),
            DISPATCHYARD_TEMPLATE_TICK_S="0.2",
        ) as stack:
            yield red, stack
    finally:
        red.stop()


def queued(red: RedisServer) -> int:
    """Messages beat has sent that no worker took (none runs here)."""
    return red.client().llen(names.DEFAULT_QUEUE)


def outage(red: RedisServer, stack: Stack, *beat_names: str) -> dict[str, int]:
    """Kill Redis, wait until every beat has noticed and the lock has expired, restart it on
    its AOF. Returns each beat's log length at the restart (what came after is `since`)."""
    red.kill()
    killed = time.monotonic()

    def noticed() -> bool:
        for b in beat_names:
            # RedBeat's own scheduler exits here (its lock extension raises ConnectionError).
            assert stack.procs[b].poll() is None, f"{b} exited:\n{stack.log(b)[-3000:]}"
        return (
            all(OUTAGE_LINE in stack.log(b) for b in beat_names)
            and time.monotonic() - killed >= OUTAGE_S
        )

    wait_for(noticed, timeout=30, interval=0.1, message="every beat to notice")
    offsets = {b: len(stack.log(b)) for b in beat_names}
    red.start()
    return offsets


def since(stack: Stack, beat: str, offset: int) -> str:
    return stack.log(beat)[offset:]


def test_beat_rides_out_a_redis_restart_and_retakes_its_lock_before_sending(beats):
    red, stack = beats
    stack.beat("beat")
    wait_for(lambda: queued(red) > 0, timeout=30, interval=0.1, message="a first send")
    offsets = outage(red, stack, "beat")
    before = queued(red)  # what the AOF kept
    wait_for(
        lambda: queued(red) >= before + 10, timeout=30, interval=0.1, message="beat sending again"
    )
    assert stack.procs["beat"].poll() is None
    log = stack.log("beat")
    after = since(stack, "beat", offsets["beat"])
    # The lock expired while Redis was away: beat noticed, took it again, and only then sent.
    assert "Lost the lock" in after, after
    assert ACQUIRED in after and SENDING in after, after
    assert after.index(ACQUIRED) < after.index(SENDING), after
    # Nothing was sent between noticing the outage and retaking the lock.
    noticed = log.index(OUTAGE_LINE)
    assert SENDING not in log[noticed : offsets["beat"] + after.index(ACQUIRED)], log[noticed:]
    # One line when it started, one when it ended; no stack traces.
    assert log.count(OUTAGE_LINE) == 1 and log.count(BACK_LINE) == 1, log[-3000:]
    assert "Traceback" not in log, log[-3000:]


def test_two_beats_through_an_outage_one_sends_and_the_other_takes_over(beats):
    red, stack = beats
    stack.beat("beat-1")
    wait_for(lambda: ACQUIRED in stack.log("beat-1"), timeout=30, interval=0.1)
    stack.beat("beat-2")
    wait_for(lambda: "beat: Starting" in stack.log("beat-2"), timeout=30, interval=0.1)
    offsets = outage(red, stack, "beat-1", "beat-2")
    before = queued(red)
    wait_for(lambda: queued(red) >= before + 10, timeout=30, interval=0.1, message="sends resuming")
    after = {b: since(stack, b, offsets[b]) for b in offsets}
    senders = [b for b in after if SENDING in after[b]]
    assert len(senders) == 1, {b: after[b][-2000:] for b in after}
    leader = senders[0]
    assert after[leader].index(ACQUIRED) < after[leader].index(SENDING), after[leader]
    for b in offsets:
        assert stack.procs[b].poll() is None, f"{b} exited:\n{stack.log(b)[-3000:]}"
        assert stack.log(b).count(OUTAGE_LINE) == 1, stack.log(b)[-3000:]

    # The leader dies: the other takes the lock once it times out, and sends.
    other = next(b for b in offsets if b != leader)
    mark = len(stack.log(other))
    stack.stop(leader, sig=signal.SIGKILL)
    wait_for(
        lambda: ACQUIRED in since(stack, other, mark),
        timeout=LOCK_TIMEOUT_S + 10,
        interval=0.1,
        message=f"{other} to take over",
    )
    wait_for(
        lambda: SENDING in since(stack, other, mark), timeout=10, interval=0.1, message="sends"
    )


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        # The parent pid is the second field after the command name in parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            out[int(entry.name)] = cmdline
    return out


def _beat_pid(supervisor: int) -> int | None:
    return next((p for p, cmd in _children(supervisor).items() if " beat " in f"{cmd} "), None)


def test_dispatchyard_run_restarts_a_child_that_dies(tmp_path):
    red = RedisServer(tmp_path / "redis", durable=True)
    red.start()
    port = free_port()
    out = open(tmp_path / "run.log", "wb")  # noqa: SIM115  (closed in finally)
    run = subprocess.Popen(
        [str(BIN / "dispatchyard"), "run", "--no-flower", "--port", str(port)],
        cwd=ROOT,
        env={**os.environ, "DISPATCHYARD_REDIS_URL": red.url},
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    children: set[int] = set()

    def log() -> str:
        return (tmp_path / "run.log").read_text(errors="replace")

    try:

        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok
            except requests.RequestException:
                return False

        wait_for(healthy, timeout=60, interval=0.2, message="the stack to serve")
        assert "health" in log() and "Ctrl-C stops everything" in log()
        first = wait_for(lambda: _beat_pid(run.pid), timeout=30, message="beat's pid")
        children = set(_children(run.pid))
        os.kill(first, signal.SIGKILL)
        wait_for(
            lambda: "beat exited with -9; restarting it in 1 s" in log(),
            timeout=10,
            interval=0.1,
            message="the supervisor to notice",
        )
        second = wait_for(
            lambda: (p := _beat_pid(run.pid)) not in (None, first) and p,
            timeout=10,
            interval=0.1,
            message="beat to be restarted",
        )
        assert run.poll() is None and healthy(), log()[-3000:]
        # Only beat was restarted: the others are the same processes.
        assert set(_children(run.pid)) == children - {first} | {second}

        run.send_signal(signal.SIGINT)  # Ctrl-C
        assert run.wait(30) == 0, log()[-3000:]
        gone = children - {first} | {second}
        wait_for(
            lambda: not any(Path(f"/proc/{p}").exists() for p in gone),
            timeout=10,
            message="every child to stop",
        )
    finally:
        if run.poll() is None:
            # Each child has its own session: stop them by their process groups, then the
            # supervisor.
            for pid in children | set(_children(run.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGKILL)
            os.killpg(run.pid, signal.SIGKILL)
            run.wait(10)
        out.close()
        red.stop()
