"""Hostile text stays text: records whose free-text fields carry HTML and script payloads are
shown by the dashboard, in a real browser, as the characters they are, and no script of theirs
runs; the page is served with a Content-Security-Policy that allows no inline script; a peer
name cannot carry markup at all."""

from __future__ import annotations

import secrets

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.support.browser import ARGS, CHROMIUM, WAIT_MS, open_view, row
from tests.support.mesh_client import MeshPeer
from tests.support.waits import wait_for

FUTURE = "2999-01-01T00:00:00Z"
# Each payload, if it ran, would set window.__xss (or open a dialog).
PAYLOADS = [
    '<img src=x onerror="window.__xss=1">',
    "<script>window.__xss=2</script>",
    '"><svg onload="window.__xss=3">',
    '<a href="javascript:window.__xss=4">x</a>',
]


@pytest.fixture(scope="module")
def hostile(api, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("xss"))
    tag = secrets.token_hex(3)
    made = {}
    job = api.post(
        "/jobs",
        json={"title": PAYLOADS[0], "prompt": PAYLOADS[1], "path": path, "due_at": FUTURE},
    )
    assert job.status_code == 200, job.text
    made["job"] = job.json()["job_id"]
    template = api.post(
        "/jobs",
        json={"title": PAYLOADS[2], "prompt": PAYLOADS[3], "path": path, "cron": "@daily"},
    )
    assert template.status_code == 200, template.text
    made["template"] = template.json()["calendar_id"]
    circle = f"xss-{tag}"
    alice = MeshPeer(api.base, f"alice-{tag}", circle, path=path)
    bob = MeshPeer(api.base, f"bob-{tag}", circle, path=path)
    described = api.post(f"/peers/{bob.peer_id}/description", json={"description": PAYLOADS[1]})
    assert described.status_code == 200, described.text
    schedule = api.post(
        "/schedules",
        json={
            "from_peer": alice.name,
            "to_peer": bob.name,
            "text": PAYLOADS[3],
            "cron": "0 9 * * *",
            "circle": circle,
        },
    )
    assert schedule.status_code == 200, schedule.text
    made["schedule"] = schedule.json()["schedule_id"]
    ask = api.post(
        "/ask",
        json={"from_peer": alice.name, "to_peer": bob.name, "text": PAYLOADS[2], "circle": circle},
    )
    assert ask.status_code == 200, ask.text
    made["ask"] = ask.json()["correlation_id"]
    made["peer"] = bob.peer_id
    wait_for(
        lambda: made["ask"] in {a["correlation_id"] for a in api.get("/asks/open").json()["asks"]},
        message="the ask to be listed",
    )
    yield made
    alice.close()
    bob.close()


def test_a_peer_name_cannot_carry_markup(api):
    for name in ("<b>x</b>", 'a"onmouseover="x', "x y"):
        assert api.post("/peers", json={"name": name}).status_code == 422


def test_the_page_sends_a_policy_without_inline_script(api):
    for path in ("/dashboard/", "/dashboard/app.js"):
        policy = api.get(path).headers["Content-Security-Policy"]
        directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
        assert directives["script-src"] == "'self'" and "unsafe" not in policy
        assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_hostile_text_is_shown_as_text_and_runs_nothing(shim_url, hostile):
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context()
        context.set_default_timeout(WAIT_MS)
        page = context.new_page()
        dialogs: list[str] = []
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{shim_url}/dashboard")
        shown = [
            ("jobs", "jobs", hostile["job"], PAYLOADS[0]),
            ("templates", "templates", hostile["template"], PAYLOADS[2]),
            ("schedules", "schedules", hostile["schedule"], PAYLOADS[3]),
            ("peers", "peers", hostile["peer"], PAYLOADS[1]),
            ("asks", "asks", hostile["ask"], PAYLOADS[2]),
        ]
        for view, table, record_id, payload in shown:
            open_view(page, view)
            cells = row(page, table, record_id)
            # The payload's characters, as text (a rendered <img> or <script> would not show
            # its own source).
            expect(cells).to_contain_text(payload)
            assert cells.locator("img, script, svg, a[href^='javascript']").count() == 0
        # The pages of one record: a job's (title, prompt) and a peer's (description).
        # (A job's page draws its timeline as SVG of its own: no SVG of a record's has an
        # onload.)
        injected = "img, script, svg[onload], a[href^='javascript']"
        page.goto(f"{shim_url}/dashboard#jobs/{hostile['job']}")
        expect(page.locator(".job-title")).to_have_text(PAYLOADS[0])
        expect(page.locator("[data-text=prompt]")).to_have_text(PAYLOADS[1])
        expect(page.locator("svg.timeline g.stage")).not_to_have_count(0)
        assert page.locator("#view").locator(injected).count() == 0
        page.goto(f"{shim_url}/dashboard#peers/{hostile['peer']}")
        expect(page.locator(".description")).to_have_text(PAYLOADS[1])
        assert page.locator("#view").locator(injected).count() == 0
        assert page.evaluate("window.__xss") is None
        assert dialogs == [] and errors == []
        browser.close()
