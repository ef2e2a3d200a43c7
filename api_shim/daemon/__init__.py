"""The daemon group at the root: health, durable jobs, traces.

When `DISPATCHYARD_DAEMON_AUTH_TOKEN` is set, every route but /health, /dashboard and
/favicon.ico needs `Authorization: Bearer <token>`. Without a token the routes answer loopback
clients only: they can start processes on this machine.
"""

import hmac
import ipaddress

from flask import Blueprint, request

from api_shim.context import settings
from api_shim.errors import ApiError, answers_refusals

blueprint = Blueprint("daemon", __name__)

# How the daemon group answers what state/ refuses (`{"detail": message or detail}`, as
# repowire does).
answers_refusals(blueprint)

OPEN_PATHS = ("/health", "/dashboard", "/favicon.ico")


def is_loopback(address: str | None) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


@blueprint.before_request
def require_daemon_token() -> None:
    if request.path in OPEN_PATHS or request.path.startswith("/dashboard/"):
        return
    configured = settings().daemon_auth_token
    if configured is None:
        if not is_loopback(request.remote_addr):
            raise ApiError(403, "daemon token not configured")
        return
    challenge = {"WWW-Authenticate": "Bearer"}
    header = request.headers.get("Authorization")
    if not header:
        raise ApiError(401, "Missing authorization header", headers=challenge)
    scheme, _, token = header.partition(" ")
    expected = configured.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise ApiError(401, "Invalid auth token", headers=challenge)


# The route modules register themselves on the blueprint.
from api_shim.daemon import (  # noqa: E402, F401
    ask_waits,
    asks,
    attachments,
    dashboard,
    health,
    jobs,
    messages,
    panes,
    peers,
    reference,
    schedules,
)
