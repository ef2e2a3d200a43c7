"""Recurring job templates (`cal-*`, daemon.md §2): due times, overlap, pause/resume/cancel.

Stored like jobs: the template's status object in `templates:docs`, its summary beside it, and
a scalar hash `template:{id}` that every change writes (and transactions WATCH). Materializing
a due time is one transaction over the template and its previous child: the child is created
and the template advanced together, and only if the template still waits for exactly that due
time — so each due time yields one child whatever runs it twice.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import redis

from state import cron, jobs, keys
from state.models import JOB_TERMINAL, TEMPLATE_TRANSITIONS

DOCS = "templates:docs"
SUMMARIES = "templates:summaries"
BUFFERED = "templates:buffered"  # SET of templates holding a buffered child
SKIPPED_KEPT = 20


def new_id() -> str:
    return f"cal-{secrets.token_hex(6)}"


def new_doc(fields: dict[str, Any], now_ms: int) -> dict[str, Any]:
    """An active template's status object; `fields` carries cron, timezone, overlap and the
    create request's ownership fields."""
    template_id = new_id()
    now = jobs.iso(now_ms)
    request = fields.get("request") or {}
    doc: dict[str, Any] = {
        "calendar_id": template_id,
        "recurring_id": template_id,
        "title": fields.get("title", ""),
        "kind": fields.get("kind", "general"),
        "state": "active",
        "cron": fields["cron"],
        "timezone": fields.get("timezone") or "UTC",
        "overlap": fields.get("overlap") or "skip",
        "next_due_at": None,
        "visibility": fields.get("visibility", "circle"),
        "request": request,
        "provenance": fields.get("provenance") or {},
        "execution": request.get("execution", {}),
        "last_occurrence_work_id": None,
        "last_materialized_at": None,
        "last_skipped_due_at": None,
        "skipped_count": 0,
        "buffered_work_id": None,
        "created_at": now,
        "updated_at": now,
    }
    for name in (
        "owner_peer_id", "assigned_peer_id", "circle", "created_by_peer_id", "source_kind",
        "source_id", "scope",
    ):  # fmt: skip
        doc[name] = fields.get(name)
    doc["next_due_at"] = jobs.iso(next_due_ms(doc, now_ms))
    return doc


def next_due_ms(doc: dict[str, Any], after_ms: int) -> int:
    c = cron.parse(doc["cron"])
    after = datetime.fromtimestamp(after_ms / 1000, tz=UTC)
    return int(cron.next_after(c, after, cron.zone(doc.get("timezone"))).timestamp() * 1000)


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def write(pipe: redis.client.Pipeline, doc: dict[str, Any], now_ms: int) -> None:
    """The commands that store a template and its indexes, for a caller's MULTI or pipeline."""
    template_id = doc["calendar_id"]
    doc["updated_at"] = jobs.iso(now_ms)
    due = jobs.parse_ms(doc["next_due_at"]) or 0
    pipe.hset(DOCS, template_id, _dumps(doc))
    pipe.hset(SUMMARIES, template_id, _dumps(jobs.summarize(doc)))
    pipe.hset(
        keys.template(template_id),
        mapping={"state": doc["state"], "next_due": due, "updated": now_ms},
    )
    pipe.zadd(keys.TEMPLATES_ALL, {template_id: due})
    for state in TEMPLATE_TRANSITIONS:
        if state == doc["state"]:
            pipe.sadd(keys.templates_by_state(state), template_id)
        else:
            pipe.srem(keys.templates_by_state(state), template_id)
    if doc["state"] == "active":
        pipe.zadd(keys.TEMPLATES_DUE, {template_id: due})
    else:
        pipe.zrem(keys.TEMPLATES_DUE, template_id)
    if doc.get("buffered_work_id"):
        pipe.sadd(BUFFERED, template_id)
    else:
        pipe.srem(BUFFERED, template_id)


def create(r: redis.Redis, doc: dict[str, Any], now_ms: int) -> dict[str, Any]:
    pipe = r.pipeline(transaction=True)
    write(pipe, doc, now_ms)
    pipe.execute()
    return doc


