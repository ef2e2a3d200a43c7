"""`dispatchyard run`: the whole stack for development (what `make run` calls)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import click
import redis

from dispatchyard.cli.devstack import (
    PROBE_MARK,
    REDIS_CONF,
    ROOT,
    Child,
    Printer,
    port_taken,
    procfile,
    redis_argv,
    spawn_redis,
    start_redis,
    terminate,
)

if TYPE_CHECKING:
    from dispatchyard.settings import Settings

# Flower's port in the Procfile.
FLOWER_PORT = 5555
# The banner waits this long for a worker and beat to show in /health, then says what is late.
BANNER_WAIT_S = 60.0


def _health(url: str) -> dict[str, Any] | None:
    """/health's body when it answers 200, else None."""
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            body: dict[str, Any] = json.loads(response.read())
            return body if response.status == 200 else None
    except (OSError, ValueError):
        return None


def _not_up(body: dict[str, Any] | None) -> list[str]:
    """What /health says is not answering yet: the shim itself, a worker node, beat."""
    if body is None:
        return ["the shim"]
    missing = []
    if not (body.get("workers") or {}).get("online"):
        missing.append("a worker")
    if not (body.get("beat") or {}).get("alive"):
        missing.append("beat")
    return missing


def banner(port: int, flower: bool) -> str:
    base = f"http://127.0.0.1:{port}"
    me = Path(sys.argv[0])
    with contextlib.suppress(ValueError):
        me = me.resolve().relative_to(Path.cwd())
    first_key = shlex.join([str(me), "org", "create", "Acme", "--slug", "acme"])
    return (
        "\ndispatchyard is up:\n"
        f"  API        {base}/api  and  {base}/jobs\n"
        f"  dashboard  {base}/dashboard\n"
        f"  health     {base}/health\n"
        + (f"  flower     http://127.0.0.1:{FLOWER_PORT}\n" if flower else "")
        + "\nFirst API key: run\n"
        f"  {first_key}\n"
        "(it prints the new org's owner key, shown once)\n"
        "A process that exits is restarted; Ctrl-C stops everything.\n"
    )


@click.command("run")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8080,
    show_default=True,
    envvar="PORT",
    help="The shim's port (env PORT; `make run PORT=…`).",
)
@click.option("--no-flower", is_flag=True, help="Do not start Flower.")
@click.option(
    "--verbose",
    "-v",
    is_flag=True,
    help="Also show the routine ticks (beat sending the scheduler tick, the liveness tick and "
    "the sweeps, and the worker running them), hidden by default.",
)
def run(port: int, no_flower: bool, verbose: bool) -> None:
    """Start Redis (if none answers) and the Procfile's processes: the shim, a worker, beat and
    Flower, each line prefixed with its process's name. A process that exits is started again
    with backoff while the others keep running; Ctrl-C stops them all. The URLs and the
    first-key command are printed once /health answers."""
    sys.exit(cmd_run(port, no_flower, verbose))


def routine_tasks(settings: Settings) -> set[str]:
    """The static periodic entries' tasks: the half-second scheduler tick, beat's liveness
    tick, the sweeps."""
    import beat_schedule

    return {entry["task"] for entry in beat_schedule.entries(settings).values()}


def cmd_run(port: int, no_flower: bool, verbose: bool = False) -> int:
    from dispatchyard.clients import redis_client
    from dispatchyard.redis_urls import sentinel_url, shown_url
    from dispatchyard.settings import get_settings

    settings = get_settings()
    if port_taken(port):
        # Before anything starts: gunicorn would be restarted over and over on a taken port.
        print(
            f"error: port {port} is already in use; start on another one with "
            f"`make run PORT=<port>` or `dispatchyard run --port <port>`",
            file=sys.stderr,
        )
        return 1
    if not no_flower and port_taken(FLOWER_PORT):
        print(f"flower: port {FLOWER_PORT} is in use; not starting Flower", file=sys.stderr)
        no_flower = True
    commands = {n: c for n, c in procfile().items() if not (n == "flower" and no_flower)}
    printer = Printer(["redis", *commands], routine=() if verbose else routine_tasks(settings))
    children: dict[str, Child] = {}
    try:
        redis_client(settings).ping()
        printer.system(f"redis: using {shown_url(settings.redis_url)}")
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        url = urlparse(settings.redis_url)
        local = url.hostname in ("127.0.0.1", "localhost", "::1")
        if not local or sentinel_url(settings.redis_url) is not None:
            print(f"error: no Redis answers at {shown_url(settings.redis_url)}", file=sys.stderr)
            return 1
        data = settings.data_dir / "redis"
        redis_port = url.port or 6379
        # Started and waited for once; a restart reloads the same AOF in the same data dir.
        redis_cmd = redis_argv(redis_port, data, conf=REDIS_CONF)
        children["redis"] = Child(
            "redis",
            functools.partial(spawn_redis, redis_cmd),
            proc=start_redis(redis_port, data, conf=REDIS_CONF),
            started_at=time.monotonic(),
            printer=printer,
        )
        printer.system(
            f"redis: started a project-local redis-server on port {redis_port}, "
            f"data in {data} (its log: {data / 'redis.log'})"
        )

    # The children (gunicorn, celery) live in the same venv as this command; their output
    # comes through a pipe, so Python must not hold it in a buffer.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PORT": str(port), "PATH": path, "PYTHONUNBUFFERED": "1"}
    for name, command in commands.items():
        argv = ["sh", "-c", f"exec {command}"]
        children[name] = Child(name, functools.partial(_spawn, argv, env), printer=printer)
        children[name].start()
    health = f"http://127.0.0.1:{port}/health"
    probe = f"{health}?{PROBE_MARK}"
    printer.system(
        f"started {', '.join(commands)}; the URLs follow once {health} answers "
        "(routine ticks hidden; --verbose shows them). Ctrl-C stops everything."
    )
    stopping = False

    def _stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    announced = False
    next_probe = 0.0
    started = time.monotonic()
    while not stopping:
        # One process dying (beat through a Redis outage, a crashed worker) must not take the
        # others down: it is restarted with backoff while the rest keep running.
        now = time.monotonic()
        for child in children.values():
            if stopping:
                break
            child.check(now)
        if not announced and now >= next_probe and not stopping:
            # Last, once everything answers: /health 200 with a worker node and beat alive.
            next_probe = now + 0.5
            missing = _not_up(_health(probe))
            late = now - started >= BANNER_WAIT_S and missing != ["the shim"]
            if not missing or late:
                announced = True
                text = banner(port, "flower" in commands)
                if missing:
                    text += f"(still not answering after {BANNER_WAIT_S:g} s: "
                    text += f"{', '.join(missing)})\n"
                printer.system(text)
        time.sleep(0.2)
    printer.system("stopping")
    terminate({c.name: c.proc for c in children.values() if c.proc is not None})
    return 0


def _spawn(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start one child; in its own session, so Ctrl-C reaches this supervisor, which stops
    each child in order."""
    return subprocess.Popen(
        argv,
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
