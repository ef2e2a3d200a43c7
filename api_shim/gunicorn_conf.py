"""gunicorn settings for the shim: `gunicorn -c api_shim/gunicorn_conf.py api_shim.wsgi:app ...`.

Prometheus multiprocess mode: every worker writes its metric values to files in
`PROMETHEUS_MULTIPROC_DIR` (default `DATA_DIR/prometheus`), and `/metrics` sums them, so the
counts of all workers add up whichever worker answers a scrape. The directory is emptied when
gunicorn starts (values of an earlier run must not be added in) and a worker that exits is
marked dead (its live gauges dropped; its counters stay, as Prometheus expects). One directory
per gunicorn master: give each shim on a host its own data dir or PROMETHEUS_MULTIPROC_DIR.

Set here, in the master, before any worker is forked or imports prometheus_client.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dispatchyard.settings import get_settings

MULTIPROC_DIR = Path(
    os.environ.get("PROMETHEUS_MULTIPROC_DIR") or get_settings().data_dir / "prometheus"
).resolve()
os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(MULTIPROC_DIR)


def on_starting(server: Any) -> None:
    MULTIPROC_DIR.mkdir(parents=True, exist_ok=True)
    for stale in MULTIPROC_DIR.glob("*.db"):
        stale.unlink(missing_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    from prometheus_client import multiprocess

    # prometheus-client leaves this one unannotated: (pid, path=None) -> None.
    mark_dead: Callable[[int], None] = multiprocess.mark_process_dead
    mark_dead(worker.pid)
