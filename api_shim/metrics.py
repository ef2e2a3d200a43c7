"""GET /metrics: Prometheus text format, behind the daemon token like every daemon route.

Two kinds of numbers:
- counted in the shim's processes (requests by route, their latency, mutation deliveries):
  prometheus-client metrics. Under gunicorn (`-c api_shim/gunicorn_conf.py`, which sets
  `PROMETHEUS_MULTIPROC_DIR`) every worker writes its values to files there and a scrape sums
  the files of all workers, live and dead, so whichever worker answers, the counts add up;
  without that variable (tests, a single process) they are this process's own;
- read from Redis at scrape time (queue depth, jobs by state, sessions, peers, WebSocket
  connections, Redis memory against its maxmemory, fire lateness, live Celery workers, the beat
  leader, daemon hosts' heartbeat ages): `state/stats.py`, the same for every process and every
  shim, including the fires Celery workers acquired. Alert rules over them, and a Grafana
  dashboard: deploy/.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator

import redis
from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from api_shim.context import r
from api_shim.daemon import answers, blueprint
from api_shim.declare import declare
from dispatchyard.state import clock, liveness, stats
from dispatchyard.state.models import JOB_STATES
from tasks import names

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
UNMATCHED = "<unmatched>"  # the route label of requests no rule matched (404s, probes)
HEARTBEAT_ENDPOINT = "platform.heartbeat"

# Not registered on the global registry: each scrape builds its own (see `metrics`).
REQUESTS = Counter(
    "dispatchyard_http_requests",
    "HTTP requests answered, by route (the URL rule), method and status.",
    ["route", "method", "status"],
    registry=None,
)
LATENCY = Histogram(
    "dispatchyard_http_request_duration_seconds",
    "Time to answer an HTTP request, by route (the URL rule) and method.",
    ["route", "method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
    registry=None,
)
MUTATION_DELIVERIES = Counter(
    "dispatchyard_mutation_deliveries",
    "Daemon config mutations handed to hosts in heartbeat answers (redeliveries included).",
    registry=None,
)
OWN_METRICS = (REQUESTS, LATENCY, MUTATION_DELIVERIES)


def multiprocess() -> bool:
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))


def register(app: Flask) -> None:
    """Count every request the app answers."""

    @app.before_request
    def _started() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _answered(response: Response) -> Response:
        started = g.pop("metrics_started", None)
        route = request.url_rule.rule if request.url_rule is not None else UNMATCHED
        REQUESTS.labels(route, request.method, str(response.status_code)).inc()
        if started is not None:
            LATENCY.labels(route, request.method).observe(time.perf_counter() - started)
        if request.endpoint == HEARTBEAT_ENDPOINT and response.status_code == 200:
            body = response.get_json(silent=True) or {}
            delivered = len(body.get("pendingMutations") or [])
            if delivered:
                MUTATION_DELIVERIES.inc(delivered)
        return response


class RedisCollector(Collector):
    """The gauges and the fire-lateness histogram, read from Redis when scraped."""

    def collect(self) -> Iterator[Metric]:
        try:
            families = list(self._from_redis())
        except redis.exceptions.RedisError:  # the counters are still worth a scrape
            families = []
        up = "dispatchyard_store_up"
        yield GaugeMetricFamily(
            up, "1 when this scrape could read Redis.", value=1 if families else 0
        )
        yield from families

    def _from_redis(self) -> Iterator[Metric]:
        client = r()
        snap = stats.snapshot(
            client,
            job_states=tuple(str(s) for s in JOB_STATES),
            default_queue=names.DEFAULT_QUEUE,
            fires_queue_prefix=names.fires_queue(""),
        )
        depth = GaugeMetricFamily(
            "dispatchyard_queue_depth",
            "Items waiting: the session queue (work:queue) and the Celery queues.",
            labels=["queue"],
        )
        for queue, n in snap.queue_depth.items():
            depth.add_metric([queue], n)
        yield depth
        jobs = GaugeMetricFamily("dispatchyard_jobs", "Durable jobs by state.", labels=["state"])
        for state, n in snap.jobs_by_state.items():
            jobs.add_metric([state], n)
        yield jobs
        sessions = GaugeMetricFamily(
            "dispatchyard_sessions", "Agent sessions by status (indexed ones).", labels=["status"]
        )
        for status, n in snap.sessions_by_status.items():
            sessions.add_metric([status], n)
        yield sessions
        peers = GaugeMetricFamily("dispatchyard_peers", "Mesh peers by status.", labels=["status"])
        for status, n in snap.peers_by_status.items():
            peers.add_metric([status], n)
        yield peers
        memory = stats.memory(client)
        yield GaugeMetricFamily(
            "dispatchyard_redis_used_memory_bytes",
            "Bytes Redis uses (INFO memory used_memory).",
            value=memory.used,
        )
        yield GaugeMetricFamily(
            "dispatchyard_redis_maxmemory_bytes",
            "Redis's maxmemory (0: no limit); with noeviction every write fails once reached.",
            value=memory.limit,
        )
        yield GaugeMetricFamily(
            "dispatchyard_websocket_connections",
            "Mesh WebSockets held by all shim processes (peers online or busy).",
            value=snap.websocket_connections,
        )
        yield from self._liveness(client)
        stats.fold_lateness(client)
        buckets, count, total = stats.lateness(client)
        del count  # the +Inf bucket is the count
        yield HistogramMetricFamily(
            "dispatchyard_fire_lateness_seconds",
            "From a job's due_at to the fire acquiring its attempt (fires because due).",
            buckets=[(bound, float(n)) for bound, n in buckets],
            sum_value=total,
        )

    @staticmethod
    def _liveness(client: redis.Redis) -> Iterator[Metric]:
        alive = stats.liveness(
            client, clock.now_ms(), worker_alive_within_ms=liveness.ALIVE_WITHIN_MS
        )
        yield GaugeMetricFamily(
            "dispatchyard_workers_online",
            "Celery worker nodes seen in the last 15 s (their liveness bootstep).",
            value=alive.workers_online,
        )
        yield GaugeMetricFamily(
            "dispatchyard_beat_leader",
            "1 while a beat holds RedBeat's leader lock (it expires a lock timeout after the "
            "leader dies).",
            value=1 if alive.beat_leader else 0,
        )
        yield GaugeMetricFamily(
            "dispatchyard_beat_last_tick_age_seconds",
            "Seconds since beat's liveness tick last ran through a worker (every 5 s); +Inf "
            "before its first.",
            value=alive.beat_tick_age_s,
        )
        hosts = GaugeMetricFamily(
            "dispatchyard_hosts",
            "Daemon hosts by status: active, or marked offline by the sweep (silent for "
            "WORKER_OFFLINE_AFTER_S) and not deregistered.",
            labels=["status"],
        )
        for status, n in alive.hosts_by_status.items():
            hosts.add_metric([status], n)
        yield hosts
        ages = GaugeMetricFamily(
            "dispatchyard_host_heartbeat_age_seconds",
            "Seconds since each daemon host's last heartbeat (hosts send one every 30 s); "
            "active and offline hosts, until one deregisters.",
            labels=["host"],
        )
        for host_id, age in alive.host_heartbeat_age_s.items():
            ages.add_metric([host_id], age)
        yield ages


@blueprint.get("/metrics")
@declare(responses={200: answers.METRICS})
def metrics() -> Response:
    registry = CollectorRegistry()
    if multiprocess():
        # prometheus-client leaves its constructor unannotated; it registers on `registry`.
        collect_all: Callable[[CollectorRegistry], object] = MultiProcessCollector
        collect_all(registry)
    else:
        for metric in OWN_METRICS:
            registry.register(metric)
    registry.register(RedisCollector())
    return Response(generate_latest(registry), content_type=CONTENT_TYPE)