def get(r: redis.Redis, template_id: str) -> dict[str, Any] | None:
    raw = r.hget(DOCS, template_id)
    return json.loads(raw) if raw else None


def raw_doc(r: redis.Redis, template_id: str) -> str | None:
    return r.hget(DOCS, template_id)  # type: ignore[return-value]


def list_raw(
    r: redis.Redis, *, state: str | None, filters: dict[str, str], summary: bool
) -> list[str]:
    """Templates ordered by next due time, optionally of one state and matching filters."""
    ids: list[str] = r.zrange(keys.TEMPLATES_ALL, 0, -1)  # type: ignore[assignment]
    if state is not None:
        members = r.smembers(keys.templates_by_state(state))
        ids = [i for i in ids if i in members]  # type: ignore[operator]
    if not ids:
        return []
    if filters:
        kept = []
        for template_id, raw in zip(ids, r.hmget(SUMMARIES, ids), strict=True):  # type: ignore[arg-type]
            doc = json.loads(raw) if raw else None
            if doc and all(doc.get(k) == v for k, v in filters.items()):
                kept.append(template_id)
        ids = kept
    if not ids:
        return []
    values: list[str | None] = r.hmget(SUMMARIES if summary else DOCS, ids)  # type: ignore[assignment]
    return [v for v in values if v]


def _mutate(r: redis.Redis, template_id: str, change, now_ms: int, *watch: str):
    """WATCH the template (and `watch`), apply `change(doc, pipe_reader)`, write in MULTI.
    `change` returns None to write nothing, or a callable adding commands to the MULTI."""

    def txn(pipe: redis.client.Pipeline):
        raw = pipe.hget(DOCS, template_id)
        if raw is None:
            return None
        doc = json.loads(raw)
        outcome = change(doc, pipe)
        if outcome is None:
            return doc, None
        extra, result = outcome
        pipe.multi()
        write(pipe, doc, now_ms)
        if extra is not None:
            extra(pipe)
        return doc, result

    return r.transaction(txn, keys.template(template_id), *watch, value_from_callable=True)


def set_state(
    r: redis.Redis, template_id: str, target: str, now_ms: int, reason: str | None = None
) -> dict[str, Any] | None:
    """Pause, resume or cancel. Resuming computes the next due time from now (a paused
    template fires nothing for the time it was paused). Repeating the current state is a
    no-op; a move the table forbids raises jobs.Refused."""

    def change(doc: dict, _pipe):
        if doc["state"] == target:
            return None
        if target not in TEMPLATE_TRANSITIONS[doc["state"]]:
            raise jobs.Refused(f"cannot move from {doc['state']} to {target}", doc["state"])
        doc["state"] = target
        if target == "active":
            doc["next_due_at"] = jobs.iso(next_due_ms(doc, now_ms))
        if target == "cancelled":
            doc["provenance"]["cancel_reason"] = reason or "cancel_requested"
        return None, None

    out = _mutate(r, template_id, change, now_ms)
    return out[0] if out else None


def materialize(
    r: redis.Redis, template_id: str, due_ms: int, now_ms: int
) -> tuple[str, dict[str, Any] | None]:
    """Handle one due time of a template: ('created', child), ('buffered', child),
    ('skipped', None), or ('stale', None) when the template no longer waits for `due_ms`
    (already handled, paused, cancelled, deleted)."""

    def change(doc: dict, pipe):
        if doc["state"] != "active" or jobs.parse_ms(doc["next_due_at"]) != due_ms:
            return None
        prev_id = doc.get("last_occurrence_work_id")
        prev_state = None
        if prev_id:
            pipe.watch(keys.job(prev_id))  # its end, racing us, must abort this transaction
            prev_state = pipe.hget(keys.job(prev_id), "state")
        running = prev_state is not None and prev_state not in JOB_TERMINAL
        policy = doc.get("overlap") or "skip"
        due_iso = jobs.iso(due_ms)
        # No backfill: after downtime one overdue child, then the next time after now.
        doc["next_due_at"] = jobs.iso(next_due_ms(doc, max(now_ms, due_ms)))
        if running and (policy == "skip" or doc.get("buffered_work_id")):
            _record_skip(doc, due_iso)
            return None, ("skipped", None)
        child = _child(doc, due_iso, now_ms)
        buffered = running and policy == "buffer_one"
        if buffered:
            child["state_reason"] = "buffered_behind_previous"
            child["phase"] = "buffered"
            doc["buffered_work_id"] = child["job_id"]
            doc["provenance"]["buffered_behind"] = prev_id
        doc["last_occurrence_work_id"] = child["job_id"]
        doc["last_materialized_at"] = jobs.iso(now_ms)
        doc["provenance"]["last_materialized_reason"] = "due"

        def extra(p):
            jobs.write_new(p, child, now_ms, due_ms=None if buffered else now_ms)

        return extra, ("buffered" if buffered else "created", child)

    out = _mutate(r, template_id, change, now_ms)
    if out is None or out[1] is None:
        return "stale", None
    return out[1]


