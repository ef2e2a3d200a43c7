"""Fuzzing: schemathesis (its own CLI, as an operator would run it) generates requests for
every operation of the served OpenAPI document (`/openapi.json`) and sends them to the live
shim under gunicorn. No answer is a 5xx, and every answer matches the document: its status is
documented, its content type and body match.

Left out of the run, with the reason: `/events/stream` (an endless stream), the requests that
wait for an answer up to their cap (`/questions/ask-blocking`, `/asks/{id}/wait`, `/query`:
fuzzed timeouts would hold each example up to 55 s; the integration tests cover their
validation), and the two that start processes on this machine (`/panes/{id}/link`,
`/peers/{name}/rehook`: tmux hooks).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import requests

from tests.support import records
from tests.support.stack import ROOT, Stack

SLOW_OR_SPAWNING = (
    "/events/stream",
    "/questions/ask-blocking",
    "/asks/{correlation_id}/wait",
    "/query",
    "/panes/{pane_id}/link",
    "/peers/{name}/rehook",
)
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance," + (
    "response_schema_conformance"
)


def test_schemathesis_over_every_operation(tmp_path):
    with Stack(tmp_path) as stack:
        key = records.new_org(stack.r).key
        stack.gunicorn()
        try:
            auth = {"Authorization": f"Bearer {key}"}
            document = requests.get(stack.url + "/openapi.json", headers=auth, timeout=10).json()
            operations = sum(len(ops) for ops in document["paths"].values())
            argv = [
                str(Path(sys.executable).parent / "schemathesis"),
                "run",
                stack.url + "/openapi.json",
                "--url",
                stack.url,
                "-H",
                f"Authorization: Bearer {key}",
                "--checks",
                CHECKS,
                "--max-examples",
                "20",
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--suppress-health-check",
                "all",
                # Its `coverage` phase can fail inside schemathesis itself ("Inconsistent results"
                # from Hypothesis on very long strings); the generated fuzzing and stateful phases
                # send every operation examples and sequences.
                "--phases",
                "examples,fuzzing,stateful",
            ]
            for path in SLOW_OR_SPAWNING:
                argv += ["--exclude-path", path]
            run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
        finally:
            stack.stop_all()
        # The failures section (with a curl line to reproduce each), not the progress lines.
        out = run.stdout
        marks = [out.find(m) for m in ("FAILURES", "ERRORS") if m in out]
        report = out[min(marks) - 40 :] if marks else out[-4000:]
        report += run.stderr[-2000:]
        assert operations > 80, operations
        assert run.returncode == 0, report
