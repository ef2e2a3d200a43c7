"""Redis SIGKILLed under write load and restarted on its AOF, with the shipped `redis.conf`
(AOF, `appendfsync everysec`, `noeviction`): no acknowledged write is lost outside the everysec
window, every request during the outage answers 503 (never 500, never a hang), and the shim,
the worker and beat recover by themselves: writes succeed again, a fire-now job completes,
beat ticks again and an every-minute template fires.

The Redis here is a private one of this test (not the suite's), on a free port with its files
in a temporary directory, and the gunicorn/worker/beat stack is pointed at it. Time runs
`RATE` times faster in every process of that stack, so a template's next minute comes within
seconds.

A SIGKILL of redis-server cannot lose what it already wrote to its AOF (the kernel holds it
until the next fsync); the everysec window is what a power loss or kernel crash could take,
which one machine cannot simulate. So the expected loss is none, and the assertion is the
contract's bound. The measured figures are written to `var/test-figures/redis_restart.json`
(and are in the failure message of the last assertion that uses them).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from api_shim import create_app
from dispatchyard.cli.devstack import free_port
from dispatchyard.settings import get_settings
from dispatchyard.state import clock, keys
from tests.support import records
from tests.support.http import Api
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack
from tests.support.waits import wait_for

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "var" / "test-figures" / "redis_restart.json"
RATE = 12
LOAD_THREADS = 4
# `appendfsync everysec`: up to one second of acknowledged writes may not be on disk; the
# margin covers an fsync running late on a busy machine.
EVERYSEC_WINDOW_S = 1.0
WINDOW_MARGIN_S = 0.5
MAX_REQUEST_S = 3.0  # no request may take longer, outage or not
RECOVERY_BOUND_S = 10.0  # redis-server answering again -> the shim acknowledging writes
OUTAGE_MIN_S = 2.0


@pytest.fixture
def private_redis(tmp_path):
    """A redis-server of this test, with the shipped redis.conf, restartable on its data dir."""
    red = RedisServer(tmp_path / "redis", durable=True)
    red.start()
    try:
        yield red
    finally:
        red.stop()


@pytest.fixture
def fast_stack(private_redis, tmp_path):
    """A stack (started by the test) on the private Redis, with the sped-up clock, which this
    process reads too, and short ticks."""
    anchor = int(time.time() * 1000)
    clock.configure(RATE, anchor)
    try:
        with Stack(
            tmp_path,
            redis_url=private_redis.url,
            DISPATCHYARD_CLOCK_RATE=str(RATE),
            DISPATCHYARD_CLOCK_ANCHOR_MS=str(anchor),
            DISPATCHYARD_TEMPLATE_TICK_S="0.2",
            # A lease in sped-up time: 60 s of schedule is five real seconds.
            DISPATCHYARD_JOB_LEASE_S="60",
        ) as stack:
            yield stack
    finally:
        clock.configure(1.0, 0)


@dataclass
class Reply:
    kind: str  # "job" or "template"
    started: float  # monotonic
    ended: float
    status: int | None  # None: no HTTP answer at all
    record_id: str | None = None
    body: str = ""  # the answer's start, or the exception's name when there was none

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Load:
    """Threads creating due-later jobs and recurring templates through the shim, recording
    every answer with the time it came back."""

    base: str
    path: str
    replies: list[Reply] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def run(self, n: int) -> None:
        http = requests.Session()
        # Far enough ahead that nothing created here fires during the test, even sped up: jobs
        # due in 30 days, templates on the first of a month half a year away.
        now = datetime.now(UTC)
        due_at = (now + timedelta(days=30)).isoformat()
        cron = f"0 0 1 {(now.month + 5) % 12 + 1} *"
        i = 0
        while not self.stop.is_set():
            kind = "template" if i % 2 else "job"
            body = {
                "title": f"load-{n}-{i}",
                "prompt": "p",
                "path": self.path,
                "backend": "claude-code",
            }
            body.update({"cron": cron} if kind == "template" else {"due_at": due_at})
            started = time.monotonic()
            try:
                resp = http.post(self.base + "/jobs", json=body, timeout=MAX_REQUEST_S * 3)
            except requests.RequestException as e:
                reply = Reply(kind, started, time.monotonic(), None, body=type(e).__name__)
            else:
                ended = time.monotonic()
                record_id = None
                if resp.ok:
                    data = resp.json()
                    record_id = data.get("calendar_id") if kind == "template" else data["job_id"]
                reply = Reply(kind, started, ended, resp.status_code, record_id, resp.text[:200])
            with self.lock:
                self.replies.append(reply)
            i += 1

    def snapshot(self) -> list[Reply]:
        with self.lock:
            return list(self.replies)

    def acked_after(self, t: float) -> int:
        return sum(1 for x in self.snapshot() if x.ok and x.ended > t)

    def acked_before(self, t: float) -> int:
        return sum(1 for x in self.snapshot() if x.ok and x.ended < t)


def health(base: str) -> tuple[int, dict]:
    resp = requests.get(base + "/health", timeout=MAX_REQUEST_S)
    return resp.status_code, resp.json()


def write_figures(figures: dict) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")


def test_redis_sigkilled_under_write_load_then_restarted_on_its_aof(
    private_redis, fast_stack, tmp_path
):
    red, stack = private_redis, fast_stack
    load = Load("", str(tmp_path))
    threads: list[threading.Thread] = []
    try:
        stack.gunicorn()
        stack.worker()
        stack.beat()
        load.base = stack.url
        api = Api(stack.url)
        wait_for(
            lambda: health(stack.url)[1]["beat"]["alive"],
            timeout=30,
            interval=0.1,
            message="beat's first tick through the worker",
        )

        # ---- write load, then the kill ---------------------------------------------------
        threads = [
            threading.Thread(target=load.run, args=(n,), daemon=True) for n in range(LOAD_THREADS)
        ]
        for t in threads:
            t.start()
        # Enough writes acknowledged well before the kill (older than the window); the kill
        # then lands in the middle of the load.
        window = EVERYSEC_WINDOW_S + WINDOW_MARGIN_S
        wait_for(
            lambda: load.acked_before(time.monotonic() - window) >= 300,
            timeout=30,
            interval=0.05,
            message="write load to be acknowledged",
        )
        red.kill()
        # After the process is gone: a request that started before it died may still succeed.
        killed_at = time.monotonic()

        # ---- the outage: 503s, fast, and one line per process -----------------------------
        health_during = []

        def outage_seen() -> bool:
            # RedBeat's own scheduler exits here (its lock extension raises ConnectionError).
            assert stack.procs["beat"].poll() is None, stack.log("beat")[-3000:]
            health_during.append(health(stack.url)[0])
            during = [x for x in load.snapshot() if x.started > killed_at]
            return (
                time.monotonic() - killed_at >= OUTAGE_MIN_S
                and len(during) >= 20
                and "beat: Redis unavailable" in stack.log("beat")
            )

        wait_for(outage_seen, timeout=30, interval=0.1, message="the outage to be seen")
        restarted_at, restart_clock_ms = time.monotonic(), clock.now_ms()
        red.start()
        redis_back_at = time.monotonic()

        # ---- recovery, by themselves --------------------------------------------------------
        wait_for(
            lambda: load.acked_after(redis_back_at) >= 20,
            timeout=RECOVERY_BOUND_S,
            interval=0.05,
            message="the shim to acknowledge writes again",
        )
        load.stop.set()
        for t in threads:
            t.join(MAX_REQUEST_S * 4)
        replies = load.snapshot()
        first_ack_after = min(x.ended for x in replies if x.ok and x.started > killed_at)
        recovery_s = first_ack_after - restarted_at
        assert health(stack.url)[0] == 200

        # The worker reconnected: a fire-now job runs to completion.
        fired = api.post(
            "/jobs",
            json={"title": "after", "prompt": "p", "path": str(tmp_path), "backend": "claude-code"},
        )
        assert fired.status_code == 200, fired.text
        done = records.wait_job(api, fired.json()["job_id"], timeout=30)
        assert done["state"] == "completed", done
        fire_now_done_s = time.monotonic() - restarted_at

        # Beat ticks again: /health sees a tick made after the restart, and an every-minute
        # template fires (its first child completes).
        def beat_ticked_since_restart() -> bool:
            beat = health(stack.url)[1]["beat"]
            tick = clock.parse_ms(beat["last_tick_at"])
            return beat["alive"] and tick is not None and tick > restart_clock_ms

        wait_for(beat_ticked_since_restart, timeout=20, interval=0.1, message="a beat tick after")
        beat_tick_s = time.monotonic() - restarted_at
        created = api.post(
            "/jobs",
            json={
                "title": "every minute",
                "prompt": "p",
                "path": str(tmp_path),
                "backend": "claude-code",
                "cron": "* * * * *",
            },
        )
        assert created.status_code == 200, created.text
        cal_id = created.json()["calendar_id"]
        child_id = wait_for(
            lambda: records.job(api, cal_id).get("last_occurrence_work_id"),
            timeout=30,
            interval=0.1,
            message="the template's first fire",
        )
        assert records.wait_job(api, child_id, timeout=30)["state"] == "completed"
        template_fired_s = time.monotonic() - restarted_at

        # Every process rode it out.
        for name in ("shim", "worker", "beat"):
            assert stack.procs[name].poll() is None, f"{name} exited:\n{stack.log(name)[-3000:]}"
        logs = {name: stack.log(name) for name in ("shim", "worker", "beat")}
    finally:
        load.stop.set()
        for t in threads:
            t.join(MAX_REQUEST_S * 4)
        stack.stop_all()  # before reading what survived: nothing writes any more

    # ---- what the outage answered ------------------------------------------------------------
    no_answer = [x for x in replies if x.status is None]
    assert not no_answer, f"requests without an HTTP answer: {no_answer[:5]}"
    wrong = [x for x in replies if not (x.ok or x.status == 503)]
    assert not wrong, f"answers other than 2xx/503: {wrong[:5]}"
    during = [x for x in replies if killed_at < x.started and x.ended < restarted_at]
    assert during and all(x.status == 503 for x in during), [x.status for x in during]
    assert all(json.loads(x.body).get("detail") for x in during), during[:3]
    slowest = max(x.ended - x.started for x in replies)
    assert slowest < MAX_REQUEST_S, f"a request took {slowest:.2f} s"
    assert health_during and set(health_during) <= {503}, health_during

    # ---- what survived -------------------------------------------------------------------------
    store = red.client()
    present = set(store.hkeys(keys.JOB_DOCS)) | set(store.hkeys(keys.TEMPLATE_DOCS))
    acked = [x for x in replies if x.ok and x.ended <= killed_at]
    outside = [x for x in acked if x.ended < killed_at - window]
    inside = [x for x in acked if x.ended >= killed_at - window]
    lost_outside = [x.record_id for x in outside if x.record_id not in present]
    lost_inside = [x.record_id for x in inside if x.record_id not in present]
    figures = {
        "acknowledged_before_kill": len(acked),
        "acknowledged_outside_window": len(outside),
        "acknowledged_inside_window": len(inside),
        "window_s": window,
        "lost_outside_window": len(lost_outside),
        "lost_inside_window": len(lost_inside),
        "lost_inside_window_ids": lost_inside,
        "outage_requests": len(during),
        "outage_statuses": sorted({x.status for x in during}),
        "slowest_request_s": round(slowest, 3),
        "outage_s": round(restarted_at - killed_at, 2),
        "redis_restart_to_ping_s": round(redis_back_at - restarted_at, 3),
        "recovery_s": round(recovery_s, 3),
        # From the restart; each waits for the one before it (and the template for its minute).
        "fire_now_completed_s": round(fire_now_done_s, 2),
        "beat_tick_seen_s": round(beat_tick_s, 2),
        "template_child_completed_s": round(template_fired_s, 2),
    }
    write_figures(figures)
    assert len(outside) > 0 and not lost_outside, figures
    assert recovery_s < RECOVERY_BOUND_S, figures

    # ---- one line per outage, not a flood -------------------------------------------------------
    assert logs["beat"].count("beat: Redis unavailable") == 1, logs["beat"][-3000:]
    assert logs["beat"].count("beat: Redis answers again") == 1, logs["beat"][-3000:]
    assert "Traceback" not in logs["beat"], logs["beat"][-3000:]
    # One line per gunicorn worker process (two), whatever the number of failed requests.
    assert 1 <= logs["shim"].count("redis unavailable (") <= 2, logs["shim"][-3000:]
    assert "Traceback" not in logs["shim"] and "unhandled error" not in logs["shim"]
    # Celery's consumer logs each reconnection attempt; with its backoff that is a few lines.
    assert logs["worker"].count("Cannot connect to redis") <= 5, logs["worker"][-3000:]
    print(f"\nredis restart figures: {json.dumps(figures)}")


def test_fire_now_with_the_broker_down_answers_503_at_once(r, tmp_path):
    """The store answers but the broker publish fails: 503 with the daemon envelope and
    Retry-After, within a second, and the body names the job that was recorded (a retried
    create would make a second one); a run of it answers 503 too."""
    from werkzeug.serving import make_server

    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    settings = get_settings().model_copy(update={"redis_url": dead_broker})
    server = make_server("127.0.0.1", 0, create_app(settings, r), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shim = Api(f"http://127.0.0.1:{server.server_port}")
    job_id = None
    try:
        body = {"title": "now", "prompt": "p", "path": str(tmp_path), "backend": "claude-code"}
        started = time.monotonic()
        resp = shim.post("/jobs", json=body)
        elapsed = time.monotonic() - started
        assert resp.status_code == 503, resp.text
        assert elapsed < 1.5, f"took {elapsed:.2f} s"
        assert resp.headers["Retry-After"] == "1"
        detail = resp.json()["detail"]
        assert detail["error"] == "broker_unavailable"
        job_id = detail["job_id"]
        # Recorded, and left for the scheduler tick to fire once the broker is back.
        assert shim.get(f"/jobs/{job_id}").json()["status"]["state"] == "queued"

        started = time.monotonic()
        again = shim.post(f"/jobs/{job_id}/run")
        assert again.status_code == 503 and time.monotonic() - started < 1.5
        assert again.json() == {"detail": "Broker unavailable, retry shortly"}
        assert again.headers["Retry-After"] == "1"
    finally:
        # Nothing of this test may fire later on the suite's Redis.
        if job_id is not None:
            shim.post(f"/jobs/{job_id}/cancel", json={})
        server.shutdown()
