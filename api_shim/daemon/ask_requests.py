"""What the ask routes accept (repowire 0.17's request models) and the question model's rules,
pure: which answers a question takes, and the default a blocking question falls back to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

QuestionKind = Literal["acknowledge", "choice", "text"]
QuestionScope = Literal["mesh_ask", "tool_permission", "user_question"]
AnswerOutcome = Literal["answered", "acknowledged", "denied", "timed_out", "cancelled"]
Name = Field(max_length=200)
Text = Field(max_length=1_000_000)
BLOCKING_MAX_S, BLOCKING_DEFAULT_S = 55.0, 45.0
WAIT_MAX_S, WAIT_DEFAULT_S = 50.0, 45.0
QUERY_MAX_S = 55.0  # a /query holds its request thread no longer than a blocking question
ASK_MANY_MAX_PEERS = 20


class Model(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AttachmentRef(Model):
    id: str | None = Field(None, max_length=200)
    path: str | None = Field(None, max_length=4096)
    filename: str | None = Field(None, max_length=1000)
    size: int | None = Field(None, ge=0)
    content_type: str | None = Field(None, max_length=200)


class QuestionOption(Model):
    id: str = Field(max_length=200)
    title: str = Field(max_length=2000)
    description: str | None = Field(None, max_length=10_000)


class Answer(Model):
    option_id: str | None = Field(None, max_length=200)
    text: str | None = Field(None, max_length=1_000_000)
    outcome: AnswerOutcome = "answered"
    message: str | None = Field(None, max_length=100_000)


class Question(Model):
    kind: QuestionKind
    prompt: str | None = Field(None, max_length=100_000)
    options: list[QuestionOption] = Field(default_factory=list, max_length=100)
    blocking: bool = False
    timeout_seconds: float | None = Field(None, ge=0, le=86_400)
    default_answer: Answer | None = None
    scope: QuestionScope | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class AskBody(Model):
    from_peer: str = Name
    to_peer: str = Name
    text: str = Text
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=50)
    reply_to: str | None = Field(None, max_length=100)
    bypass_circle: bool = False
    circle: str | None = Field(None, max_length=64)
    question: Question | None = None


class AckBody(Model):
    correlation_id: str = Field(max_length=100)
    message: str | None = Field(None, max_length=1_000_000)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=50)
    from_peer: str | None = Field(None, max_length=200)


class AnswerBody(Model):
    correlation_id: str = Field(max_length=100)
    option_id: str | None = Field(None, max_length=200)
    text: str | None = Field(None, max_length=1_000_000)
    outcome: AnswerOutcome = "answered"
    message: str | None = Field(None, max_length=100_000)
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=50)


class BlockingOption(Model):
    id: str = Field(max_length=200)
    title: str = Field(max_length=2000)


class AskBlockingBody(Model):
    prompt: str = Field(max_length=100_000)
    options: list[BlockingOption] = Field(default_factory=list, max_length=100)
    scope: QuestionScope | None = None
    metadata: dict[str, Any] | None = None
    timeout_seconds: float | None = Field(None, ge=0, le=86_400)
    correlation_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,100}$")
    origin: str | None = Field(None, max_length=200)
    from_peer: str | None = Field(None, max_length=200)


class WaitBody(Model):
    peer_id: str = Field(max_length=200)
    timeout_seconds: float | None = Field(None, ge=0, le=86_400)


class QueryBody(Model):
    from_peer: str | None = Field(None, max_length=200)
    to_peer: str = Name
    text: str = Text
    timeout: float = Field(QUERY_MAX_S, ge=0, le=86_400)
    bypass_circle: bool = False
    circle: str | None = Field(None, max_length=64)


class AskManyBody(Model):
    from_peer: str = Name
    to_peers: list[str] = Field(max_length=1000)
    text: str = Text
    circle: str | None = Field(None, max_length=64)
    bypass_circle: bool = False
    timeout_seconds: int = Field(300, ge=1, le=86_400)


class PendingQuery(Model):
    pane_id: str | None = Field(None, max_length=50)
    peer_id: str | None = Field(None, max_length=200)
    direction: str = "inbound"
    max_results: int = Field(50, ge=1, le=1000)


def answer_error(question: dict[str, Any], answer: Answer) -> str | None:
    """Why `answer` does not answer `question`, or None. A choice needs a known option, unless
    the outcome selects nothing (timed_out, cancelled, acknowledged, denied)."""
    if answer.outcome in ("timed_out", "cancelled", "acknowledged", "denied"):
        return None
    if question.get("kind") == "choice":
        options = {o["id"] for o in question.get("options") or []}
        if answer.option_id is None:
            return "choice question requires an option_id"
        if answer.option_id not in options:
            return f"unknown option_id: {answer.option_id}"
    return None


def blocking_question(body: AskBlockingBody, wait_s: float) -> dict[str, Any]:
    """The question a blocking request registers. Fail-closed: a tool_permission question
    that nobody answers in time is denied; any other times out."""
    default = "denied" if body.scope == "tool_permission" else "timed_out"
    return Question(
        kind="choice",
        prompt=body.prompt,
        options=[QuestionOption(id=o.id, title=o.title) for o in body.options],
        blocking=True,
        timeout_seconds=wait_s,
        default_answer=Answer(outcome=default, message="blocking question timed out"),
        scope=body.scope,
        metadata=body.metadata or {},
    ).model_dump()


def wait_cap(requested: float | None, default: float, cap: float) -> float:
    """How long a request may hold its thread: what it asked (or the default), at most `cap`."""
    return min(requested or default, cap)
