"""Celery tasks, one module per domain. A task loads, calls state/, enqueues the next step."""
