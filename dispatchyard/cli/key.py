"""`dispatchyard key`: API keys. `create` is bootstrap (straight to Redis); `list` and `revoke`
use the API."""

from __future__ import annotations

import json

import click

from dispatchyard.cli.client import Api, bootstrap_redis, fail
from dispatchyard.cli.options import ORG_OPTION, command, json_option
from dispatchyard.cli.output import emit
from dispatchyard.state.models import ROLES


@click.group()
def key() -> None:
    """API keys: `create` is bootstrap (Redis); `list` and `revoke` use the API."""


@key.command("create")
@click.option("--org", "org_ref", required=True, help="Org id or slug.")
@click.option("--name", required=True, help="A name for the key.")
@click.option("--role", default="member", show_default=True, type=click.Choice(ROLES))
@click.option("--scope", multiple=True, help="Repeatable, e.g. worker:register.")
@json_option
def key_create(org_ref: str, name: str, role: str, scope: tuple[str, ...], as_json: bool) -> None:
    """Mint an API key for an org (shown once). Straight to Redis: works before any key."""
    from dispatchyard.settings import get_settings
    from dispatchyard.state import apikeys, clock, orgs

    r = bootstrap_redis(get_settings())
    org_id = orgs.resolve_org(r, org_ref)
    if org_id is None:
        fail(f"no org {org_ref!r}")
    record, secret = apikeys.create_key(
        r,
        org_id,
        name=name,
        role=role,
        projects="all",
        scopes=list(scope),
        now_ms=clock.now_ms(),
    )
    if as_json:
        click.echo(json.dumps({"id": record["id"], "orgId": org_id, "role": role, "key": secret}))
    else:
        click.echo(f"key {record['id']} ({role}) for {org_id}: {secret}")


@command(key, "list")
@ORG_OPTION
def key_list(api: Api, org_id: str) -> None:
    """List an org's API keys (never their secrets)."""
    data = api.call("GET", f"/api/org/{org_id}/keys")
    emit(
        api,
        data,
        rows="keys",
        columns=("id", "keyPrefix", "name", "role", "scopes", "createdAt", "revokedAt"),
    )


@command(key, "revoke")
@ORG_OPTION
@click.argument("key_id")
def key_revoke(api: Api, org_id: str, key_id: str) -> None:
    """Revoke an API key."""
    data = api.call("DELETE", f"/api/org/{org_id}/keys/{key_id}")
    emit(api, data, message=lambda _: f"key {key_id} revoked")
