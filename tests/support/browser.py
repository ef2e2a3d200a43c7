"""Driving the dashboard in Debian's headless Chromium with Playwright (never a browser that
Playwright downloads)."""

from __future__ import annotations

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


def open_view(page: Any, name: str) -> None:
    """Click a tab and wait until its view has loaded without an error."""
    page.click(f"#tabs button[data-view='{name}']")
    expect(page.locator("#view")).to_have_attribute("data-view", name)
    expect(page.locator("#status")).to_be_empty()


def row(page: Any, table: str, record_id: str) -> Any:
    """The row of `record_id` in the table named `table`."""
    return page.locator(f"table[data-table='{table}'] tr[data-id='{record_id}']")
