"""The dashboard page (/dashboard) in a real browser: the real shim over HTTP (in process),
seeded over HTTP, driven in headless Chromium (Debian's `chromium`, never a browser Playwright
downloads).

Set DISPATCHYARD_SCREENSHOTS=1 to rewrite docs/screenshots/<view>.png (1280x800) on the way.
"""

from __future__ import annotations

import re
import secrets
import threading

import pytest
from playwright.sync_api import expect, sync_playwright
from pydantic import SecretStr
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.settings import get_settings
from tests.support import records
from tests.support.browser import (
    ARGS,
    CHROMIUM,
    confirm,
    feedback,
    new_page,
    open_view,
    row,
    screenshot,
)
from tests.support.http import Api
from tests.support.mesh_client import MeshPeer
from tests.support.waits import wait_for

FUTURE = "2999-01-01T00:00:00Z"
TOKEN = "daemon-token-for-the-dashboard"


@pytest.fixture(scope="module")
def seeded(api, r, tmp_path_factory):
    """One of each record the page shows, created over HTTP; a blocking question held open by
    a thread until the page answers it."""
    path = str(tmp_path_factory.mktemp("dash"))
    tag = secrets.token_hex(3)
    job = api.post(
        "/jobs",
        json={
            "title": f"nightly build {tag}",
            "prompt": "build it",
            "path": path,
            "backend": "shell",
            "due_at": FUTURE,
        },
    )
    assert job.status_code == 200, job.text
    template = api.post(
        "/jobs",
        json={
            "title": f"hourly triage {tag}",
            "prompt": "triage",
            "path": path,
            "backend": "claude-code",
            "cron": "@hourly",
        },
    )
    assert template.status_code == 200, template.text
    # Two peers connected over the mesh WebSocket (an ask needs a live recipient).
    circle = f"dash-{tag}"
    alice = MeshPeer(api.base, f"alice-{tag}", circle, path=path)
    bob = MeshPeer(api.base, f"bob-{tag}", circle, path=path)
    schedule = api.post(
        "/schedules",
        json={
            "from_peer": alice.name,
            "to_peer": bob.name,
            "text": "stand-up",
            "cron": "0 9 * * *",
            "circle": circle,
        },
    )
    assert schedule.status_code == 200, schedule.text
    ask = api.post(
        "/ask",
        json={
            "from_peer": alice.name,
            "to_peer": bob.name,
            "text": "which branch?",
            "circle": circle,
        },
    )
    assert ask.status_code == 200, ask.text

    org = records.new_org(r)
    records.project(api, org)
    worker = records.register(api, org, hostname=f"box-{tag}")
    session = records.enqueue(api, org, issueIdentifier="ENG-42")
    mutation = api.post(
        "/api/daemon/mutations",
        org.key,
        json={
            "workerHostId": worker["workerId"],
            "op": "project.add",
            "params": {"id": "prj_x", "repository": "github.com/a/x"},
        },
    )
    assert mutation.status_code == 201, mutation.text

    cid = f"pretool-{tag}"
    answered: dict = {}
    question = {
        "prompt": "git push origin main?",
        "options": [{"id": "allow", "title": "Allow"}, {"id": "deny", "title": "Deny"}],
        "scope": "tool_permission",
        "timeout_seconds": 60,
        "correlation_id": cid,
    }
    waiter = threading.Thread(
        target=lambda: answered.update(
            Api(api.base).post("/questions/ask-blocking", json=question).json()
        ),
        daemon=True,
    )
    waiter.start()
    wait_for(
        lambda: cid in {a["correlation_id"] for a in api.get("/asks/open").json()["asks"]},
        message="the blocking question to open",
    )
    yield {
        "job": job.json()["job_id"],
        "template": template.json()["calendar_id"],
        "peer": alice.peer_id,
        "schedule": schedule.json()["schedule_id"],
        "org": org,
        "worker": worker["workerId"],
        "session": session["sessionId"],
        "mutation": mutation.json()["mutation"]["id"],
        "question": cid,
        "ask": ask.json()["correlation_id"],
        "answered": answered,
        "waiter": waiter,
        "path": path,
    }
    if waiter.is_alive():  # the page did not answer: release the request thread
        api.post("/answer", json={"correlation_id": cid, "option_id": "deny"})
        waiter.join(10)
    alice.close()
    bob.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page(browser, shim_url, seeded):
    context, page, errors = new_page(browser, f"{shim_url}/dashboard")
    page.fill("#api-key", seeded["org"].key)
    page.click("#credentials button[type=submit]")
    expect(page.locator("#live")).to_have_text("live (stream)")
    yield page
    context.close()
    assert errors == []


