"""The daemon group at the root: health, jobs, and (later) the mesh."""

from flask import Blueprint

blueprint = Blueprint("daemon", __name__)

from api_shim.daemon import health  # noqa: E402, F401  (routes register)
