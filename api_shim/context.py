"""Access to the per-app settings and Redis client from inside a request."""

from __future__ import annotations

from typing import TYPE_CHECKING

import redis
from flask import current_app

from dispatchyard.settings import Settings

if TYPE_CHECKING:
    from api_shim import Context


def ctx() -> Context:
    context: Context = current_app.extensions["dispatchyard"]
    return context


def r() -> redis.Redis:
    return ctx().redis


def settings() -> Settings:
    return ctx().settings
