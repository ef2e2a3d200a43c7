"""The dashboard's pages to work from, in a real browser on the real shim over HTTP, with a
real Celery worker firing the jobs: a job's page (request, state history on a timeline,
attempts, output, result, and cancel / run / retry that ask first and say what happened), the
jobs list filtered and paged, a peer's page, the fire charts, and the favicon.

Set DISPATCHYARD_SCREENSHOTS=1 to rewrite docs/screenshots/{job,jobs-filtered,peer,fires}.png.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support import records
from tests.support.browser import (
    ARGS,
    CHROMIUM,
    confirm,
    feedback,
    new_page,
    row,
    screenshot,
    screenshots_wanted,
)
from tests.support.mesh_client import MeshPeer

FUTURE = "2999-01-01T00:00:00Z"


@pytest.fixture(autouse=True)
def _worker(celery_worker):
    return celery_worker


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def visit(browser, shim_url):
    """Open the dashboard at a hash route; no script error by the end of the test."""
    opened = []

    def go(route: str):
        context, page, errors = new_page(browser, f"{shim_url}/dashboard#{route}")
        opened.append((context, errors))
        return page

    yield go
    for context, errors in opened:
        context.close()
        assert errors == []


def loaded(page, view: str, route: str | None = None) -> None:
    """The view (at that route) has rendered without an error."""
    expect(page.locator("#view")).to_have_attribute("data-view", view)
    if route is not None:
        expect(page.locator("#view")).to_have_attribute("data-route", route)
    expect(page.locator("#status")).to_be_empty()


def create(api, path, **body) -> str:
    resp = api.post("/jobs", json={"prompt": "true", "path": str(path), **body})
    assert resp.status_code == 200, resp.text
    return resp.json()["job_id"]


def test_a_job_page_shows_what_was_asked_what_happened_and_retries(api, visit, tmp_path):
    tag = secrets.token_hex(3)
    prompt = "echo out-line; echo err-line >&2; exit 3"
    job_id = create(api, tmp_path, title=f"flaky deploy {tag}", prompt=prompt, backend="shell")
    assert records.wait_job(api, job_id)["state"] == "failed"
    page = visit(f"jobs/{job_id}")
    loaded(page, "job")
    expect(page.locator(".job-title")).to_have_text(f"flaky deploy {tag}")
    expect(page.locator(".job-head .job-state")).to_have_text("failed")
    request = page.locator("[data-section=request]")
    expect(request.locator("[data-field=backend] dd")).to_have_text("shell")
    expect(request.locator("[data-field=path] dd")).to_have_text(str(tmp_path))
    expect(request.locator("[data-text=prompt]")).to_have_text(prompt)
    # The trace's stages, on the timeline and in the table, in order.
    stages = [s["stage"] for s in api.get(f"/traces/{job_id}").json()["stages"]]
    assert stages[0] == "created" and stages[-1] == "failed"
    history = page.locator("[data-section=history]")
    expect(history.locator("svg.timeline g.stage")).to_have_count(len(stages))
    expect(history.locator("table[data-table=stages] tbody tr td:nth-child(3)")).to_have_text(
        stages
    )
    attempts = page.locator("table[data-table=attempts] tbody tr")
    expect(attempts).to_have_count(1)
    expect(attempts.first).to_contain_text("exit_code")
    expect(page.locator("[data-text=stderr]")).to_contain_text("err-line")
    result = page.locator("[data-section=result]")
    expect(result.locator("[data-field=result-state]")).to_contain_text("failed")
    expect(result.locator("[data-text=result-error]")).to_contain_text('"exit_code": 3')
    screenshot(page, "job", full_page=True)

    # Retry: asked first, then said, then the page follows the new attempt live.
    page.locator(".job-head [data-action=retry]").click()
    confirm(page, f"Retry job {job_id}")
    feedback(page, "ok", f"Retry requested for {job_id}.")
    expect(attempts).to_have_count(2)
    expect(attempts.nth(1)).to_contain_text("retry")
    assert [a["fire"] for a in records.wait_job(api, job_id)["runner"]["attempts"]] == [
        "due",
        "retry",
    ]


def test_cancel_asks_first_and_an_action_the_api_refuses_shows_its_error(api, visit, tmp_path):
    tag = secrets.token_hex(3)
    kept = create(api, tmp_path, title=f"keep {tag}", backend="shell", due_at=FUTURE)
    later = create(api, tmp_path, title=f"later {tag}", backend="shell", due_at=FUTURE)
    page = visit(f"jobs?q={tag}")
    loaded(page, "jobs", f"jobs?q={tag}")
    # Cancel from the list, then think better of it: nothing changes, nothing is said.
    row(page, "jobs", kept).locator("[data-action=cancel]").click()
    confirm(page, f"Cancel job {kept} “keep {tag}”?", accept=False)
    expect(page.locator("#feedback")).to_be_empty()
    assert records.job(api, kept)["state"] == "queued"
    # Confirmed: done, and said.
    row(page, "jobs", kept).locator("[data-action=cancel]").click()
    confirm(page, f"Cancel job {kept}")
    feedback(page, "ok", f"Cancelled {kept}.")
    expect(row(page, "jobs", kept)).to_contain_text("cancelled")
    assert records.job(api, kept)["state"] == "cancelled"
    # Run, while someone else cancels the job: the API's refusal is what the page says.
    page.goto(f"{page.url.split('#')[0]}#jobs/{later}")
    loaded(page, "job")
    page.locator(".job-head [data-action=run]").click()
    expect(page.locator("dialog#confirm")).to_be_visible()
    assert api.post(f"/jobs/{later}/cancel", json={}).status_code == 200
    confirm(page, f"Run job {later}")
    feedback(page, "error", "409 Job cannot be run from state cancelled")
    expect(page.locator(".job-head .job-state")).to_have_text("cancelled")


def test_the_jobs_list_filters_and_pages(api, visit, tmp_path):
    tag = secrets.token_hex(3)
    peer = f"repow-dash-{tag}"
    codex = [
        create(api, tmp_path, title=f"nightly {tag} {i}", backend="codex", due_at=FUTURE)
        for i in range(5)
    ]
    create(api, tmp_path, title=f"nightly {tag} shell", backend="shell", due_at=FUTURE)
    assigned = create(api, tmp_path, title=f"other {tag}", assigned_peer_id=peer, due_at=FUTURE)
    newest_first = codex[::-1]
    page = visit("jobs?limit=2")
    loaded(page, "jobs", "jobs?limit=2")
    # The totals by state, each a link to the list of that state.
    counts = api.get("/stats/jobs").json()
    expect(page.locator("dl.summary .state-all dd")).to_have_text(str(counts["total"]))
    assert counts["by_state"]["queued"] >= 7
    page.click("dl.summary .state-queued a")
    loaded(page, "jobs", "jobs?limit=2&state=queued")
    page.goto(f"{page.url.split('#')[0]}#jobs?limit=2")
    loaded(page, "jobs", "jobs?limit=2")
    page.select_option("#filter-state", "queued")
    page.fill("#filter-backend", "codex")
    page.fill("#filter-q", f"NIGHTLY {tag}")
    page.click("#job-filters button[type=submit]")
    route = f"jobs?state=queued&backend=codex&q=NIGHTLY+{tag}&limit=2"
    loaded(page, "jobs", route)
    ids = page.locator("table[data-table=jobs] tbody tr")
    expect(ids).to_have_count(2)
    pages = []
    for number in (1, 2, 3):
        expect(page.locator("#page-info")).to_contain_text(f"page {number}")
        pages.append([ids.nth(i).get_attribute("data-id") for i in range(ids.count())])
        if number < 3:
            page.click("#page-older")
            expect(page.locator("#page-info")).to_contain_text(f"page {number + 1}")
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:5]]
    expect(page.locator("#page-older")).to_be_disabled()
    page.click("#page-newer")
    expect(page.locator("#page-info")).to_contain_text("page 2")
    expect(row(page, "jobs", newest_first[2])).to_be_visible()
    if screenshots_wanted():  # the same filters, a page of the usual size
        page.goto(f"{page.url.split('#')[0]}#{route.replace('&limit=2', '')}")
        expect(ids).to_have_count(5)
        screenshot(page, "jobs-filtered")
    # By peer (the assigned one), and by a state nothing is in.
    page.fill("#filter-backend", "")
    page.fill("#filter-q", "")
    page.fill("#filter-peer", peer)
    page.click("#job-filters button[type=submit]")
    expect(ids).to_have_count(1)
    expect(row(page, "jobs", assigned)).to_contain_text(peer)
    page.select_option("#filter-state", "failed")
    page.click("#job-filters button[type=submit]")
    expect(page.locator("[data-empty=jobs]")).to_have_text("No jobs match.")
    # A job id in the words box opens its page.
    page.fill("#filter-q", codex[0])
    page.click("#job-filters button[type=submit]")
    loaded(page, "job")
    expect(page.locator(".job-title")).to_have_text(f"nightly {tag} 0")


def test_a_peer_page_shows_its_asks_deliveries_and_jobs(api, visit, shim_url, tmp_path):
    tag = secrets.token_hex(3)
    circle = f"peerpage-{tag}"
    meta = {"repowire_cli_fallback": True}  # a polling peer: what is sent to it is queued
    poller = api.post("/peers", json={"name": f"poller-{tag}", "circle": circle, "metadata": meta})
    assert poller.status_code == 200, poller.text
    poller_id = poller.json()["peer_id"]
    alice = MeshPeer(shim_url, f"alice-{tag}", circle, path=str(tmp_path))
    try:
        ask = api.post(
            "/ask",
            json={
                "from_peer": alice.name,
                "to_peer": f"poller-{tag}",
                "text": "which branch?",
                "circle": circle,
            },
        )
        assert ask.status_code == 200, ask.text
        cid = ask.json()["correlation_id"]
        note = {"from_peer": alice.name, "to_peer": poller_id, "text": "deploy is done"}
        assert api.post("/notify", json=note).status_code == 200
        job_id = create(
            api, tmp_path, title=f"for the poller {tag}", assigned_peer_id=poller_id, due_at=FUTURE
        )
        page = visit(f"peers/{poller_id}")
        loaded(page, "peer")
        expect(page.locator(".peer-name")).to_have_text(f"poller-{tag}")
        expect(row(page, "peer-asks", cid)).to_contain_text("which branch?")
        expect(row(page, "peer-asks", cid)).to_contain_text("inbound")
        deliveries = page.locator("table[data-table=peer-deliveries] tbody tr")
        expect(deliveries).to_have_count(2)
        expect(deliveries.nth(0)).to_contain_text("which branch?")
        expect(deliveries.nth(1)).to_contain_text("deploy is done")
        expect(row(page, "peer-jobs", job_id)).to_contain_text(f"for the poller {tag}")
        screenshot(page, "peer", full_page=True)
        # Looking did not take them: the peer still drains both.
        drained = api.get("/deliveries/pending", params={"peer_id": poller_id}).json()
        assert [d["text"] for d in drained["deliveries"]][1] == "deploy is done"
        assert len(drained["deliveries"]) == 2
        # From the peers list, the name leads here; from a job row, its peer does too.
        page.goto(f"{page.url.split('#')[0]}#peers")
        loaded(page, "peers")
        row(page, "peers", alice.peer_id).locator("a.record-link").click()
        loaded(page, "peer")
        expect(page.locator(".peer-name")).to_have_text(alice.name)
        expect(row(page, "peer-asks", cid)).to_contain_text("outbound")
    finally:
        alice.close()


def test_the_fire_charts_show_the_last_hour_from_state(api, visit, tmp_path):
    """Jobs due half a minute ago fire now: each counts in the bar of the minute it acquired
    its attempt, and that minute's lateness point is at least that late."""
    due = (datetime.now(UTC) - timedelta(seconds=30)).isoformat()
    made = [create(api, tmp_path, title=f"late {i}", backend="shell", due_at=due) for i in range(3)]
    ours: dict[str, int] = {}  # minute start (as the route names it) -> our fires in it
    for job_id in made:
        attempt = records.wait_job(api, job_id)["runner"]["attempts"][0]
        assert attempt["fire"] == "due"
        started = datetime.fromisoformat(attempt["started_at"])
        minute = started.replace(second=0, microsecond=0).isoformat()
        ours[minute] = ours.get(minute, 0) + 1
    page = visit("fires")
    loaded(page, "fires")
    stats = {m["at"]: m for m in api.get("/stats/fires").json()["minutes"]}
    assert len(stats) == 60 and set(ours) <= set(stats)
    for minute, n in ours.items():
        bar = page.locator(f"svg[data-chart=fires] g.bar[data-minute='{minute}']")
        # What the page drew: ours at least, and no more than state holds now.
        assert n <= int(bar.get_attribute("data-fires")) <= stats[minute]["fires"]
        point = page.locator(f"svg[data-chart=lateness] g.point[data-minute='{minute}']")
        assert float(point.get_attribute("data-max")) >= 29
    expect(page.locator("dl.summary .fires-total dd")).not_to_have_text("0")
    expect(page.locator("svg[data-chart=lateness] polyline")).to_have_count(2)
    screenshot(page, "fires", full_page=True)


def test_the_favicon_is_served_and_linked(api, visit):
    resp = api.get("/favicon.ico")
    assert resp.status_code == 200
    assert resp.content[:4] == b"\x00\x00\x01\x00"  # an ICO file with one image
    page = visit("jobs")
    loaded(page, "jobs")
    href = page.locator("link[rel=icon]").get_attribute("href")
    shown = page.evaluate(
        f"fetch({href!r}).then(r => r.status + ' ' + r.headers.get('content-type'))"
    )
    assert shown.startswith("200 image/")
