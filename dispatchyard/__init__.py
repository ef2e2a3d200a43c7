"""dispatchyard: the control plane for fleets of AI coding agents.

The core lives here under one name: `state/` (every Redis key and atomic change), `settings`
(the one `Settings` object) and `cli/` (the `dispatchyard` command). The Celery runtime
(`workers/`, `tasks/`, `beat_schedule.py`) and the HTTP shim (`api_shim/`) sit beside it.
"""
