"""A fix for kombu 5.7.0's Redis transport, applied when the worker's Celery app loads.

When the broker connection drops while a BRPOP is in flight, `Channel.close()` reads that
BRPOP's reply first and lets the connection error out, leaving the channel half closed; Celery
then closes it again and dies on `AttributeError: 'NoneType' object has no attribute
'hostname'`. The worker exits instead of reconnecting (seen killing Redis, and in Sentinel
failovers). Reading the reply of a dead connection can only fail, so the close swallows the
connection error and carries on, as it already does for an empty reply.

The close that reads the in-flight reply came with kombu 5.3 (celery/kombu#1733) and is still
there in 5.7. The fix is applied only to the minor versions checked to have it; any other
version runs unpatched, with a warning, until it is checked (the Sentinel failover test fails
if the crash comes back). pyproject.toml keeps kombu within the checked range.
"""

from __future__ import annotations

import contextlib
import logging
from queue import Empty
from typing import Any, Protocol, cast

import kombu
from kombu.transport import redis as redis_transport

log = logging.getLogger(__name__)

CHECKED_MINOR_VERSIONS = ("5.3", "5.4", "5.5", "5.6", "5.7")
_original_close = redis_transport.Channel.close


class _Polling(Protocol):
    """The private parts of kombu's Redis Channel the fix reads (not in celery-types' stub)."""

    _in_poll: bool
    connection_errors: tuple[type[BaseException], ...]

    def _brpop_read(self) -> object: ...


def _close(self: redis_transport.Channel) -> None:
    polling = cast(_Polling, self)
    if polling._in_poll:
        swallowed: tuple[type[BaseException], ...] = (Empty, *polling.connection_errors)
        with contextlib.suppress(*swallowed):
            polling._brpop_read()
    _original_close(self)


def _kombu_version() -> str:
    # kombu sets `__version__`; celery-types' stub of the module does not declare it.
    version: str = vars(kombu)["__version__"]
    return version


def apply() -> bool:
    """Patch `Channel.close` when the installed kombu is one of the checked versions; whether
    it did."""
    minor = ".".join(_kombu_version().split(".")[:2])
    if minor not in CHECKED_MINOR_VERSIONS:
        log.warning(
            "kombu %s is not one of the versions workers/broker_fixes.py was checked against "
            "(%s): its Redis Channel.close is used as is",
            _kombu_version(),
            ", ".join(CHECKED_MINOR_VERSIONS),
        )
        return False
    # The fix itself: a method replaced on kombu's class, which a type checker refuses.
    patched: Any = redis_transport.Channel
    patched.close = _close
    return True
