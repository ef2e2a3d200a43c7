"""`dispatchyard`: bootstrap orgs and keys, and run the whole stack for development.

dispatchyard org create NAME --slug SLUG [--json]
dispatchyard key create --org ORG --name NAME [--role ROLE] [--scope S ...] [--json]
dispatchyard run [--no-flower] [--port PORT]   (restarts a process that exits; Ctrl-C stops all)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import redis

if TYPE_CHECKING:
    from settings import Settings

ROOT = Path(__file__).resolve().parent


def _redis(settings: Settings) -> redis.Redis:
    from settings import redis_client

    # The same client every process builds: a `sentinel://` setting works here too.
    return redis_client(settings)


# ---- org / key bootstrap -------------------------------------------------------------------


def cmd_org_create(args: argparse.Namespace) -> int:
    from settings import get_settings
    from state import apikeys, clock, orgs

    if not re.match(r"^[a-z0-9][a-z0-9-]{0,62}$", args.slug):
        print("error: --slug must match ^[a-z0-9][a-z0-9-]{0,62}$", file=sys.stderr)
        return 2
    r = _redis(get_settings())
    org = orgs.create_org(r, args.name, args.slug, clock.now_ms())
    if org is None:
        print(f"error: an org with slug {args.slug!r} already exists", file=sys.stderr)
        return 1
    _, secret = apikeys.create_key(
        r,
        org["id"],
        name="owner (bootstrap)",
        role="owner",
        projects="all",
        scopes=["*"],
        now_ms=clock.now_ms(),
    )
    if args.json:
        print(json.dumps({"orgId": org["id"], "slug": org["slug"], "key": secret}))
    else:
        print(f"org {org['id']} ({org['slug']}) created")
        print(f"owner key (shown once, store it now): {secret}")
    return 0


def cmd_key_create(args: argparse.Namespace) -> int:
    from settings import get_settings
    from state import apikeys, clock, orgs

    r = _redis(get_settings())
    org_id = orgs.resolve_org(r, args.org)
    if org_id is None:
        print(f"error: no org {args.org!r}", file=sys.stderr)
        return 1
    record, secret = apikeys.create_key(
        r,
        org_id,
        name=args.name,
        role=args.role,
        projects="all",
        scopes=args.scope or [],
        now_ms=clock.now_ms(),
    )
    if args.json:
        print(json.dumps({"id": record["id"], "orgId": org_id, "role": args.role, "key": secret}))
    else:
        print(f"key {record['id']} ({args.role}) for {org_id}: {secret}")
    return 0


# ---- a local redis-server ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_argv(
    port: int, data_dir: Path, *, conf: Path | None = None, persist: bool = True
) -> list[str]:
    """The redis-server command for 127.0.0.1:port with its files in data_dir."""
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = ["redis-server"]
    if conf is not None:
        argv.append(str(conf))
    argv += ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir.resolve())]
    argv += ["--daemonize", "no", "--logfile", str((data_dir / "redis.log").resolve())]
    if not persist:
        argv += ["--save", "", "--appendonly", "no"]
    return argv


def start_redis(
    port: int, data_dir: Path, *, conf: Path | None = None, persist: bool = True
) -> subprocess.Popen:
    """Start a redis-server on 127.0.0.1:port with its files in data_dir; waits until it answers."""
    argv = redis_argv(port, data_dir, conf=conf, persist=persist)
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            client.ping()
            return proc
        except redis.exceptions.ConnectionError:
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {data_dir / 'redis.log'}") from None
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("redis-server did not answer within 15 s")


# ---- run: the whole stack --------------------------------------------------------------------


def procfile() -> dict[str, str]:
    out = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, command = line.partition(":")
            out[name.strip()] = command.strip()
    return out


# A child that exits is started again after this delay, doubled on each quick exit up to the
# maximum; one that ran for STABLE_AFTER_S starts from the shortest delay again.
RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0
STABLE_AFTER_S = 30.0


@dataclass
class Child:
    """One supervised process: how to start it, and when it is due to start again."""

    name: str
    launch: Callable[[], subprocess.Popen]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = RESTART_DELAY_S
    restart_at: float | None = None

    def start(self) -> None:
        self.proc = self.launch()
        self.started_at = time.monotonic()
        self.restart_at = None

    def check(self, now: float) -> None:
        """Restart it when due; note (one line) that it exited and when it starts again."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start()
            return
        code = self.proc.poll() if self.proc is not None else None
        if code is None:
            return
        if now - self.started_at >= STABLE_AFTER_S:
            self.delay = RESTART_DELAY_S
        print(
            f"{self.name} exited with {code}; restarting it in {self.delay:g} s",
            file=sys.stderr,
            flush=True,
        )
        self.restart_at = now + self.delay
        self.delay = min(self.delay * 2, RESTART_DELAY_MAX_S)


