"""The shim over HTTP, as the commands call it: the /api routes take the API key, the daemon
routes the daemon token; an error answer becomes one line on stderr and exit code 1."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import click
import redis

if TYPE_CHECKING:
    from dispatchyard.settings import Settings


def fail(message: str, code: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def bootstrap_redis(settings: Settings) -> redis.Redis:
    """The Redis the bootstrap commands write to: the same client every process builds, so a
    `sentinel://` setting works here too. Exits with one line when it does not answer."""
    from dispatchyard.clients import redis_client
    from dispatchyard.redis_urls import shown_url

    r = redis_client(settings)
    try:
        r.ping()
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        fail(
            f"cannot reach Redis at {shown_url(settings.redis_url)}. Start the stack with "
            "`make run` (it starts a Redis when none answers), or point DISPATCHYARD_REDIS_URL "
            "at your Redis."
        )
    return r


@dataclass
class Api:
    """The shim over HTTP: the /api routes take the API key, the others the daemon token."""

    url: str
    key: str | None
    token: str | None
    as_json: bool = False

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
    ) -> Any:
        url = self.url.rstrip("/") + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json"}
        secret = self.key if path.startswith("/api/") else self.token
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as e:
            message = api_message(e.read(), e.reason)
            if e.code == 503:
                message += " (the shim cannot reach Redis: start it, e.g. with `make run`)"
            hint = credential_hint(e.code, path, message, secret is not None)
            fail(f"{method} {path}: HTTP {e.code}: {message}" + (f". {hint}" if hint else ""))
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            fail(
                f"cannot reach dispatchyard at {self.url} ({reason}). Start the stack with "
                "`make run` (or `dispatchyard run`), or point --url / DISPATCHYARD_URL at it."
            )
        return json.loads(raw) if raw else {}


def credential_hint(code: int, path: str, message: str, sent: bool) -> str | None:
    """What to set when the shim refused the credential the CLI sent (or did not send)."""
    platform = path.startswith("/api/")
    if code == 401 and platform:
        given = "was not accepted" if sent else "was not given"
        return (
            f"The API key {given}: set DISPATCHYARD_API_KEY (or pass --key before the group, "
            "`dispatchyard --key rsk_live_… project list`); `dispatchyard org create` prints an "
            "org's first key"
        )
    if code == 401:
        given = "was not accepted" if sent else "was not given"
        return (
            f"The daemon token {given}: set DISPATCHYARD_DAEMON_AUTH_TOKEN (or pass --token "
            "before the group) to the shim's DISPATCHYARD_DAEMON_AUTH_TOKEN"
        )
    if code == 403 and platform:
        return (
            "The API key (DISPATCHYARD_API_KEY / --key) lacks the role, scope or project this "
            "needs: use one that has it (`dispatchyard key create --org … --name … --role "
            "admin` mints one)"
        )
    if code == 404 and path.startswith("/api/org/") and message == "Organization not found":
        return (
            "The org (DISPATCHYARD_ORG / --org) is not the API key's: set DISPATCHYARD_ORG to "
            "the orgId `org create` printed with that key"
        )
    return None


def api_message(raw: bytes, reason: str) -> str:
    """The envelope's message: `{"error": …}` (platform) or `{"detail": …}` (daemon)."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:500] or reason
    if not isinstance(body, dict):
        return str(body)
    message = body.get("error", body.get("detail", body))
    if isinstance(message, dict):
        inner = message.get("message") or message.get("error") or message.get("detail")
        extra = {k: v for k, v in message.items() if k not in ("message", "error", "detail")}
        message = f"{inner} {json.dumps(extra)}" if inner and extra else inner or message
    if isinstance(message, list):  # validation errors: [{"loc": [...], "msg": ...}, ...]
        parts = []
        for item in message:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                parts.append(f"{loc}: {item['msg']}" if loc else str(item["msg"]))
            else:
                parts.append(str(item))
        message = "; ".join(parts)
    return message if isinstance(message, str) else json.dumps(message)
