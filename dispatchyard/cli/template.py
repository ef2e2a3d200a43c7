"""`dispatchyard template`: recurring job templates (`cal-…`, made by `job create --cron`)."""

from __future__ import annotations

from collections.abc import Callable

import click

from dispatchyard.cli.client import Api
from dispatchyard.cli.job import list_jobs
from dispatchyard.cli.options import command
from dispatchyard.cli.output import emit, state_of

TEMPLATE_COLUMNS = ("calendar_id", "state", "title", "cron", "timezone", "next_due_at", "backend")


@click.group()
def template() -> None:
    """Recurring job templates, `cal-…` (made by `job create --cron`)."""


@command(template, "list")
@click.option("--state", help="active, paused, cancelled, … (a template state).")
def template_list(api: Api, state: str | None) -> None:
    """List recurring job templates."""
    emit(api, list_jobs(api, state, None), rows="recurring", columns=TEMPLATE_COLUMNS)


def _action(action: str, help_text: str) -> None:
    """`template <action> ID`: POST /jobs/{ID}/<action>."""

    def run(api: Api, template_id: str) -> None:
        data = api.call("POST", f"/jobs/{template_id}/{action}", {})
        emit(api, data, message=lambda d: f"{template_id} {state_of(d) or action}")

    run.__name__ = f"template_{action}"
    run.__doc__ = help_text
    decorated: Callable[..., None] = click.argument("template_id")(run)
    command(template, action)(decorated)


_action("pause", "Pause a template: no fires until it is resumed.")
_action("resume", "Resume a paused template.")
_action("cancel", "Cancel a template: it fires no more.")
