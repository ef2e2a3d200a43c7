"""What the mesh's message routes answer (repowire 0.17's shapes): asks and their answers,
questions, queries, ask-many, notify, broadcast, pending deliveries, the event log and
scheduled messages."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, RootModel

from api_shim.answers import Answer, Json, OpenAnswer, absent

# ---- Asks and questions ------------------------------------------------------------------------


class AskOpened(Answer):
    correlation_id: str
    error: None


class PendingAsk(Answer):
    correlation_id: str
    from_peer: str
    to_peer: str
    text: str
    created_at: str
    direction: Literal["inbound", "outbound"]


class PendingAsks(Answer):
    asks: list[PendingAsk]


class OpenAsk(Answer):
    correlation_id: str
    kind: str
    from_peer: str
    to_peer: str
    text: str
    created_at: str
    question: Json | None


class OpenAsks(Answer):
    asks: list[OpenAsk]


class PendingDelivery(Answer):
    delivery_id: str
    kind: str
    from_peer: str
    to_peer: str
    text: str
    created_at: str
    expires_at: str
    correlation_id: str | None
    attachments: list[Json]


class PendingDeliveries(Answer):
    deliveries: list[PendingDelivery]


class WaitPending(Answer):
    correlation_id: str
    status: Literal["pending"]


class WaitResolved(Answer):
    correlation_id: str
    status: Literal["resolved"]
    reply: str | None
    outcome: str | None
    option_id: str | None
    message: str | None
    close_reason: str | None
    responder: str | None
    attachments: list[Json] | None


class WaitAnswer(RootModel[WaitPending | WaitResolved]):
    """Still pending when the wait's cap passed, or resolved with the reply."""


class BlockingAnswer(Answer):
    correlation_id: str
    outcome: str
    option_id: str | None
    message: str | None
    timeout_seconds: float = Field(
        description="The wait the shim used: the request's timeout_seconds (45 when absent) "
        "capped at 55, so a longer request sees 55 here"
    )


class QueryAnswer(Answer):
    text: str | None
    error: str | None
    status: Literal["busy", "offline"] | None


class AskManyChild(Answer):
    peer: str
    correlation_id: str | None
    delivered: bool
    error: str | None


class AskManyOpened(Answer):
    parent_id: str
    children: list[AskManyChild]


class Rollup(Answer):
    total: int
    acked: int
    replied: int
    pending: int
    failed: int


class AskManyChildStatus(Answer):
    peer: str
    peer_id: str | None
    correlation_id: str | None
    status: Literal["acked", "replied", "pending", "failed"]
    reply: str | None
    close_reason: str | None
    error: str | None


class AskManyStatus(Answer):
    parent_id: str
    from_peer: str
    text: str
    created_at: str
    deadline: str
    state: Literal["complete", "partial", "pending"]
    timed_out: bool
    rollup: Rollup
    children: list[AskManyChildStatus]


# ---- Notifications, broadcasts, events ---------------------------------------------------------


class Notified(Answer):
    ok: Literal[True]
    delivery_id: str
    from_peer_id: str | None
    from_peer_name: str
    to_peer_id: str
    to_peer_name: str
    status: Literal["sent", "queued"]
    delivery_state: Literal["delivered", "queued"]
    delivered: bool
    queued: bool
    reason: Literal["transport_delivered", "queued_delivery"]


class BroadcastFailure(Answer):
    peer: str
    error: str


class Broadcast(Answer):
    ok: Literal[True]
    sent_to: list[str]
    failed: list[BroadcastFailure]


class Event(OpenAnswer):
    """A mesh or job event (repowire's MeshEvent): its id, type and time, and its own fields."""

    id: str
    type: str
    timestamp: str


class Events(RootModel[list[Event]]):
    """The newest events, oldest first."""


# ---- Scheduled messages ------------------------------------------------------------------------


class ScheduleOutcome(Answer):
    """How the latest fire went: `firing` until its delivery is recorded, then `sent`,
    `queued` or `failed` (with `error` {code, detail})."""

    status: str
    due_at: str
    delivery_id: str = absent("present when a notification went out")
    correlation_id: str = absent("present when an ask went out")
    error: dict[str, Any] | None = absent("absent while firing")


class Schedule(Answer):
    schedule_id: str
    from_peer: str
    to_peer: str
    text: str
    fire_at: str
    kind: Literal["ask", "notify"]
    circle: str | None
    cron: str | None
    timezone: str
    created_at: str
    state: Literal["pending", "fired"]
    fire_count: int
    last_fired_at: str | None
    last_due_at: str | None
    last_outcome: ScheduleOutcome | None
    updated_at: str


class Schedules(Answer):
    schedules: list[Schedule]
