"""The platform group under /api: orgs, keys, workers (daemon hosts), sessions, mutations."""

from flask import Blueprint

from api_shim.errors import answers_refusals

blueprint = Blueprint("platform", __name__)

# How the platform answers what state/ refuses (`{"error": message, **fields}`).
answers_refusals(blueprint)

from api_shim.platform import (  # noqa: E402, F401
    heartbeats,
    hosts,
    mutations,
    orgs,
    session_list,
    sessions,
)
