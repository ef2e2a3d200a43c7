"""Celery runtime: `celery -A workers worker|beat|flower` finds `workers.app`."""

from workers.app import app

__all__ = ["app"]
