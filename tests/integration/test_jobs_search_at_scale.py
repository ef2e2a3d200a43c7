"""The jobs list's filters (state, backend, peer, words of the title) and cursor paging at
100,000 jobs: a redis-server of this module's own, filled with state/'s own writes (as POST
/jobs makes them) loaded through `redis-cli --pipe`, and the real shim over HTTP on it.

A filtered page walks the smallest matching index, so it answers as fast at 100,000 jobs as at
a hundred: the test measures each page and prints it, and asserts only a bound a person would
still call usable (2 s), against the exact ids the data set was built to hold."""

from __future__ import annotations

import threading
import time

import pytest
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.settings import get_settings
from dispatchyard.state import job_queries, job_shape, jobs
from tests.support.bulk import BulkLoad
from tests.support.http import Api
from tests.support.redis_server import RedisServer

N = 100_000
BACKENDS = ("claude-code", "codex", "gemini", "opencode", "shell")
STATES = ("queued", "completed", "failed")
WORDS = [f"w{k:02d}" for k in range(40)]
PEER = "repow-rarely-asked"
USABLE_S = 2.0
NOW_MS = 1_790_000_000_000


def made(i: int) -> dict:
    """Job i of the data set: what it is filtered by."""
    return {
        "job_id": f"work-{i:012x}",
        "title": f"{WORDS[i % 40]} {WORDS[(i // 40) % 40]} nightly",
        "backend": BACKENDS[i % 5],
        "state": STATES[(i // 5) % 3],
        "peer": PEER if i % 997 == 0 else None,
        "created_ms": NOW_MS - N + i,  # a later i is newer
    }


def fill(port: int) -> None:
    with BulkLoad(port) as load:
        for i in range(N):
            m = made(i)
            doc = job_shape.new_doc({}, m["created_ms"], job_id=m["job_id"])
            doc["title"] = m["title"]
            doc["state"] = m["state"]
            doc["assigned_peer_id"] = m["peer"]
            doc["execution"] = {"target": {"path": "/srv", "backend": m["backend"]}}
            load.add(
                lambda pipe, doc=doc, at=m["created_ms"]: jobs.write_new(pipe, doc, at, due_ms=None)
            )


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("scale") / "redis")
    server.start()
    r = server.client()
    started = time.perf_counter()
    fill(server.port)
    print(f"\n{N} jobs written in {time.perf_counter() - started:.1f}s")
    settings = get_settings().model_copy(update={"redis_url": server.url})
    http = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    yield r, Api(f"http://127.0.0.1:{http.server_port}")
    http.shutdown()
    server.stop()


def expected(**want) -> list[str]:
    """The ids matching `want`, newest first, from the data set's definition."""
    out = []
    for i in range(N - 1, -1, -1):
        m = made(i)
        words = set(m["title"].split())
        if all(
            (set(v.lower().split()) <= words) if k == "q" else m[k] == v for k, v in want.items()
        ):
            out.append(m["job_id"])
    return out


def page(api, **params) -> tuple[dict, float]:
    started = time.perf_counter()
    resp = api.get("/jobs", params={"view": "summary", **params})
    took = time.perf_counter() - started
    assert resp.status_code == 200, resp.text
    return resp.json(), took


def test_a_filtered_page_is_the_newest_matches_and_answers_quickly(big):
    _, api = big
    want = {"state": "failed", "backend": "codex", "q": "W07 nightly"}
    truth = expected(**want)
    assert len(truth) > 100  # more than two pages
    first, took1 = page(api, limit=50, **want)
    second, took2 = page(api, limit=50, cursor=first["next_cursor"], **want)
    print(f"filtered pages of 50 at {N} jobs: {took1 * 1000:.0f} ms, {took2 * 1000:.0f} ms")
    assert [j["job_id"] for j in first["work"]] == truth[:50]
    assert [j["job_id"] for j in second["work"]] == truth[50:100]
    for job in first["work"] + second["work"]:
        assert job["state"] == "failed" and job["execution"]["target"]["backend"] == "codex"
    assert took1 < USABLE_S and took2 < USABLE_S


def test_paging_a_rare_peer_to_the_end_finds_each_of_its_jobs_once(big):
    _, api = big
    truth = expected(peer=PEER)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"peer": PEER, "limit": 40, **({"cursor": cursor} if cursor else {})}
        body, took = page(api, **params)
        assert took < USABLE_S
        seen += [j["job_id"] for j in body["work"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == truth and pages == -(-len(truth) // 40)


def test_a_match_rarer_than_the_scan_bound_still_pages_to_every_one(big, monkeypatch):
    """Every matching index is larger than the scan bound and the match is rare: a page stops
    after SCAN_MAX entries with fewer ids and a cursor; going on finds the rest, none twice."""
    r, _ = big
    monkeypatch.setattr(job_queries, "SCAN_MAX", 1000)  # below the smallest index (~5,000)
    filters = {"q": "w04 w39", "backend": "shell"}
    truth = expected(state="queued", **filters)
    assert 0 < len(truth) < 50
    seen: list[str] = []
    short_pages_going_on = 0
    cursor = None
    while True:
        ids, cursor = job_queries.list_ids(
            r, state="queued", filters=filters, limit=50, cursor=cursor
        )
        seen += ids
        if cursor is None:
            break
        short_pages_going_on += len(ids) < 50
    assert seen == truth and short_pages_going_on > 0


def test_the_totals_by_state_are_exact(big):
    _, api = big
    counts = api.get("/stats/jobs").json()
    want = {s: sum(1 for i in range(N) if made(i)["state"] == s) for s in STATES}
    assert counts["total"] == N
    assert {s: n for s, n in counts["by_state"].items() if n} == want


def test_a_q_without_a_word_is_refused(big):
    _, api = big
    resp = api.get("/jobs", params={"q": "- !"})
    assert resp.status_code == 400 and "q must hold a word" in resp.text
