"""Whether a request wrote to Redis: the keys it created. The request budgets' counters are left
out (a refused request still spends its caller's budget, and a counter's window rolls over and
expires on its own), and so is a key that expired meanwhile (any test's), which is no write."""

from __future__ import annotations

from api_shim import budgets


def state_keys(r) -> set[str]:
    """Every key but the budgets' counters."""
    prefix = budgets.KEY_PREFIX + ":"
    return {k for k in r.scan_iter(count=1000) if not k.startswith(prefix)}


def created(r, before: set[str]) -> set[str]:
    """The keys made since `before` (a `state_keys` taken earlier)."""
    return state_keys(r) - before
