"""The one way `state/` says no: a change or a read the stored state refuses.

Every store function and script wrapper raises one of these; nothing returns an error code.
Lua scripts refuse with `refuse(kind, message, fields)` (lib_common.lua), an error reply that
`raise_refusal` turns into the class of that kind, so a script and a Python function fail
alike. Each route group maps the classes to HTTP statuses once (api_shim/errors.py); tasks
catch the kind they expect.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

# The prefix of a script's refusal (an error reply); anything else from a script is a bug.
REFUSAL_PREFIX = "REFUSED "


class StateError(Exception):
    """A refusal. `message` is for people (the platform envelope's text); `detail` is the
    daemon group's body (the message unless the wire wants an object); `fields` are
    machine-readable extras (the platform envelope puts them beside `error`), `state` the
    record's current state when it matters."""

    kind: ClassVar[str] = "error"

    def __init__(
        self,
        message: str,
        *,
        state: str | None = None,
        detail: Any = None,
        **fields: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.state = state
        self.detail = message if detail is None else detail
        self.fields = fields


class NotFound(StateError):
    """No such record (or another tenant's, which is the same to the caller)."""

    kind = "not_found"


class Forbidden(StateError):
    """The record exists, but the caller may not change it (another host's session, a circle
    boundary)."""

    kind = "forbidden"


class Conflict(StateError):
    """The record's current state does not allow the change (an illegal move, a name taken,
    a duplicate fire)."""

    kind = "conflict"


class Gone(StateError):
    """It existed and is closed for good (an ask already answered)."""

    kind = "gone"


class QuotaExceeded(StateError):
    """A store limit would be passed (the attachment store's cap, a full disk)."""

    kind = "quota"


class TooLarge(QuotaExceeded):
    """One item alone is over its limit (a file over the per-file size)."""

    kind = "too_large"


class Unauthorized(StateError):
    """The credential the caller acts with was revoked (checked inside the same script)."""

    kind = "unauthorized"


class Invalid(StateError, ValueError):
    """Input the rules cannot use (a cron that never fires, a timezone that does not exist)."""

    kind = "invalid"


class Unavailable(StateError):
    """What it needs is not there right now (a peer with no live connection); retry later."""

    kind = "unavailable"


KINDS: dict[str, type[StateError]] = {
    cls.kind: cls
    for cls in (
        NotFound,
        Forbidden,
        Conflict,
        Gone,
        QuotaExceeded,
        TooLarge,
        Unauthorized,
        Invalid,
        Unavailable,
    )
}


def raise_refusal(reply: str) -> None:
    """Raise the StateError a script's refusal names (`REFUSED {"kind", "message", ...}`);
    return (raising nothing) for any other error text, which the caller re-raises."""
    if not reply.startswith(REFUSAL_PREFIX):
        return
    body = json.loads(reply[len(REFUSAL_PREFIX) :])
    kind = body.pop("kind")
    message = body.pop("message")
    state = body.pop("state", None)
    raise KINDS[kind](message, state=state, **body)
