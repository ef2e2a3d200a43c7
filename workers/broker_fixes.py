"""A fix for kombu 5.7.0's Redis transport, applied when the worker's Celery app loads.

When the broker connection drops while a BRPOP is in flight, `Channel.close()` reads that
BRPOP's reply first and lets the connection error out, leaving the channel half closed; Celery
then closes it again and dies on `AttributeError: 'NoneType' object has no attribute
'hostname'`. The worker exits instead of reconnecting (seen killing Redis, and in Sentinel
failovers). Reading the reply of a dead connection can only fail, so the close swallows the
connection error and carries on, as it already does for an empty reply.
"""

from __future__ import annotations

from queue import Empty
from typing import Any

from kombu.transport import redis as redis_transport

_original_close = redis_transport.Channel.close


def _close(self: Any) -> None:
    if self._in_poll:
        try:
            self._brpop_read()
        except (Empty, *self.connection_errors):
            pass
    _original_close(self)


def apply() -> None:
    redis_transport.Channel.close = _close
