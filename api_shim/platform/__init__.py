"""The platform group under /api: orgs, keys, workers (daemon hosts), sessions, mutations."""

from flask import Blueprint

blueprint = Blueprint("platform", __name__)

from api_shim.platform import heartbeats, hosts, mutations, orgs, sessions  # noqa: E402, F401
