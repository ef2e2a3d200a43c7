"""deploy/prometheus/alerts.yml under Prometheus's own promtool (Debian's `prometheus` package;
`make test` installs it): the rules load, and every alert has a unit test of its own that shows
it firing and not firing (deploy/prometheus/tests/)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"
RULES = DEPLOY / "alerts.yml"
UNIT_TESTS = sorted((DEPLOY / "tests").glob("*.yml"))


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("promtool")
    assert tool, "promtool is missing: `make test-deps` installs Debian's prometheus package"
    return subprocess.run(
        [tool, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60, check=False
    )


def alert_names(text: str, pattern: str) -> set[str]:
    return set(re.findall(pattern, text, re.M))


def test_rules_load():
    done = promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=[p.stem for p in UNIT_TESTS])
def test_alert_unit_test_passes(unit_test):
    done = promtool("test", "rules", str(unit_test))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_shown_firing_and_quiet_by_a_unit_test():
    alerts = alert_names(RULES.read_text(), r"^\s+- alert: (\w+)$")
    assert len(alerts) == 8
    firing: set[str] = set()
    quiet: set[str] = set()
    for unit_test in UNIT_TESTS:
        text = unit_test.read_text()
        # An expectation is `alertname: X` then `exp_alerts: []` (quiet) or a list (firing).
        for name, expected in re.findall(r"alertname: (\w+)\n\s+exp_alerts:( \[\])?", text):
            (quiet if expected else firing).add(name)
    assert firing == alerts, alerts - firing
    assert quiet == alerts, alerts - quiet