def cmd_run(args: argparse.Namespace) -> int:
    from settings import get_settings, sentinel_url

    settings = get_settings()
    children: dict[str, Child] = {}
    try:
        _redis(settings).ping()
        print(f"redis: using {settings.redis_url}")
    except redis.exceptions.ConnectionError:
        url = urlparse(settings.redis_url)
        local = url.hostname in ("127.0.0.1", "localhost", "::1")
        if not local or sentinel_url(settings.redis_url) is not None:
            print(f"error: no Redis answers at {settings.redis_url}", file=sys.stderr)
            return 1
        data = settings.data_dir / "redis"
        port = url.port or 6379
        # Started and waited for once; a restart reloads the same AOF in the same data dir.
        redis_cmd = redis_argv(port, data, conf=ROOT / "redis.conf")
        children["redis"] = Child(
            "redis",
            lambda: subprocess.Popen(
                redis_cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ),
            proc=start_redis(port, data, conf=ROOT / "redis.conf"),
            started_at=time.monotonic(),
        )
        print(f"redis: started a project-local redis-server on port {port}, data in {data}")

    # The children (gunicorn, celery) live in the same venv as this command.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PORT": str(args.port), "PATH": path}
    for name, command in procfile().items():
        if name == "flower" and args.no_flower:
            continue
        argv = ["sh", "-c", f"exec {command}"]
        children[name] = Child(
            name,
            # Own session: Ctrl-C reaches this supervisor, which stops each child in order.
            lambda argv=argv: subprocess.Popen(argv, env=env, cwd=ROOT, start_new_session=True),
        )
        children[name].start()
    base = f"http://127.0.0.1:{args.port}"
    print(
        f"\ndispatchyard is starting:\n"
        f"  API        {base}/api  and  {base}/jobs\n  health     {base}/health\n"
        + ("" if args.no_flower else "  flower     http://127.0.0.1:5555\n")
        + "\nFirst API key (shown once):\n"
        f"  {shlex.join([sys.argv[0], 'org', 'create', 'Acme', '--slug', 'acme'])}\n"
        "A process that exits is restarted; Ctrl-C stops everything.\n",
        flush=True,
    )
    stopping = False

    def _stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stopping:
        # One process dying (beat through a Redis outage, a crashed worker) must not take the
        # others down: it is restarted with backoff while the rest keep running.
        now = time.monotonic()
        for child in children.values():
            if stopping:
                break
            child.check(now)
        time.sleep(0.2)
    _terminate({c.name: c.proc for c in children.values() if c.proc is not None})
    return 0


def _terminate(children: dict[str, subprocess.Popen]) -> None:
    # Redis last, so the workers can ack what they were doing.
    order = [n for n in children if n != "redis"] + (["redis"] if "redis" in children else [])
    for name in order:
        proc = children[name]
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM) if name != "redis" else proc.terminate()
    deadline = time.monotonic() + 15
    for name in order:
        proc = children[name]
        try:
            proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop; killing it", file=sys.stderr)
            proc.kill()


# ---- argument parsing ------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="dispatchyard",
        description="dispatchyard control plane: bootstrap and run. Settings come from "
        "DISPATCHYARD_* environment variables (DISPATCHYARD_REDIS_URL first).",
    )
    sub = p.add_subparsers(dest="command", required=True)

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="org_cmd", required=True)
    oc = org.add_parser("create", help="create an org and print its first owner key (once)")
    oc.add_argument("name")
    oc.add_argument("--slug", required=True, help="^[a-z0-9][a-z0-9-]{0,62}$")
    oc.add_argument("--json", action="store_true", help='print {"orgId", "slug", "key"}')
    oc.set_defaults(func=cmd_org_create)

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_cmd", required=True)
    kc = key.add_parser("create", help="mint an API key for an org (shown once)")
    kc.add_argument("--org", required=True, help="org id or slug")
    kc.add_argument("--name", required=True)
    kc.add_argument("--role", default="member", choices=["auditor", "member", "admin", "owner"])
    kc.add_argument("--scope", action="append", help="repeatable, e.g. worker:register")
    kc.add_argument("--json", action="store_true")
    kc.set_defaults(func=cmd_key_create)

    run = sub.add_parser(
        "run", help="start redis (if none answers), the shim, a worker, beat and flower"
    )
    run.add_argument("--port", type=int, default=8080, help="shim port (default 8080)")
    run.add_argument("--no-flower", action="store_true")
    run.set_defaults(func=cmd_run)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
