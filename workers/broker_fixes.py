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

import logging
from queue import Empty
from typing import Any

import kombu
from kombu.transport import redis as redis_transport

log = logging.getLogger(__name__)

CHECKED_MINOR_VERSIONS = ("5.3", "5.4", "5.5", "5.6", "5.7")
_original_close = redis_transport.Channel.close


def _close(self: Any) -> None:
    if self._in_poll:
        try:
            self._brpop_read()
        except (Empty, *self.connection_errors):
            pass
    _original_close(self)


def apply() -> bool:
    """Patch `Channel.close` when the installed kombu is one of the checked versions; whether
    it did."""
    minor = ".".join(kombu.__version__.split(".")[:2])
    if minor not in CHECKED_MINOR_VERSIONS:
        log.warning(
            "kombu %s is not one of the versions workers/broker_fixes.py was checked against "
            "(%s): its Redis Channel.close is used as is",
            kombu.__version__,
            ", ".join(CHECKED_MINOR_VERSIONS),
        )
        return False
    redis_transport.Channel.close = _close  # type: ignore[method-assign]  # the fix itself
    return True
