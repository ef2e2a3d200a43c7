"""The platform group under /api: orgs, keys, workers, sessions, mutations."""

from flask import Blueprint

blueprint = Blueprint("platform", __name__)

from api_shim.platform import heartbeats, mutations, orgs, sessions, workers  # noqa: E402, F401
