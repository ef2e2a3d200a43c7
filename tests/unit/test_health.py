"""Session health is a pure function of the records and a clock: every signal and level."""

from __future__ import annotations

import pytest

from api_shim.platform.session_list import project_from_referer
from dispatchyard.state.health import Thresholds, assess

MIN = 60_000
T = Thresholds(
    long_running_ms=45 * MIN,
    stale_heartbeat_ms=90_000,
    claim_stuck_ms=5 * MIN,
    tool_loop_ms=10 * MIN,
    worker_offline_ms=180_000,
)
NOW = 10_000 * MIN
FRESH = {"lastHeartbeat": str(NOW - 1000), "status": "active"}


def session(status: str, **fields) -> dict:
    return {"status": status, **{k: str(v) for k, v in fields.items()}}


def test_green_when_nothing_is_wrong():
    s = session("running", startedAt=NOW - MIN, claimedAt=NOW - 2 * MIN, toolSince=NOW - MIN)
    assert assess(s, FRESH, NOW, T) == {"level": "green", "signals": []}


@pytest.mark.parametrize("status", ["queued", "completed", "failed", "stopped"])
def test_inactive_sessions_are_green_whatever_the_worker(status):
    s = session(status, startedAt=NOW - 99 * MIN, claimedAt=NOW - 99 * MIN)
    assert assess(s, None, NOW, T) == {"level": "green", "signals": []}


def test_long_running_is_yellow_past_the_threshold_only():
    at = session("running", startedAt=NOW - 45 * MIN)
    past = session("running", startedAt=NOW - 45 * MIN - 1)
    assert assess(at, FRESH, NOW, T)["signals"] == []
    assert assess(past, FRESH, NOW, T) == {"level": "yellow", "signals": ["LongRunning"]}


def test_stale_heartbeat_is_yellow():
    worker = {"lastHeartbeat": str(NOW - 91_000), "status": "active"}
    s = session("running", startedAt=NOW - MIN)
    assert assess(s, worker, NOW, T) == {"level": "yellow", "signals": ["StaleHeartbeat"]}


def test_claim_stuck_is_red_and_only_while_claimed():
    stuck = session("claimed", claimedAt=NOW - 5 * MIN - 1)
    assert assess(stuck, FRESH, NOW, T) == {"level": "red", "signals": ["ClaimStuck"]}
    running = session("running", claimedAt=NOW - 50 * MIN, startedAt=NOW - MIN)
    assert assess(running, FRESH, NOW, T)["signals"] == []


def test_tool_loop_stuck_is_red():
    s = session("running", startedAt=NOW - 20 * MIN, toolSince=NOW - 10 * MIN - 1)
    assert assess(s, FRESH, NOW, T) == {"level": "red", "signals": ["ToolLoopStuck"]}


@pytest.mark.parametrize(
    "worker",
    [
        None,
        {"lastHeartbeat": str(NOW - 181_000), "status": "active"},
        {"lastHeartbeat": str(NOW - 1000), "status": "offline"},
        {"lastHeartbeat": str(NOW - 1000), "status": "deregistered"},
        {"lastHeartbeat": None, "status": "active"},
    ],
)
def test_worker_offline_is_red(worker):
    s = session("finalizing", startedAt=NOW - MIN)
    assert assess(s, worker, NOW, T) == {"level": "red", "signals": ["WorkerOffline"]}


def test_level_is_the_worst_signal():
    worker = {"lastHeartbeat": str(NOW - 100_000), "status": "active"}
    s = session("running", startedAt=NOW - 60 * MIN, toolSince=NOW - 30 * MIN)
    verdict = assess(s, worker, NOW, T)
    assert verdict["level"] == "red"
    assert verdict["signals"] == ["LongRunning", "ToolLoopStuck", "StaleHeartbeat"]
    yellow_only = assess(session("running", startedAt=NOW - 60 * MIN), worker, NOW, T)
    assert yellow_only == {"level": "yellow", "signals": ["LongRunning", "StaleHeartbeat"]}


@pytest.mark.parametrize(
    ("referer", "slug"),
    [
        ("https://app.example.com/acme/projects/web-app", "web-app"),
        ("https://app.example.com/acme/projects/web-app/sessions?x=1", "web-app"),
        ("https://app.example.com/projects/api#top", "api"),
        ("https://app.example.com/dashboard?project=mobile", "mobile"),
        ("https://app.example.com/projects/web?project=other", "other"),
        ("https://app.example.com/dashboard", None),
        ("https://app.example.com/projects/", None),
        ("https://app.example.com/projects/Upper-Case", None),
        ("https://app.example.com/projects/../../etc", None),
        ("https://app.example.com/dashboard?project=", None),
        ("https://app.example.com/dashboard?project=%00bad", None),
        ("http://[::1", None),  # malformed URL
        ("not a url at all", None),
        ("", None),
        (None, None),
        ("https://x/projects/" + "a" * 5000, None),
    ],
)
def test_referer_parsing(referer, slug):
    assert project_from_referer(referer) == slug
