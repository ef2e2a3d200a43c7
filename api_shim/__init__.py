"""The HTTP shim: validate, read state, make atomic state changes, enqueue tasks. Nothing slow."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import redis
from flask import Flask
from flask.json.provider import DefaultJSONProvider

from dispatchyard.clients import redis_client
from dispatchyard.settings import Settings, get_settings
from dispatchyard.state import clock, connections, hops


@dataclass
class Context:
    settings: Settings
    redis: redis.Redis
    cache: dict[str, Any] = field(default_factory=dict)  # per-process lookups that never change


def create_app(settings: Settings | None = None, r: redis.Redis | None = None) -> Flask:
    from api_shim import conformance, errors, metrics  # metrics: also puts GET /metrics on daemon
    from api_shim.daemon import blueprint as daemon_bp
    from api_shim.daemon import ws
    from api_shim.platform import blueprint as platform_bp
    from api_shim.tokens import keyring

    settings = settings or get_settings()
    keyring(settings)  # fail at start, with a clear message, not on the first request
    clock.configure(settings.clock_rate, settings.clock_anchor_ms)
    connections.configure(int(settings.peer_connection_ttl_s * 1000))
    hops.configure(settings.hop_stamps)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    assert isinstance(app.json, DefaultJSONProvider)  # Flask's own, unless an app replaces it
    app.json.sort_keys = False
    app.json.compact = True
    app.extensions["dispatchyard"] = Context(
        settings, r or redis_client(settings, max_connections=64)
    )
    errors.register(app)
    metrics.register(app)
    if settings.check_responses:  # tests only: every answer against its declaration
        conformance.register(app)
    app.register_blueprint(platform_bp, url_prefix="/api")
    app.register_blueprint(daemon_bp)
    app.register_blueprint(ws.blueprint)
    return app
