"""How often each process knocks on a dead Redis, measured (README "Redis outages").

A killed redis-server refuses connections and records nothing, so here a TCP listener takes
its port for the outage (tests/support/standin.py): it accepts and resets every connection and
notes when each came. Then the backoff the README promises is asserted on what was counted:

- beat retries with backoff, 0.5 s doubling to 5 s (a try is one command and its two quick
  retries, so a burst of at most three connections);
- a store call of the shim fails after two quick retries (three connections), and the request
  answers 503 at once;
- a task publish of the shim gives up after three tries in about 0.3 s.
"""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest

from tasks import names
from tests.support.http import Api
from tests.support.redis_server import RedisServer
from tests.support.stack import Stack
from tests.support.standin import StandIn, bursts
from tests.support.waits import wait_for

OUTAGE_LINE = "beat: Redis unavailable"
BACK_LINE = "beat: Redis answers again"
# beat's documented backoff: 0.5 s, doubling, at most 5 s.
BEAT_WAITS = [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
BURST_GAP_S = 0.35  # connections closer than this are one try and its quick retries
SLACK_S = 1.0  # a busy two-core machine may wake a process this much late


@pytest.fixture
def redis_server(tmp_path):
    red = RedisServer(tmp_path / "redis")
    red.start()
    try:
        yield red
    finally:
        red.stop()


def test_beat_backs_off_half_a_second_doubling_to_five(redis_server, tmp_path):
    red = redis_server
    with Stack(tmp_path, redis_url=red.url, DISPATCHYARD_TEMPLATE_TICK_S="0.2") as stack:
        stack.beat()
        wait_for(
            lambda: red.client().llen(names.DEFAULT_QUEUE) > 0,
            timeout=30,
            interval=0.1,
            message="beat's first send",
        )
        red.kill()
        with StandIn(red.port) as standin:
            killed = time.monotonic()
            wanted = len(BEAT_WAITS) + 1

            def enough() -> bool:
                assert stack.procs["beat"].poll() is None, stack.log("beat")[-3000:]
                times = [a.at for a in standin.attempts()]
                return len(bursts(times, BURST_GAP_S)) > wanted

            wait_for(enough, timeout=sum(BEAT_WAITS) + 20, interval=0.2, message="beat's tries")
            times = [a.at for a in standin.attempts()]
        red.start()
        wait_for(
            lambda: BACK_LINE in stack.log("beat"), timeout=15, interval=0.1, message="recovery"
        )
        log = stack.log("beat")
    tries = bursts(times, BURST_GAP_S)[:wanted]
    # The wait after each try: from the try's last connection to the next try's first.
    waits = [round(b[0] - a[-1], 2) for a, b in itertools.pairwise(tries)]
    per_try = [len(t) for t in tries]
    figures = {
        "first_try_after_kill_s": round(tries[0][0] - killed, 2),
        "waits_s": waits,
        "connections_per_try": per_try,
        "try_span_s": [round(t[-1] - t[0], 3) for t in tries],
        "outage_lines": log.count(OUTAGE_LINE),
        "back_lines": log.count(BACK_LINE),
    }
    print(f"\nbeat backoff: {json.dumps(figures)}")
    for expected, measured in zip(BEAT_WAITS, waits, strict=True):
        assert expected <= measured + 0.05 <= expected + SLACK_S, figures
    # One command and its two quick retries per try (the first try may have begun before the
    # stand-in took the port).
    assert 1 <= per_try[0] <= 3 and per_try[1:] == [3] * (wanted - 1), figures
    assert figures["outage_lines"] == 1 and figures["back_lines"] == 1, log[-3000:]


def _per_request(standin: StandIn, windows: list[tuple[float, float]]) -> dict[str, list[float]]:
    """Per request: how many connections the stand-in took while it ran, the time from its
    first to its last, and how many came outside every request."""
    every = [a.at for a in standin.attempts()]
    inside = [[t for t in every if s <= t <= e] for s, e in windows]
    return {
        "connections_per_request": [len(ts) for ts in inside],
        "retry_span_s": [round(ts[-1] - ts[0], 3) if ts else 0.0 for ts in inside],
        "connections_outside_requests": [len(every) - sum(len(ts) for ts in inside)],
    }


def test_store_call_fails_after_two_quick_retries(redis_server, tmp_path):
    red = redis_server
    with Stack(tmp_path, redis_url=red.url) as stack:
        stack.gunicorn()
        assert stack.api.get("/jobs/work-0123456789ab").status_code == 404  # Redis answers
        red.kill()
        windows: list[tuple[float, float]] = []
        answers = []
        with StandIn(red.port) as standin:
            for _ in range(10):
                started = time.monotonic()
                resp = stack.api.get("/jobs/work-0123456789ab")
                windows.append((started, time.monotonic()))
                answers.append(resp.status_code)
            counted = _per_request(standin, windows)
        red.start()
        wait_for(stack._healthy, timeout=10, message="the shim to answer again")
    figures = {"answers": answers, "request_s": [round(e - s, 3) for s, e in windows], **counted}
    print(f"\nstore retries: {json.dumps(figures)}")
    assert answers == [503] * 10, figures
    # One try and two quick retries (20 ms then 40 ms doubling, capped at 0.2 s), per request.
    assert counted["connections_per_request"] == [3] * 10, figures
    assert counted["connections_outside_requests"] == [0], figures
    assert max(counted["retry_span_s"]) < 0.5 and max(figures["request_s"]) < 1.0, figures


def test_publish_gives_up_after_three_tries_in_about_a_third_of_a_second(r, tmp_path):
    """The store answers, the broker does not: a fire-now create answers 503 naming the job
    after three tries of the publish, each a connection the stand-in counted."""
    from werkzeug.serving import make_server

    from api_shim import create_app
    from dispatchyard.cli.devstack import free_port
    from dispatchyard.settings import get_settings

    broker_port = free_port()
    settings = get_settings().model_copy(update={"redis_url": f"redis://127.0.0.1:{broker_port}/0"})
    server = make_server("127.0.0.1", 0, create_app(settings, r), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shim = Api(f"http://127.0.0.1:{server.server_port}")
    body = {"title": "now", "prompt": "p", "path": str(tmp_path), "backend": "claude-code"}
    job_ids: list[str] = []
    windows: list[tuple[float, float]] = []
    answers: list[int] = []
    try:
        with StandIn(broker_port) as standin:
            for _ in range(5):
                started = time.monotonic()
                resp = shim.post("/jobs", json=body)
                windows.append((started, time.monotonic()))
                answers.append(resp.status_code)
                if resp.status_code == 503:
                    job_ids.append(resp.json()["detail"]["job_id"])
            counted = _per_request(standin, windows)
    finally:
        # Nothing of this test may fire later on the suite's Redis.
        for job_id in job_ids:
            shim.post(f"/jobs/{job_id}/cancel", json={})
        server.shutdown()
    figures = {"answers": answers, "request_s": [round(e - s, 3) for s, e in windows], **counted}
    print(f"\npublish retries: {json.dumps(figures)}")
    assert answers == [503] * 5 and len(job_ids) == 5, figures
    assert counted["connections_outside_requests"] == [0], figures
    assert counted["connections_per_request"] == [3] * 5, figures
    assert max(counted["retry_span_s"]) < 0.6 and max(figures["request_s"]) < 1.5, figures
