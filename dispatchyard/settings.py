"""The one configuration object every dispatchyard process reads.

Values come from ``DISPATCHYARD_*`` environment variables and an optional ``.env`` file.
Nothing else in the project reads the environment.
"""

from __future__ import annotations

import functools
import json
import secrets
import socket
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from dispatchyard.agent_backends import DEFAULT_BACKENDS
from dispatchyard.redis_urls import sentinel_url


def _default_backends() -> dict[str, dict[str, Any] | None]:
    return dict(DEFAULT_BACKENDS)


# The per-kind retention settings' meaning.
_KEPT = "kept this long once final (unset: `RETENTION_S`)"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="DISPATCHYARD_", env_file=".env", extra="ignore", frozen=True
    )

    # Each field's description is its meaning in docs/configuration.md (tools/docs_render).
    redis_url: str = Field(
        default="redis://127.0.0.1:6399/0",
        description="broker and the one store: `redis://`, `rediss://`, `unix://`, or "
        "`sentinel://[user:password@]host1:26379,host2:26379/0?master=NAME"
        "[&sentinel_password=…]` (see docs/operations.md)",
    )
    redis_socket_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="socket timeout of the state Redis client (shim, workers, CLI): a command "
        "without an answer this long fails, so an outage is noticed quickly; a blocking read "
        "(`/events/stream`) waits half of it at most",
    )
    dev_mode: bool = Field(
        default=False,
        description="dev mode generates a JWT secret into `DATA_DIR/jwt_secret` "
        "(`make run` sets 1)",
    )
    data_dir: Path = Field(
        default=Path("./var"), description="dev secret, executor logs and output, attachments"
    )

    # Platform credentials
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 secret for runtime JWTs; required outside dev mode"
    )
    jwt_algorithm: str = Field(
        default="HS256",
        description="`HS256`, or `RS256`/`ES256` with `JWT_PRIVATE_KEY` / `JWT_PUBLIC_KEY` (PEM)",
    )
    jwt_private_key: SecretStr | None = Field(default=None, description="PEM, for RS256/ES256")
    jwt_public_key: str | None = Field(default=None, description="PEM, for RS256/ES256")
    jwt_issuer: str = Field(
        default="dispatchyard", description="`iss` of runtime JWTs, checked on every token"
    )
    jwt_ttl_seconds: int = Field(default=3600, ge=60, description="runtime token lifetime")
    jwt_leeway_seconds: int = Field(
        default=60, description="clock leeway when checking a runtime token's expiry"
    )
    jwt_verify_secrets: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="HS256 secrets that verify runtime JWTs but never sign them: the previous "
        "`JWT_SECRET` while its tokens may still be unexpired after a rotation (and, with "
        "several shims, the next one before it becomes current); a JSON array or a "
        "comma-separated list. A token's `kid` (a hash of its key) picks the key; a token "
        "without one is tried against `JWT_SECRET` and each of these (docs/operations.md, "
        "Rotating the signing key)",
    )
    jwt_verify_public_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="RS256/ES256: PEM public keys that verify runtime JWTs but never sign "
        "them (a JSON array), as `JWT_VERIFY_SECRETS` for HS256",
    )
    worker_api_key: SecretStr | None = Field(
        default=None, description="the legacy worker key; unset means that path is off"
    )
    default_org: str | None = Field(
        default=None, description="org id or slug the legacy worker key acts for"
    )
    platform_url: str = Field(
        default="http://127.0.0.1:8080", description="returned to runners as `platformUrl`"
    )

    # Daemon group
    daemon_auth_token: SecretStr | None = Field(
        default=None,
        description="bearer token for the daemon routes; unset: they answer loopback clients only",
    )
    tmux_socket: str | None = Field(
        default=None,
        description="the tmux server the pane routes talk to (`tmux -L <name>`); unset: the "
        "user's default server. Tests point it at a private server so they never touch the "
        "user's panes",
    )
    pane_hook_url: str | None = Field(
        default=None,
        description="the base URL a pane's ws-hook dials to reach this daemon; unset: the URL "
        "the link or rehook request came in on (set it when that URL is a proxy the hook "
        "cannot use)",
    )
    hop_stamps: bool = Field(
        default=False,
        description="benchmarks only: frames sent to peers carry a `hops` object with the time "
        "of each hop on their way (request parsed, state written, published, received by the "
        "holding process, written to the socket), for bench/round_trip.py",
    )
    peer_connection_ttl_s: float = Field(
        default=30.0,
        gt=0,
        description="a peer's connection key (which shim process holds its WebSocket) lives "
        "this long unless that process renews it, every third of it: the peers of a shim "
        "process that dies read offline within this",
    )
    ws_connect_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="a WebSocket (`/ws`) that has not sent its connect frame this long after "
        "opening is closed with 4000 (`First message must be connect`)",
    )
    ws_max_message_bytes: int = Field(
        default=1_048_576,
        ge=1,
        description="largest frame a peer may send on `/ws` (characters of a text frame, after "
        "decompression); a larger one closes the socket with 1009 (message too big)",
    )
    ws_send_backlog_bytes: int = Field(
        default=8 * 1_048_576,
        ge=1,
        description="frames waiting to be written to one peer's socket (characters); a frame "
        "beyond it means the peer stopped reading: its connection is cut (the client sees "
        "1006) and the frame's trace says `injection_failed`. Other peers are never delayed",
    )
    ws_max_sockets: int = Field(
        default=12,
        ge=1,
        description="WebSockets one shim process holds; one more is answered an error frame "
        "and 1013 (try again later). Each holds a gunicorn thread: keep it below `--threads` "
        "(the Procfile's 16, less 4 for requests)",
    )
    event_stream_keepalive_s: float = Field(
        default=15.0,
        gt=0,
        description="`/events/stream` sends a comment line after this long without an event, "
        "so both ends notice a dead connection",
    )

    # Workers and the session queue
    heartbeat_interval_ms: int = Field(
        default=30_000, description="heartbeat interval told to registering workers"
    )
    poll_interval_ms: int = Field(
        default=5_000, description="poll interval told to registering workers"
    )
    poll_batch_max: int = Field(default=5, description="sessions one poll may claim")
    worker_offline_after_s: float = Field(
        default=180.0,
        description="no heartbeat for this long: the host is `offline` and its "
        "claimed-but-not-running sessions return to the queue",
    )

    # Session health thresholds
    health_long_running_s: float = Field(
        default=45 * 60, description="session health: running longer than this"
    )
    health_stale_heartbeat_s: float = Field(
        default=90.0, description="session health: no activity for this long"
    )
    health_claim_stuck_s: float = Field(
        default=5 * 60, description="session health: claimed but not running for this long"
    )
    health_tool_loop_s: float = Field(
        default=10 * 60, description="session health: the same tool repeated for this long"
    )
    session_list_limit: int = Field(
        default=500, description="most sessions `GET /api/sessions` returns"
    )

    # Mutations
    mutation_redeliver_after_s: float = Field(
        default=120.0, description="a delivered mutation with no report is delivered again"
    )
    mutation_max_deliveries: int = Field(default=5, description="then it fails with `undelivered`")

    # Sweeps
    sweep_interval_s: float = Field(default=10.0, description="how often beat runs the sweeps")

    # Retention (docs/operations.md): a per-kind value unset means `RETENTION_S`
    retention_s: float = Field(
        default=7 * 24 * 3600,
        gt=0,
        description="a record in a final state is deleted, with its index entries, once it has "
        "been final this long; it then answers 404 like an id that never existed",
    )
    retention_jobs_s: float | None = Field(None, gt=0, description=f"jobs ended: {_KEPT}")
    retention_sessions_s: float | None = Field(None, gt=0, description=f"sessions ended: {_KEPT}")
    retention_mutations_s: float | None = Field(None, gt=0, description=f"mutations: {_KEPT}")
    retention_hosts_s: float | None = Field(None, gt=0, description=f"deregistered hosts: {_KEPT}")
    retention_templates_s: float | None = Field(None, gt=0, description=f"templates: {_KEPT}")
    retention_schedules_s: float | None = Field(None, gt=0, description=f"one-shots: {_KEPT}")
    retention_batch: int = Field(
        1000, ge=1, description="records of each kind one retention sweep deletes at most"
    )
    template_history: int = Field(
        100,
        ge=1,
        description="a template's finished children beyond its last this many fires "
        "are deleted before their retention",
    )

    # Jobs
    job_lease_s: float = Field(
        default=30.0,
        description="an attempt's lease, renewed every third of it while the executor runs",
    )
    job_kill_grace_s: float = Field(
        default=5.0, description="SIGTERM to SIGKILL grace on cancel and deadline"
    )
    template_tick_s: float = Field(
        default=0.5, description="how often beat runs the scheduler tick"
    )
    beat_lock_timeout_s: int = Field(
        default=30, description="a second beat takes over this long after the leader died"
    )
    backends: dict[str, dict[str, Any] | None] = Field(
        default_factory=_default_backends,
        description="JSON; entries given here replace the shipped ones of the same name "
        "(null removes one)",
    )
    machine: str | None = Field(
        default=None, description="this host's name for `fires.<machine>`; default: hostname"
    )

    # Tests only
    clock_rate: float = Field(
        default=1.0,
        gt=0,
        description="time runs this many times faster from the anchor (every process alike)",
    )
    clock_anchor_ms: int = Field(
        default=0, description="the instant the accelerated clock starts from"
    )
    check_responses: bool = Field(
        default=False,
        description="the shim checks every answer against its route's declared model and "
        "answers 500 on a mismatch (api_shim/conformance.py)",
    )

    # Limits
    max_body_bytes: int = Field(default=1_048_576, description="largest request body (413 beyond)")
    attachment_max_bytes: int = Field(
        default=10 * 1_048_576, description="largest attachment (413 beyond)"
    )
    attachment_total_bytes: int = Field(
        default=200 * 1_048_576, description="all attachments kept together (507 beyond)"
    )
    attachment_ttl_s: float = Field(
        default=24 * 3600, gt=0, description="how long an attachment is kept"
    )

    # Request budgets (api_shim/budgets.py): RATE requests per second on average, BURST at once.
    # Each budget is BURST requests per sliding window of BURST / RATE seconds (a whole number,
    # at least 1), counted in Redis for every shim process together; over it, 429 with
    # `Retry-After`. A RATE of 0 turns that budget off.
    api_rate_per_s: float = Field(
        default=500.0,
        ge=0,
        description="each org's request budget on the platform routes (/api) but heartbeat and "
        "poll, charged once its credential is resolved: this many a second on average, "
        "`API_BURST` at once (`API_BURST` per sliding window of `API_BURST / API_RATE_PER_S` s, "
        "shared by every shim process; 429 with `Retry-After` beyond); 0: no budget",
    )
    api_burst: int = Field(
        default=5000, ge=1, description="requests an org may send at once (the window's size)"
    )
    host_rate_per_s: float = Field(
        default=20.0,
        ge=0,
        description="each host's own budget for its `heartbeat` and `poll`, apart from its "
        "org's (`HOST_BURST` per window of `HOST_BURST / HOST_RATE_PER_S` s); 0: no budget",
    )
    host_burst: int = Field(
        default=200, ge=1, description="heartbeats and polls a host may send at once"
    )
    peer_rate_per_s: float = Field(
        default=20.0,
        ge=0,
        description="each sending peer's (`from_peer`) budget for /ask, /ask-many, /notify, "
        "/broadcast, /questions/ask-blocking and /query (`PEER_BURST` per window of "
        "`PEER_BURST / PEER_RATE_PER_S` s); senders that name none share one; 0: no budget",
    )
    peer_burst: int = Field(
        default=200, ge=1, description="asks and notifications a peer may send at once"
    )

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        sentinel_url(value)  # a malformed sentinel:// setting fails at start, not on first use
        return value

    @field_validator("jwt_verify_secrets", "jwt_verify_public_keys", mode="before")
    @classmethod
    def _key_list(cls, value: Any) -> Any:
        """A JSON array, or (for secrets) a comma-separated list; empty entries dropped."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        items = json.loads(text) if text.startswith("[") else text.split(",")
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ValueError("a JSON array of strings or a comma-separated list")
        return [item.strip() for item in items if item.strip()]

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
