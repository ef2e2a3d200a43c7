"""Scheduled messages: /schedules (docs/api.md), with repowire 0.17's request model, answers
and messages. The stored record is already the wire shape (repowire's ScheduleResponse plus
`timezone` and the fire record), so routes answer with it as is. Firing is the scheduler
tick's (tasks/schedules.py); these routes only write and read."""

from __future__ import annotations

import re
from typing import Any

from flask import request
from pydantic import BaseModel, ConfigDict, Field

from api_shim import bodies
from api_shim.answers import Ok
from api_shim.context import r
from api_shim.daemon import blueprint, message_answers
from api_shim.declare import declare
from api_shim.errors import ApiError
from dispatchyard.state import clock, schedule_rules, schedules
from dispatchyard.state.schedule_rules import ScheduleDoc

SCHEDULE_ID = re.compile(r"^sched-[0-9a-f]{8}$")


class CreateBody(BaseModel):
    # Unknown fields are ignored, as repowire's model does.
    model_config = ConfigDict(extra="ignore")
    from_peer: str = Field(max_length=200)
    to_peer: str = Field(max_length=200)
    text: str
    fire_at: str | None = Field(None, max_length=100)
    cron: str | None = Field(None, max_length=200)
    timezone: str | None = Field(None, max_length=100)
    # A plain string: an unknown kind is repowire's 400 with its message, not a 422.
    kind: str = "notify"
    circle: str | None = Field(None, max_length=200)


def _not_found(schedule_id: str) -> ApiError:
    return ApiError(404, f"No schedule: {schedule_id}")


@blueprint.post("/schedules")
@declare(body=CreateBody, responses={200: message_answers.Schedule})
def create_schedule() -> ScheduleDoc:
    body = bodies.parse(CreateBody)
    try:
        doc = schedule_rules.new_doc(body.model_dump(), clock.now_ms())
    except schedule_rules.ScheduleError as e:
        raise ApiError(400, str(e)) from None
    # A fire_at already past fires on the scheduler's next tick (within half a second).
    return schedules.create(r(), doc)


@blueprint.get("/schedules")
@declare(responses={200: message_answers.Schedules})
def list_schedules() -> dict[str, Any]:
    """Pending schedules (those that will still fire), by next fire_at."""
    return {"schedules": schedules.list_pending(r(), request.args.get("from_peer"))}


@blueprint.get("/schedules/<schedule_id>")
@declare(responses={200: message_answers.Schedule})
def get_schedule(schedule_id: str) -> ScheduleDoc:
    """One schedule with its fire record; a fired one-shot stays readable here a while."""
    doc = schedules.get(r(), schedule_id) if SCHEDULE_ID.match(schedule_id) else None
    if doc is None:
        raise _not_found(schedule_id)
    return doc


@blueprint.delete("/schedules/<schedule_id>")
@declare(responses={200: Ok})
def delete_schedule(schedule_id: str) -> dict[str, Any]:
    """Cancel a pending schedule; 404 when unknown or already fired (nothing left to cancel)."""
    if not SCHEDULE_ID.match(schedule_id) or schedules.delete(r(), schedule_id) is None:
        raise _not_found(schedule_id)
    return {"ok": True}
