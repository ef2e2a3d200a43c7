"""The one configuration object every dispatchyard process reads.

Values come from ``DISPATCHYARD_*`` environment variables and an optional ``.env`` file.
Nothing else in the project reads the environment.
"""

from __future__ import annotations

import functools
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    import redis
    from redis.sentinel import SentinelConnectionPool

DEFAULT_BACKENDS: dict[str, dict[str, Any]] = {
    # `{prompt}`, `{session_id}` and `{path}` are filled per fire; argv lists, never a shell string.
    "claude-code": {
        "command": ["claude", "-p", "{prompt}", "--output-format", "json"],
        "resume_command": [
            "claude",
            "-p",
            "{prompt}",
            "--output-format",
            "json",
            "--resume",
            "{session_id}",
        ],
        "session_id_from": {"json_field": "session_id"},
        "result_from": {"json_field": "result"},
    },
    "codex": {
        "command": ["codex", "exec", "--json", "{prompt}"],
        "resume_command": ["codex", "exec", "--json", "resume", "{session_id}", "{prompt}"],
        "session_id_from": {"json_field": "thread_id"},
        "result_from": {"json_field": "text"},
    },
    "gemini": {
        "command": ["gemini", "-p", "{prompt}", "--output-format", "json"],
        "resume_command": [
            "gemini",
            "-p",
            "{prompt}",
            "--output-format",
            "json",
            "--resume",
            "{session_id}",
        ],
        "session_id_from": {"json_field": "session_id"},
        "result_from": {"json_field": "response"},
    },
    "opencode": {
        "command": ["opencode", "run", "--format", "json", "{prompt}"],
        "resume_command": [
            "opencode",
            "run",
            "--format",
            "json",
            "--session",
            "{session_id}",
            "{prompt}",
        ],
        "session_id_from": {"json_field": "sessionID"},
        "result_from": {"json_field": "text"},
    },
    "shell": {
        "command": ["sh", "-c", "{prompt}"],
        "resume_command": None,
        "session_id_from": None,
        "result_from": None,
    },
}


def _default_backends() -> dict[str, dict[str, Any] | None]:
    return dict(DEFAULT_BACKENDS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPATCHYARD_", env_file=".env", extra="ignore", frozen=True
    )

    redis_url: str = "redis://127.0.0.1:6399/0"
    dev_mode: bool = False
    data_dir: Path = Path("./var")

    # Platform credentials
    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    jwt_private_key: SecretStr | None = None  # PEM, for RS256/ES256
    jwt_public_key: str | None = None
    jwt_issuer: str = "dispatchyard"
    jwt_ttl_seconds: int = Field(default=3600, ge=60)
    jwt_leeway_seconds: int = 60
    worker_api_key: SecretStr | None = None
    default_org: str | None = None  # org id or slug the legacy worker key acts for
    platform_url: str = "http://127.0.0.1:8080"

    # Daemon group
    daemon_auth_token: SecretStr | None = None
    # The tmux server the pane routes talk to (`tmux -L <name>`); None: the user's default
    # server. Tests point it at a private server so they never touch the user's panes.
    tmux_socket: str | None = None
    # The base URL a pane's ws-hook dials to reach this daemon; None: the URL the link or
    # rehook request came in on (set it when that URL is a proxy the hook cannot use).
    pane_hook_url: str | None = None

    # Workers and the session queue
    heartbeat_interval_ms: int = 30_000
    poll_interval_ms: int = 5_000
    poll_batch_max: int = 5
    worker_offline_after_s: float = 180.0

    # Session health thresholds
    health_long_running_s: float = 45 * 60
    health_stale_heartbeat_s: float = 90.0
    health_claim_stuck_s: float = 5 * 60
    health_tool_loop_s: float = 10 * 60
    session_list_limit: int = 500

    # Mutations
    mutation_redeliver_after_s: float = 120.0
    mutation_max_deliveries: int = 5

    # Sweeps
    sweep_interval_s: float = 10.0

    # Jobs
    job_lease_s: float = 30.0
    job_kill_grace_s: float = 5.0
    template_tick_s: float = 0.5
    beat_lock_timeout_s: int = 30  # a second beat takes over this long after the leader died
    # JSON; entries given here replace the shipped ones of the same name (null removes one).
    backends: dict[str, dict[str, Any] | None] = Field(default_factory=_default_backends)
    machine: str | None = None  # this host's name for `fires.<machine>`; default: hostname

    # Tests only: time runs this many times faster from the anchor (every process alike).
    clock_rate: float = Field(default=1.0, gt=0)
    clock_anchor_ms: int = 0

    # Limits
    max_body_bytes: int = 1_048_576
    attachment_max_bytes: int = 10 * 1_048_576
    attachment_total_bytes: int = 200 * 1_048_576
    attachment_ttl_s: float = Field(default=24 * 3600, gt=0)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        sentinel_url(value)  # a malformed sentinel:// setting fails at start, not on first use
        return value

    @field_validator("backends")
    @classmethod
    def _merge_backends(cls, value: dict[str, Any]) -> dict[str, Any]:
        merged = {**DEFAULT_BACKENDS, **value}
        for name, spec in list(merged.items()):
            if spec is None:
                del merged[name]
            elif not isinstance(spec.get("command"), list) or not spec["command"]:
                raise ValueError(f"backend {name}: command must be a non-empty list")
        return merged

    def machine_name(self) -> str:
        """This host's name for its own fire queue `fires.<machine>`."""
        return self.machine or socket.gethostname()

    def signing_key(self) -> str:
        """The key runtime JWTs are signed with (dev mode keeps a generated one on disk).

        Checked when the shim starts, not when settings load: the CLI needs no secret."""
        if self.jwt_algorithm != "HS256":
            if self.jwt_private_key is None:
                raise ValueError("RS256/ES256 need DISPATCHYARD_JWT_PRIVATE_KEY (PEM)")
            return self.jwt_private_key.get_secret_value()
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if not self.dev_mode:
            raise ValueError(
                "DISPATCHYARD_JWT_SECRET is required unless DISPATCHYARD_DEV_MODE=1 "
                "(dev mode generates one into DISPATCHYARD_DATA_DIR)"
            )
        return _dev_secret(self.data_dir)

    def verifying_key(self) -> str:
        if self.jwt_algorithm != "HS256":
            if self.jwt_public_key is None:
                raise ValueError("RS256/ES256 need DISPATCHYARD_JWT_PUBLIC_KEY (PEM)")
            return self.jwt_public_key
        return self.signing_key()


