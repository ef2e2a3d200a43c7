"""`dispatchyard`: the command line for the control plane.

Every command but `org create`, `key create` (bootstrap: straight to Redis, before any key
exists) and `run` (the whole stack for development) talks to the HTTP API: `--url`, `--key` for
the /api routes, `--token` for the daemon routes. Tables by default, `--json` prints the API's
JSON; an error prints the API's message to stderr and exits 1 (2 for usage errors).

One module per command group; `client` (HTTP), `output` (tables), `options` (what the groups
share) and `devstack` (a local redis-server, the process supervisor) serve them.
"""

from __future__ import annotations

import sys

import click

from dispatchyard.cli import (
    ask,
    job,
    key,
    mutation,
    org,
    peer,
    project,
    run,
    schedule,
    session,
    template,
    worker,
)
from dispatchyard.cli.client import Api

DEFAULT_URL = "http://127.0.0.1:8080"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="DISPATCHYARD_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="The shim's base URL (env DISPATCHYARD_URL).",
)
@click.option(
    "--key",
    envvar="DISPATCHYARD_API_KEY",
    help="API key for the /api routes (env DISPATCHYARD_API_KEY).",
)
@click.option(
    "--token",
    envvar="DISPATCHYARD_DAEMON_AUTH_TOKEN",
    help="Bearer token for the daemon routes: jobs, schedules, peers, asks "
    "(env DISPATCHYARD_DAEMON_AUTH_TOKEN; without it the shim answers loopback clients only).",
)
@click.pass_context
def cli(ctx: click.Context, url: str, key: str | None, token: str | None) -> None:
    """dispatchyard: the control plane for fleets of AI coding agents.

    Settings for `org create`, `key create` and `run` come from DISPATCHYARD_* variables
    (DISPATCHYARD_REDIS_URL first). Exit codes: 0 ok, 1 an error (the API's message on
    stderr), 2 a usage error.
    """
    ctx.obj = Api(url=url, key=key, token=token)


for _group in (
    org.org,
    key.key,
    project.project,
    session.session,
    worker.worker,
    mutation.mutation,
    job.job,
    template.template,
    schedule.schedule,
    peer.peer,
    ask.ask,
    run.run,
):
    cli.add_command(_group)


def main(argv: list[str] | None = None) -> int:
    """The console script: click's exit codes (0, 1 on errors, 2 on usage errors)."""
    try:
        cli.main(args=argv, prog_name="dispatchyard", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
