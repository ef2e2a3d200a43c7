"""What the daemon group's service routes answer: health, an uploaded attachment, the OpenAPI
document; and the media types of the answers that are not JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from api_shim.answers import Answer, Json, OpenAnswer
from api_shim.declare import Media


class RedisHealth(Answer):
    ok: bool
    latency_ms: float | None
    used_memory: int | None = Field(description="bytes Redis uses (None when it does not answer)")
    maxmemory: int | None = Field(description="Redis's memory limit in bytes; 0: no limit")
    memory_used_ratio: float | None = Field(
        description="used_memory / maxmemory, None without a limit; `degraded` from 0.9"
    )


class WorkersHealth(Answer):
    online: int


class BeatHealth(Answer):
    alive: bool
    last_tick_at: str | None


class Health(Answer):
    """200 while Redis answers; 503 with the same shape (`degraded`) when it does not. Also
    `degraded`, with 200, while Redis uses 90% of its `maxmemory` or more (it refuses every
    write once full)."""

    status: Literal["ok", "degraded"]
    version: str
    relay_mode: Literal[False]
    redis: RedisHealth
    workers: WorkersHealth
    beat: BeatHealth
    daemon_auth: bool


class AttachmentInfo(Answer):
    """A stored upload (repowire's AttachmentInfo)."""

    id: str
    path: str
    filename: str
    size: int
    content_type: str | None


class Document(OpenAnswer):
    """The OpenAPI 3.1 document."""

    openapi: str
    info: Json
    paths: Json
    components: Json


METRICS = Media("text/plain", "Prometheus text format")
PAGE = Media("text/html", "The reference page")
EVENT_STREAM = Media("text/event-stream", "Server-Sent Events")
FILE = Media("*/*", "The file, as a download")
