"""What the command modules share: the `command` decorator (the Api object first, `--json`
last), the org option, and the parsers of JSON and NAME=VALUE arguments."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

import click

from dispatchyard.cli.client import Api

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the API's JSON instead of a table."
)

ORG_OPTION = click.option(
    "--org",
    "org_id",
    envvar="DISPATCHYARD_ORG",
    required=True,
    help="Org id (env DISPATCHYARD_ORG).",
)


def _with_json(f: Callable[..., Any]) -> click.Command | Callable[..., Any]:
    """`--json` on a command: sets the output mode of the shared Api object."""

    def wrapper(ctx: click.Context, as_json: bool, **kwargs: Any) -> Any:
        api = ctx.ensure_object(Api)
        api.as_json = as_json or api.as_json
        return ctx.invoke(f, api, **kwargs)

    wrapped = functools.update_wrapper(wrapper, f)
    # The options declared on f become the wrapper's, `--json` after them.
    params = list(getattr(f, "__click_params__", []))
    setattr(wrapper, "__click_params__", params)  # noqa: B010 (click reads this attribute)
    del wrapped.__wrapped__
    return click.pass_context(json_option(wrapper))


def command(group: click.Group, name: str, **kwargs: Any) -> Callable[..., click.Command]:
    """A command of `group` that receives the Api object first and takes `--json`."""

    def decorate(f: Callable[..., Any]) -> click.Command:
        return group.command(name, **kwargs)(_with_json(f))

    return decorate


def json_arg(value: str | None, what: str) -> Any:
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError as e:
        raise click.BadParameter(f"not JSON: {e}", param_hint=what) from None


def fields(pairs: tuple[str, ...]) -> dict[str, Any]:
    """`--field name=value` pairs; a value that parses as JSON is taken as JSON."""
    out: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--field")
        try:
            out[name] = json.loads(value)
        except ValueError:
            out[name] = value
    return out
