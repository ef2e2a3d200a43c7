"""Access to the per-app settings and Redis client from inside a request."""

from __future__ import annotations

import redis
from flask import current_app

from dispatchyard.settings import Settings


def ctx():
    return current_app.extensions["dispatchyard"]


def r() -> redis.Redis:
    return ctx().redis


def settings() -> Settings:
    return ctx().settings
