"""Everything dispatchyard stores, and every rule about how it changes.

This package is the only code that knows Redis key names (`keys.py`) and holds every multi-key
change as one Lua script (`scripts/*.lua`). It imports neither Flask, Celery nor the settings:
callers hand it a Redis client and the values it needs.
"""
