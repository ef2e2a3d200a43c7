"""Driving the dashboard in Debian's headless Chromium with Playwright (never a browser that
Playwright downloads)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

CHROMIUM = "/usr/bin/chromium"
# As root, without a sandbox; no background traffic (this machine's network is closed).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 10_000
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def new_page(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    """A fresh context (1280x800) and page at `url`, and the list its script errors go to."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url)
    return context, page, errors


def screenshots_wanted() -> bool:
    return os.environ.get("DISPATCHYARD_SCREENSHOTS") == "1"


def screenshot(page: Any, name: str, full_page: bool = False) -> None:
    """With DISPATCHYARD_SCREENSHOTS=1, rewrite docs/screenshots/<name>.png."""
    if screenshots_wanted():
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def open_view(page: Any, name: str) -> None:
    """Click a tab and wait until its view has loaded without an error."""
    page.click(f"#tabs button[data-view='{name}']")
    expect(page.locator("#view")).to_have_attribute("data-view", name)
    expect(page.locator("#status")).to_be_empty()


def row(page: Any, table: str, record_id: str) -> Any:
    """The row of `record_id` in the table named `table`."""
    return page.locator(f"table[data-table='{table}'] tr[data-id='{record_id}']")


def confirm(page: Any, says: str, accept: bool = True) -> None:
    """The confirmation dialog is open and asks `says`: confirm it (or keep things as they
    are); it closes."""
    dialog = page.locator("dialog#confirm")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(says)
    page.click("#confirm-yes" if accept else "#confirm-no")
    expect(dialog).to_be_hidden()


def feedback(page: Any, kind: str, text: str) -> None:
    """The feedback line says `text`, as success (`ok`) or `error`."""
    line = page.locator("#feedback")
    expect(line).to_have_attribute("data-kind", kind)
    expect(line).to_contain_text(text)