@functools.cache
def _dev_secret(data_dir: Path) -> str:
    path = data_dir / "jwt_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


@functools.cache
def get_settings() -> Settings:
    return Settings()


# ---- Redis: one URL, a single server or a Sentinel-watched master ------------------------------

SENTINEL_PORT = 26379


@dataclass(frozen=True)
class SentinelUrl:
    """`DISPATCHYARD_REDIS_URL=sentinel://[[user]:password@]host[:port][,host[:port]…][/db]
    ?master=NAME[&sentinel_password=…]`: the sentinels to ask (port 26379 by default), the
    name of the master they watch, the database, and the master's credentials (the sentinels'
    own password, if they have one, is `sentinel_password`)."""

    sentinels: tuple[tuple[str, int], ...]
    master: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None


def sentinel_url(url: str) -> SentinelUrl | None:
    """The parsed `sentinel://` setting; None for a URL naming one server (`redis://`,
    `rediss://`, `unix://`), which redis-py and kombu read themselves."""
    parts = urlsplit(url)
    if parts.scheme != "sentinel":
        return None
    userinfo, _, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":")
    sentinels = tuple(_host_port(item.strip()) for item in hosts.split(",") if item.strip())
    if not sentinels:
        raise ValueError(f"{url!r}: no sentinel host")
    db = parts.path.strip("/") or "0"
    if not db.isdigit():
        raise ValueError(f"{url!r}: the path is the database number, got {db!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(query) - {"master", "sentinel_password"}
    if unknown:
        raise ValueError(f"{url!r}: unknown parameter(s) {sorted(unknown)}")
    if not query.get("master"):
        raise ValueError(f"{url!r}: name the master the sentinels watch with ?master=NAME")
    return SentinelUrl(
        sentinels=sentinels,
        master=query["master"],
        db=int(db),
        username=unquote(username) or None,
        password=unquote(password) or None,
        sentinel_password=query.get("sentinel_password") or None,
    )


def _host_port(item: str) -> tuple[str, int]:
    if item.startswith("["):  # [::1]:26379
        host, _, rest = item[1:].partition("]")
        port = rest.removeprefix(":")
    else:
        host, _, port = item.partition(":")
    if not host or (port and not port.isdigit()):
        raise ValueError(f"bad sentinel address {item!r}")
    return host, int(port or SENTINEL_PORT)


def _sentinel_kwargs(target: SentinelUrl) -> dict[str, Any]:
    """How the clients talk to the sentinels themselves: a dead sentinel is skipped quickly."""
    kwargs: dict[str, Any] = {"socket_connect_timeout": 1, "socket_timeout": 1}
    if target.sentinel_password:
        kwargs["password"] = target.sentinel_password
    return kwargs


def redis_client(
    settings: Settings, max_connections: int | None = None, **overrides: Any
) -> redis.Redis:
    """A pooled client with short timeouts, so an outage is noticed quickly. With
    `max_connections`, callers beyond it wait for a free connection instead of failing.

    With a `sentinel://` URL every connection (pub/sub included) asks the sentinels where the
    master is when it connects, so after a failover the next command reaches the new one; a
    command during the failover fails like an outage does (ConnectionError)."""
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.retry import Retry

    opts = {
        "decode_responses": True,
        "socket_connect_timeout": 2,
        "socket_timeout": 10,
        "health_check_interval": 30,
        # Two quick retries ride out a blip; an outage answers 503 in well under a second.
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), 2),
        **overrides,
    }
    target = sentinel_url(settings.redis_url)
    if target is not None:
        return _sentinel_client(target, max_connections, opts)
    if max_connections is None:
        return redis.Redis.from_url(settings.redis_url, **opts)
    pool = redis.BlockingConnectionPool.from_url(
        settings.redis_url, max_connections=max_connections, timeout=5, **opts
    )
    return redis.Redis(connection_pool=pool)