def release_buffered(r: redis.Redis, template_id: str, now_ms: int) -> str | None:
    """Once the child before it has ended, send the buffered child to be fired."""
    doc = get(r, template_id)
    if not doc or not doc.get("buffered_work_id"):
        return None
    buffered = doc["buffered_work_id"]
    runs = doc.get("provenance", {}).get("buffered_behind")

    def change(d: dict, pipe):
        if d.get("buffered_work_id") != buffered:
            return None
        if runs and pipe.hget(keys.job(runs), "state") not in JOB_TERMINAL:
            return None
        d["buffered_work_id"] = None
        d["provenance"].pop("buffered_behind", None)

        def extra(p):
            p.zadd(keys.JOBS_DUE, {buffered: now_ms})

        return extra, buffered

    watch = [keys.job(runs)] if runs else []
    out = _mutate(r, template_id, change, now_ms, *watch)
    return out[1] if out else None


def buffered_templates(r: redis.Redis) -> list[str]:
    return list(r.smembers(BUFFERED))  # type: ignore[arg-type]


def due(r: redis.Redis, now_ms: int, batch: int = 5000) -> list[tuple[str, int]]:
    rows: list[tuple[str, float]] = r.zrangebyscore(  # type: ignore[assignment]
        keys.TEMPLATES_DUE, "-inf", now_ms, 0, batch, withscores=True
    )
    return [(template_id, int(score)) for template_id, score in rows]


def record_binding(r: redis.Redis, template_id: str, binding: dict[str, Any], now_ms: int) -> None:
    """Remember the runtime session of the latest fire, for the next `resume`."""

    def change(doc: dict, _pipe):
        history = [*doc["provenance"].get("runtime_binding_history", []), binding][-10:]
        doc["provenance"]["runtime_binding"] = binding
        doc["provenance"]["runtime_binding_history"] = history
        return None, None

    _mutate(r, template_id, change, now_ms)


def _record_skip(doc: dict, due_iso: str) -> None:
    skipped = [*doc["provenance"].get("skipped_due_times", []), due_iso][-SKIPPED_KEPT:]
    doc["provenance"]["skipped_due_times"] = skipped
    doc["skipped_count"] = doc.get("skipped_count", 0) + 1
    doc["last_skipped_due_at"] = due_iso


def _child(doc: dict, due_iso: str, now_ms: int) -> dict[str, Any]:
    request = json.loads(json.dumps(doc["request"]))
    execution = request.setdefault("execution", {})
    execution["schedule"] = {
        **execution.get("schedule", {}),
        "due_at": due_iso,
        "calendar_id": doc["calendar_id"],
        "cron": doc["cron"],
    }
    fields = {
        name: doc.get(name)
        for name in (
            "title", "kind", "created_by_peer_id", "owner_peer_id", "assigned_peer_id",
            "circle", "scope", "visibility",
        )
    }  # fmt: skip
    fields.update(
        source_kind="calendar",
        source_id=doc["calendar_id"],
        request=request,
        provenance={
            "calendar": {
                "calendar_id": doc["calendar_id"],
                "cron": doc["cron"],
                "timezone": doc.get("timezone") or "UTC",
                "scheduled_due_at": due_iso,
            }
        },
    )
    return jobs.new_doc(fields, now_ms)
