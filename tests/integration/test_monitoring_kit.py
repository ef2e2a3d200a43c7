"""The operators' kit in deploy/ against a real shim: the Grafana dashboard parses as a
dashboard, and every metric it or the alert rules query is one GET /metrics serves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support import records

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
DASHBOARD = DEPLOY / "grafana" / "dispatchyard.json"
RULES = DEPLOY / "prometheus" / "alerts.yml"
METRIC = re.compile(r"\bdispatchyard_[a-z0-9_]+\b")


def served(base_url: str) -> set[str]:
    """The sample names one scrape serves (`_total`, `_bucket`, `_count` included)."""
    resp = requests.get(base_url + "/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    return {
        sample.name
        for family in text_string_to_metric_families(resp.text)
        for sample in family.samples
    }


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] == "dispatchyard" and board["schemaVersion"] >= 36
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    exprs = []
    for panel in panels:
        assert panel["title"] and {"h", "w", "x", "y"} <= set(panel["gridPos"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert '{job="$job"' in target["expr"], (panel["title"], target["expr"])
            exprs.append(target["expr"])
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "job"}
    return exprs


def test_dashboard_and_alerts_query_only_served_metrics(api, shim_url, org):
    # A request, a host and a heartbeat, so every family has its samples.
    host = records.register(api, org)
    beat = api.post(
        f"/api/workers/{host['workerId']}/heartbeat", host["runtimeToken"], json={"activeCount": 0}
    )
    assert beat.status_code == 200, beat.text
    names = served(shim_url)
    queried = {name for expr in dashboard_queries() for name in METRIC.findall(expr)}
    alerted = set(METRIC.findall(RULES.read_text()))
    assert len(queried) >= 15 and len(alerted) >= 8
    assert queried - names == set(), "the dashboard queries metrics /metrics does not serve"
    assert alerted - names == set(), "the alert rules query metrics /metrics does not serve"
    # What the issue asks the dashboard to show, each in some panel.
    for wanted in (
        "dispatchyard_http_requests_total",
        "dispatchyard_fire_lateness_seconds_bucket",
        "dispatchyard_queue_depth",
        "dispatchyard_workers_online",
        "dispatchyard_beat_leader",
        "dispatchyard_redis_used_memory_bytes",
        "dispatchyard_host_heartbeat_age_seconds",
    ):
        assert wanted in queried, wanted