def _sentinel_client(
    target: SentinelUrl, max_connections: int | None, opts: dict[str, Any]
) -> redis.Redis:
    from redis.sentinel import Sentinel

    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=_sentinel_kwargs(target))
    if max_connections is None:
        # redis-py leaves master_for's answer unannotated: it is a Redis of `redis_class`.
        client: redis.Redis = sentinel.master_for(
            target.master,
            db=target.db,
            username=target.username,
            password=target.password,
            **opts,
        )
        return client
    client = sentinel.master_for(
        target.master,
        connection_pool_class=_blocking_sentinel_pool(),
        db=target.db,
        max_connections=max_connections,
        timeout=5,
        username=target.username,
        password=target.password,
        **opts,
    )
    return client


@functools.cache
def _blocking_sentinel_pool() -> type[SentinelConnectionPool]:
    from redis import BlockingConnectionPool
    from redis.sentinel import SentinelConnectionPool

    class SentinelBlockingConnectionPool(SentinelConnectionPool, BlockingConnectionPool):
        """Sentinel's master lookup on connect, BlockingConnectionPool's bounded waiting."""

    return SentinelBlockingConnectionPool


def celery_broker(redis_url: str) -> tuple[str, dict[str, Any]]:
    """Celery's `broker_url` for the setting, and the transport options it needs beside the
    caller's own: kombu's Sentinel form is `sentinel://h1:p1/db;sentinel://h2:p2/db` with the
    master's name as the `master_name` transport option."""
    target = sentinel_url(redis_url)
    if target is None:
        return redis_url, {}
    auth = ""
    if target.username or target.password:
        auth = f"{quote(target.username or '', safe='')}:{quote(target.password or '', safe='')}@"
    urls = [
        f"sentinel://{auth if i == 0 else ''}{_netloc(host, port)}/{target.db}"
        for i, (host, port) in enumerate(target.sentinels)
    ]
    return ";".join(urls), {
        "master_name": target.master,
        "sentinel_kwargs": _sentinel_kwargs(target),
    }


def redbeat_config(redis_url: str) -> dict[str, Any]:
    """RedBeat's settings for the setting: a single server by URL, or RedBeat's own Sentinel
    form (`redis-sentinel://` and the sentinels, master name and db as options)."""
    target = sentinel_url(redis_url)
    if target is None:
        return {"redbeat_redis_url": redis_url}
    host, port = target.sentinels[0]
    options: dict[str, Any] = {
        "sentinels": list(target.sentinels),
        "service_name": target.master,
        "db": target.db,
        "socket_timeout": 10,
        "sentinel_kwargs": _sentinel_kwargs(target),
    }
    if target.username:
        options["username"] = target.username
    if target.password:
        options["password"] = target.password
    return {
        "redbeat_redis_url": f"redis-sentinel://{_netloc(host, port)}/{target.db}",
        "redbeat_redis_options": options,
    }


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