@pytest.fixture(scope="module")
def guarded():
    """A second shim with a daemon token configured."""
    settings = get_settings().model_copy(update={"daemon_auth_token": SecretStr(TOKEN)})
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_each_view_shows_its_records(page, seeded):
    views = [
        ("jobs", "jobs", seeded["job"], "queued"),
        ("templates", "templates", seeded["template"], "active"),
        ("schedules", "schedules", seeded["schedule"], "pending"),
        ("peers", "peers", seeded["peer"], "online"),
        ("asks", "questions", seeded["question"], "git push origin main?"),
        ("sessions", "sessions", seeded["session"], "green"),
        ("workers", "workers", seeded["worker"], "box-"),
        ("mutations", "mutations", seeded["mutation"], "pending"),
    ]
    for view, table, record_id, text in views:
        open_view(page, view)
        expect(row(page, table, record_id)).to_contain_text(text)
        if view == "asks":
            expect(row(page, "asks", seeded["ask"])).to_contain_text("which branch?")
        screenshot(page, view)
    open_view(page, "sessions")
    expect(page.locator("dl.summary")).to_contain_text("green")


def test_pausing_a_template_shows_it_paused(page, api, seeded):
    cal = seeded["template"]
    open_view(page, "templates")
    row(page, "templates", cal).locator("[data-action=pause]").click()
    feedback(page, "ok", f"Pause: {cal} is paused.")
    expect(row(page, "templates", cal)).to_contain_text("paused")
    assert records.job(api, cal)["state"] == "paused"
    row(page, "templates", cal).locator("[data-action=resume]").click()
    expect(row(page, "templates", cal).locator("[data-action=pause]")).to_be_visible()
    assert records.job(api, cal)["state"] == "active"


def test_answering_the_blocking_question_releases_the_request(page, seeded):
    open_view(page, "asks")
    question = row(page, "questions", seeded["question"])
    question.locator("[data-action=answer][data-option=allow]").click()
    feedback(page, "ok", f"Answered {seeded['question']}: Allow.")
    expect(question).to_have_count(0)
    seeded["waiter"].join(10)
    assert seeded["answered"] == {
        "correlation_id": seeded["question"],
        "outcome": "answered",
        "option_id": "allow",
        "message": None,
        "timeout_seconds": 55.0,
    }


def test_cancelling_a_mutation(page, api, seeded):
    mid, org = seeded["mutation"], seeded["org"]
    open_view(page, "mutations")
    cancel = row(page, "mutations", mid).locator("[data-action=cancel]")
    # Asked first: keeping it changes nothing.
    cancel.click()
    confirm(page, f"Cancel mutation {mid} (project.add)?", accept=False)
    assert (
        api.get(f"/api/daemon/mutations/{mid}", org.key).json()["mutation"]["status"] == "pending"
    )
    expect(row(page, "mutations", mid)).to_contain_text("pending")
    cancel.click()
    confirm(page, f"Cancel mutation {mid}")
    feedback(page, "ok", f"Cancelled mutation {mid}.")
    expect(row(page, "mutations", mid)).to_contain_text("cancelled")
    expect(row(page, "mutations", mid).locator("[data-action=cancel]")).to_have_count(0)
    stored = api.get(f"/api/daemon/mutations/{mid}", org.key).json()["mutation"]
    assert stored["status"] == "cancelled"


def test_a_new_job_appears_live(page, api, seeded):
    open_view(page, "jobs")
    loaded = page.locator("#view").get_attribute("data-loaded")
    resp = api.post(
        "/jobs",
        json={
            "title": "arrived later",
            "prompt": "p",
            "path": seeded["path"],
            "backend": "shell",
            "due_at": FUTURE,
        },
    )
    assert resp.status_code == 200, resp.text
    # No reload, no tab switch: the stream's job event re-renders the open view.
    expect(row(page, "jobs", resp.json()["job_id"])).to_contain_text("arrived later")
    expect(page.locator("#view")).not_to_have_attribute("data-loaded", re.compile(f"^{loaded}$"))


def test_with_a_daemon_token_the_page_asks_for_it_and_polls_events(browser, guarded, seeded):
    context, page, errors = new_page(browser, f"{guarded}/dashboard#templates")
    # The page itself is open; the daemon routes it calls are not.
    expect(page.locator("#status")).to_contain_text("401")
    page.fill("#daemon-token", TOKEN)
    page.click("#credentials button[type=submit]")
    expect(row(page, "templates", seeded["template"])).to_be_visible()
    assert page.evaluate("localStorage.getItem('dispatchyard.daemonToken')") == TOKEN
    # EventSource cannot send the token: the page polls /events?since= instead.
    expect(page.locator("#live")).to_have_text("live (polling)")
    open_view(page, "jobs")
    api = Api(guarded)
    resp = api.post(
        "/jobs",
        TOKEN,
        json={"title": "polled in", "prompt": "p", "path": seeded["path"], "due_at": FUTURE},
    )
    assert resp.status_code == 200, resp.text
    expect(row(page, "jobs", resp.json()["job_id"])).to_contain_text("polled in")
    context.close()
    assert errors == []
