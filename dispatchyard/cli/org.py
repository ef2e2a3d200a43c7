"""`dispatchyard org`: organizations (bootstrap, straight to Redis before any key exists)."""

from __future__ import annotations

import json
import re

import click

from dispatchyard.cli.client import bootstrap_redis, fail
from dispatchyard.cli.options import json_option
from dispatchyard.state.errors import Conflict
from dispatchyard.state.models import SLUG_PATTERN


@click.group()
def org() -> None:
    """Organizations (bootstrap: straight to Redis)."""


@org.command("create")
@click.argument("name")
@click.option("--slug", required=True, help=f"The org's slug, {SLUG_PATTERN}.")
@json_option
def org_create(name: str, slug: str, as_json: bool) -> None:
    """Create an org and print its first owner key (shown once). Straight to Redis."""
    from dispatchyard.settings import get_settings
    from dispatchyard.state import apikeys, clock, orgs

    if not re.match(SLUG_PATTERN, slug):
        raise click.BadParameter(f"must match {SLUG_PATTERN}", param_hint="--slug")
    r = bootstrap_redis(get_settings())
    try:
        created = orgs.create_org(r, name, slug, clock.now_ms())
    except Conflict:
        fail(f"an org with slug {slug!r} already exists")
    _, secret = apikeys.create_key(
        r,
        str(created["id"]),
        name="owner (bootstrap)",
        role="owner",
        projects="all",
        scopes=["*"],
        now_ms=clock.now_ms(),
    )
    if as_json:
        click.echo(json.dumps({"orgId": created["id"], "slug": created["slug"], "key": secret}))
    else:
        click.echo(f"org {created['id']} ({created['slug']}) created")
        click.echo(f"owner key (shown once, store it now): {secret}")
