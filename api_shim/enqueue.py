"""The shim's one way to start work: send a Celery task by name (tasks/names.py) to a queue.

The client is a bare Celery app that knows the broker and no task code, so the shim imports no
task module, no worker runtime and no beat schedule. One per shim process, made on first use.
"""

from __future__ import annotations

import threading
from typing import Any

import redis
from celery import Celery
from kombu.exceptions import OperationalError

from api_shim.errors import BrokerUnavailable, StoreFull, oom_caused
from dispatchyard.clients import celery_broker
from dispatchyard.state import dispatch
from dispatchyard.state.job_shape import Doc, target_machine
from dispatchyard.state.store import Redis
from tasks import names

_lock = threading.Lock()
_clients: dict[str, Celery] = {}

# Celery's default publish policy retries a dead broker for about a second and kombu's Redis
# transport has no socket timeouts: a request must answer 503 at once instead (the scheduler
# resends a recorded job's fire anyway). Three tries within ~0.3 s, each bounded by the timeouts.
PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.1,
    "interval_max": 0.2,
}
PUBLISH_TIMEOUTS = {"socket_connect_timeout": 1, "socket_timeout": 2}


def _client(broker_url: str) -> Celery:
    with _lock:
        client = _clients.get(broker_url)
        if client is None:
            # `broker_url` is the Redis setting; a `sentinel://` one becomes kombu's form.
            url, sentinel_options = celery_broker(broker_url)
            client = Celery("dispatchyard-shim", broker=url, set_as_current=False)
            client.conf.update(
                task_serializer="json",
                broker_connection_retry_on_startup=True,
                broker_transport_options={
                    "socket_keepalive": True,
                    **PUBLISH_TIMEOUTS,
                    **sentinel_options,
                },
                task_send_sent_event=True,
            )
            _clients[broker_url] = client
        return client


def send(broker_url: str, task: str, args: list[Any], queue: str) -> None:
    """Publish task `task` with `args` to `queue` (created as a direct exchange and routing
    key of the same name, as the workers declare theirs)."""
    try:
        _client(broker_url).send_task(
            task, args=args, queue=queue, retry_policy=PUBLISH_RETRY_POLICY
        )
    except (OperationalError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as e:
        if oom_caused(e):  # the broker answers but refuses the write: Redis is full
            raise StoreFull() from e
        raise BrokerUnavailable() from e


def fire(broker_url: str, job_id: str, machine: str | None, fire_key: str, why: str) -> None:
    """Send a job's fire to its machine's queue (or the shared one)."""
    send(broker_url, names.FIRE, [job_id, fire_key, why], names.queue_for(machine))


def fire_when_ready(broker_url: str, r: Redis, doc: Doc, now_ms: int) -> bool:
    """Fire a job that is due now right away, unless its machine has no live worker node (then
    it waits, says why, and the scheduler looks again)."""
    if not dispatch.ready(r, doc, now_ms):
        return False
    try:
        fire(
            broker_url, doc["job_id"], target_machine(doc), dispatch.fire_key(doc["job_id"]), "due"
        )
    except BrokerUnavailable as e:
        # The job is stored and `ready` has scheduled its next look: the scheduler tick resends
        # this fire (same key, so at most one attempt) once the broker is back.
        raise BrokerUnavailable(doc["job_id"]) from e.__cause__
    except StoreFull as e:
        raise StoreFull(doc["job_id"]) from e.__cause__
    return True
