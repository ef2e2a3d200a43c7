"""The platform group under /api: orgs, keys, workers (daemon hosts), sessions, mutations."""

from flask import Blueprint

from api_shim.errors import answers_refusals
from dispatchyard.state import errors

blueprint = Blueprint("platform", __name__)

# How the platform answers what state/ refuses (`{"error": message, **fields}`).
answers_refusals(
    blueprint,
    {
        errors.NotFound: 404,
        errors.Forbidden: 403,
        errors.Conflict: 409,
        errors.Gone: 410,
        errors.TooLarge: 413,
        errors.QuotaExceeded: 507,
        errors.Unauthorized: 401,
        errors.Invalid: 400,
        errors.Unavailable: 503,
        errors.StateError: 400,
    },
)

from api_shim.platform import (  # noqa: E402, F401
    heartbeats,
    hosts,
    mutations,
    orgs,
    session_list,
    sessions,
)
