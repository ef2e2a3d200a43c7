"""How commands print: aligned tables, `field  value` details, one-line messages, or the API's
JSON as it came (`--json`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import click

from dispatchyard.cli.client import Api


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, dict) and isinstance(value.get("level"), str):
        return str(value["level"])  # a session's health: its level in a table
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= 48 else text[:47] + "…"


def table(rows: list[dict[str, Any]], columns: Iterable[str], empty: str = "(none)") -> None:
    """Aligned columns: the preferred columns the rows have (else their first scalar fields)."""
    if not rows:
        click.echo(empty)
        return
    cols = [c for c in columns if any(c in row for row in rows)]
    if not cols:
        first = rows[0]
        cols = [k for k, v in first.items() if not isinstance(v, dict | list)][:6]
    cells = [[_cell(row.get(c)) for c in cols] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(cols)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def details(record: dict[str, Any]) -> None:
    """One `field  value` line a field; nested values as compact JSON."""
    if not record:
        click.echo("(empty)")
        return
    width = max(len(k) for k in record)
    for k, v in record.items():
        value = "-" if v is None else v
        if isinstance(value, dict | list):
            value = json.dumps(value, separators=(",", ":"))
        click.echo(f"{k.ljust(width)}  {value}")


def emit(
    api: Api,
    data: Any,
    *,
    rows: str | None = None,
    columns: Iterable[str] = (),
    record: str | None = None,
    message: Callable[[Any], str] | None = None,
) -> None:
    """`--json`: the API's JSON as is. Otherwise a table of data[rows], the details of
    data[record], or a one-line message."""
    if api.as_json:
        click.echo(json.dumps(data, indent=2))
    elif rows is not None:
        table(data.get(rows) or [], columns)
    elif message is not None:
        click.echo(message(data))
    else:
        details(data.get(record, data) if record else data)


def state_of(data: Any) -> str | None:
    """The state a job or template answer carries, wherever the route put it."""
    if not isinstance(data, dict):
        return None
    for k in ("status", "job", "work", "calendar"):
        if isinstance(data.get(k), dict) and "state" in data[k]:
            return str(data[k]["state"])
    return data.get("state") if isinstance(data.get("state"), str) else None
