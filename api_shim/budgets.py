"""Fair share: request budgets per org, per host and per sending peer, counted in Redis so every
shim process spends the same budget, answered 429 with `Retry-After` in the group's envelope.

- **org**: every platform route (/api), charged by `auth` right after the credential is
  resolved (so a request without a valid credential is a 401 that costs no budget, and the
  org is the one the key or token belongs to);
- **host**: `heartbeat` and `poll` (marked `@budgets.per_host`) are charged to the host, apart
  from its org, so an org flooding other routes never starves its hosts' heartbeats;
- **peer**: the daemon group's asks and notifications (`@budgets.per_peer`), by `from_peer`.

The counting is the `limits` library's sliding-window counter (one Lua script a request, on
the shim's own Redis connection pool: Sentinel-aware, the same timeouts and retries). See
docs/decisions.md, "Request budgets".

A route that can be charged must declare its 429 (`429: budgets.OverBudget` under /api,
`429: budgets.PeerOverBudget` for the daemon group): charging a route that did not is a
programming error (`declare.Undeclared`), as validating an undeclared body is.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, cast

import redis
from flask import current_app, g, request
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from api_shim import declare
from api_shim.answers import Answer
from api_shim.context import ctx
from api_shim.errors import ApiError
from dispatchyard.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])
Kind = Literal["org", "host", "peer"]
# limits' keys read `budget:LIMITER/<kind>/<ids>/<burst>/<window s>/second`.
KEY_PREFIX = "budget"
HOST_ROUTE = "__budget_per_host__"
PEER_ROUTE = "__budget_per_peer__"
# The budget of the senders that name no `from_peer` (/questions/ask-blocking, /query).
NO_SENDER = "-"
# Refused callers a process remembers before it forgets those whose wait is over.
REFUSED_KEPT = 10_000


class OverBudget(Answer):
    """A platform 429: the org's (or, for heartbeat and poll, the host's) budget is spent;
    `Retry-After` says in how many seconds to come back."""

    error: str
    budget: Literal["org", "host"]


class PeerOverBudget(Answer):
    """A daemon-group 429: the sending peer's budget is spent; `Retry-After` says in how many
    seconds to come back."""

    detail: str


def window(rate_per_s: float, burst: int) -> RateLimitItem | None:
    """`burst` requests per sliding window of `burst / rate` seconds (a whole number, at least
    1); None when the rate is 0 (no budget)."""
    if rate_per_s <= 0:
        return None
    return RateLimitItemPerSecond(burst, max(1, math.ceil(burst / rate_per_s)))


@dataclass
class Budgets:
    """This process's limiter: the windows from the settings, the counts in Redis.

    A caller refused here is refused by this process, without asking Redis, until the moment
    its `Retry-After` named: a flood's refusals cost no round trip (what the flood may spend
    is still decided in Redis alone, so every process together lets through one budget)."""

    limiter: SlidingWindowCounterRateLimiter
    windows: dict[Kind, RateLimitItem | None]
    # (kind, who) -> time.monotonic() until which that caller was told to stay away.
    refused: dict[tuple[str, ...], float] = field(default_factory=dict)

    @classmethod
    def build(cls, settings: Settings, pool: redis.ConnectionPool) -> Budgets:
        # limits' own Redis storage, handed the shim's pool: no second URL, no second pool.
        storage = RedisStorage("redis://", connection_pool=pool, key_prefix=KEY_PREFIX)
        windows: dict[Kind, RateLimitItem | None] = {
            "org": window(settings.api_rate_per_s, settings.api_burst),
            "host": window(settings.host_rate_per_s, settings.host_burst),
            "peer": window(settings.peer_rate_per_s, settings.peer_burst),
        }
        return cls(SlidingWindowCounterRateLimiter(storage), windows)

    def spend(self, kind: Kind, *who: str) -> int:
        """Spend one request of `who`'s budget: 0 if it had one left, else the seconds until
        it has (what `Retry-After` says)."""
        item = self.windows[kind]
        if item is None:
            return 0
        caller, now = (kind, *who), time.monotonic()
        until = self.refused.get(caller)
        if until is not None and now < until:
            return max(1, math.ceil(until - now))
        try:
            if self.limiter.hit(item, kind, *who):
                return 0
        except redis.exceptions.OutOfMemoryError:
            # A full Redis refuses the counter's write: the request goes on to its route, so
            # reads keep working and a write is refused there (507), not here for a budget.
            return 0
        reset, _ = self.limiter.get_window_stats(item, kind, *who)
        retry = max(1, math.ceil(reset - time.time()))
        if len(self.refused) >= REFUSED_KEPT:  # forget the waits that are over (or all)
            waiting = {c: t for c, t in list(self.refused.items()) if t > now}
            self.refused = waiting if len(waiting) < REFUSED_KEPT // 2 else {}
        self.refused[caller] = now + retry
        return retry


def _budgets() -> Budgets:
    cache = ctx().cache
    found = cache.get("budgets")
    if found is None:
        found = cache["budgets"] = Budgets.build(ctx().settings, ctx().redis.connection_pool)
    return cast(Budgets, found)


def _view() -> Callable[..., Any]:
    return current_app.view_functions[request.endpoint or ""]


def _declared_429(kind: Kind) -> None:
    declared = declare.current()
    if declared is None or 429 not in declared.responses:
        raise declare.Undeclared(
            f"{request.endpoint} spends the {kind} budget but does not declare its 429"
        )


def _describe(kind: Kind) -> str:
    item = _budgets().windows[kind]
    assert item is not None
    return f"{item.amount} requests per {item.multiples} s"


def charge_caller(org_id: str, worker_id: str | None) -> None:
    """Charge this platform request to the caller: the host's budget on heartbeat and poll
    (the token's host; for the legacy key, the host the path names), the org's otherwise.
    Once a request, however many times its route authenticates."""
    if g.get("budget_charged"):
        return
    g.budget_charged = True
    kind: Literal["org", "host"] = "host" if getattr(_view(), HOST_ROUTE, False) else "org"
    _declared_429(kind)
    if kind == "host":
        host = worker_id or (request.view_args or {}).get("worker_id", "")
        retry = _budgets().spend("host", org_id, str(host))
    else:
        retry = _budgets().spend("org", org_id)
    if retry:
        who = "from this worker" if kind == "host" else "for this org"
        message = f"Too many requests {who} ({_describe(kind)})"
        raise ApiError(429, message, headers={"Retry-After": str(retry)}, budget=kind)


def _sender() -> str:
    """The body's `from_peer` (the route validates the body itself afterwards)."""
    try:
        body = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, RecursionError):
        return NO_SENDER
    sender = body.get("from_peer") if isinstance(body, dict) else None
    return sender if isinstance(sender, str) and 0 < len(sender) <= 200 else NO_SENDER


def per_host(view: F) -> F:
    """Mark a platform route whose requests spend the host's budget instead of the org's."""
    setattr(view, HOST_ROUTE, True)
    return view


def per_peer(view: F) -> F:
    """A daemon route whose requests spend the sending peer's budget before anything else."""

    @functools.wraps(view)
    def charged(*args: Any, **kwargs: Any) -> Any:
        _declared_429("peer")
        sender = _sender()
        retry = _budgets().spend("peer", sender)
        if retry:
            shown = "senders naming no from_peer" if sender == NO_SENDER else f"peer {sender!r}"
            message = f"Too many requests from {shown} ({_describe('peer')})"
            raise ApiError(429, message, headers={"Retry-After": str(retry)})
        return view(*args, **kwargs)

    setattr(charged, PEER_ROUTE, True)
    return cast(F, charged)
