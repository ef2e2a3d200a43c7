"""The README's "First steps", as written: both shell blocks run in order, each command as a
subprocess through bash, against gunicorn, a Celery worker and beat started as the tests start
them (`make run` is that stack); each command ends as its `# ->` comment says.

The test holds the README's commands and comments (`STEPS`, `HOST_STEPS`) beside what it
checks for each: a README edit that changes a command or its claim fails here until the check
follows.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.stack import ROOT
from tests.support.waits import wait_for

README = ROOT / "README.md"
Done = subprocess.CompletedProcess
Check = Callable[[Done, dict[str, Any]], None]


def _blocks() -> list[str]:
    text = README.read_text()
    section = text[text.index("## First steps\n") : text.index("## The CLI\n")]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def _steps(block: str) -> list[tuple[str, str]]:
    """(command, its claims) per logical line; a line that is only a comment adds to the claims
    of the command above it."""
    lines: list[str] = []
    for raw in block.splitlines():
        if lines and lines[-1].endswith("\\"):
            lines[-1] = lines[-1][:-1].rstrip() + " " + raw.strip()
        else:
            lines.append(raw)
    steps: list[tuple[str, str]] = []
    for line in lines:
        if line.lstrip().startswith("# "):
            command, claim = steps.pop()
            steps.append((command, f"{claim} | {line.strip()[2:]}".lstrip(" |")))
            continue
        command, _, claim = line.partition("  # ")
        steps.append((" ".join(command.split()), claim.strip()))
    return steps


def _line(out: str, pattern: str) -> re.Match[str]:
    found = re.search(pattern, out, re.M)
    assert found, f"no line matching {pattern!r} in:\n{out}"
    return found


def _ok(done: Done) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def org_created(done: Done, ctx: dict[str, Any]) -> None:
    body = json.loads(_ok(done))
    assert body["slug"] == "acme" and body["orgId"].startswith("org_")
    assert body["key"].startswith("rsk_live_")
    ctx["org_…"], ctx["rsk_live_…"] = body["orgId"], body["key"]


def project_created(done: Done, ctx: dict[str, Any]) -> None:
    _line(_ok(done), r"^id\s+prj_\w+$")


def session_enqueued(done: Done, ctx: dict[str, Any]) -> None:
    out = _ok(done)
    ctx["session"] = _line(out, r"^sessionId\s+(ses_\w+)$")[1]
    _line(out, r"^status\s+queued$")


def session_listed(done: Done, ctx: dict[str, Any]) -> None:
    row = _line(_ok(done), rf"^{ctx['session']}\s.*$")[0].split()
    assert row[1:3] == ["queued", "WEB-1"] and "green" in row, row


def fired_now(done: Done, ctx: dict[str, Any]) -> None:
    ctx["work-…"] = _line(_ok(done), r"^job (work-\w+) queued$")[1]


def waited(done: Done, ctx: dict[str, Any]) -> None:
    assert _ok(done).strip() == f"{ctx['work-…']} completed"
    assert f"{ctx['work-…']} completed (" in done.stderr  # the progress, on stderr


def result_shown(done: Done, ctx: dict[str, Any]) -> None:
    out = _ok(done)
    _line(out, r"^state\s+completed$")
    _line(out, r"^summary\s+Filesystem\s+Size\s+Used")  # `df -h .`'s header


def due_in_2030(done: Done, ctx: dict[str, Any]) -> None:
    ctx["later"] = _line(_ok(done), r"^job (work-\w+) queued$")[1]


def template_made(done: Done, ctx: dict[str, Any]) -> None:
    ctx["cal"] = _line(_ok(done), r"^template (cal-\w+) \(active\) cron '0 9 \* \* 1-5'$")[1]


def schedule_made(done: Done, ctx: dict[str, Any]) -> None:
    out = _ok(done)
    ctx["sched"] = _line(out, r"^schedule_id\s+(sched-\w+)$")[1]
    _line(out, r"^state\s+pending$")


def three_tables(done: Done, ctx: dict[str, Any]) -> None:
    out = _ok(done)
    for header in ("JOB_ID", "CALENDAR_ID", "SCHEDULE_ID"):
        _line(out, rf"^{header}\s")
    assert _line(out, rf"^{ctx['work-…']}\s.*$")[0].split()[1:4] == [
        "completed",
        "-",
        "disk",
    ]
    _line(out, rf"^{ctx['later']}\s+queued\s+-\s+nightly audit\s+2030-01-01T02:00:00Z")
    _line(out, rf"^{ctx['cal']}\s+active\s+weekday triage\s+0 9 \* \* 1-5\s+Europe/Paris")
    _line(out, rf"^{ctx['sched']}\s+notify\s+alice\s+bob\s")


def host_registered(done: Done, ctx: dict[str, Any]) -> None:
    body = json.loads(_ok(done))
    assert body["workerId"].startswith("wkr_") and body["runtimeToken"].startswith("eyJ")
    ctx["wkr_…"], ctx["eyJ…"] = body["workerId"], body["runtimeToken"]


def host_polled(done: Done, ctx: dict[str, Any]) -> None:
    body = json.loads(_ok(done))
    assert [item["sessionId"] for item in body["work"]] == [ctx["session"]], body


def nothing(done: Done, ctx: dict[str, Any]) -> None:
    _ok(done)


STEPS: list[tuple[str, str, Check | None]] = [
    ("make run", "in one terminal; the URLs come last", None),  # the stack fixture
    ("DY=.venv/bin/dispatchyard", "in another", None),
    (
        '$DY org create "Acme" --slug acme --json',
        'bootstrap, straight to Redis | -> {"orgId": "org_…", "slug": "acme", "key": '
        '"rsk_live_…"}   the owner key, shown once',
        org_created,
    ),
    ("export DISPATCHYARD_API_KEY=rsk_live_… DISPATCHYARD_ORG=org_…", "", None),
    (
        "$DY project create --slug web --name Web --repository github.com/acme/web",
        "-> id  prj_…",
        project_created,
    ),
    (
        '$DY session enqueue --project web --issue-id 1 --issue WEB-1 --prompt "Fix the login '
        'form"',
        "-> sessionId  ses_…   status  queued",
        session_enqueued,
    ),
    ("$DY session list", "-> WEB-1 queued, health green", session_listed),
    (
        '$DY job create --title "disk check" --backend shell --prompt "df -h ." --path "$PWD"',
        "-> job work-… queued        (no --due-at: it fires now, on a worker)",
        fired_now,
    ),
    ("$DY job wait work-… --timeout 60", "-> work-… completed (exit 0)", waited),
    ("$DY job result work-…", "-> state  completed, summary: df's output", result_shown),
    (
        '$DY job create --title "nightly audit" --backend shell --prompt "make audit" '
        '--path "$PWD" --due-at 2030-01-01T02:00:00Z',
        "-> job work-… queued (until 2030)",
        due_in_2030,
    ),
    (
        '$DY job create --title "weekday triage" --backend claude-code --prompt "Triage new '
        'issues" --path "$PWD" --cron "0 9 * * 1-5" --timezone Europe/Paris',
        "-> template cal-… (active)",
        template_made,
    ),
    (
        '$DY schedule create --from alice --to bob --text "standup in 5" --cron "55 8 * * 1-5"',
        "-> schedule_id  sched-…   state  pending",
        schedule_made,
    ),
    (
        "$DY job list; $DY template list; $DY schedule list",
        "-> three tables; --json for scripts",
        three_tables,
    ),
]
HOST_STEPS: list[tuple[str, str, Check | None]] = [
    (
        'curl -s -X POST localhost:8080/api/workers/register -H "Authorization: Bearer '
        "$DISPATCHYARD_API_KEY\" -H 'Content-Type: application/json' -d "
        '\'{"hostname":"box-1","capacity":4}\'',
        '-> {"workerId": "wkr_…", "runtimeToken": "eyJ…", …}; the worker polls with that token:',
        host_registered,
    ),
    (
        'curl -s localhost:8080/api/workers/wkr_…/poll -H "Authorization: Bearer eyJ…"',
        '-> {"work": [{"sessionId": "ses_…", …}], …}: the session enqueued above, now claimed '
        "by box-1",
        host_polled,
    ),
]


def test_first_steps_run_as_written(stack):
    blocks = _blocks()
    assert len(blocks) == 2
    assert _steps(blocks[0]) == [(c, claim) for c, claim, _ in STEPS]
    assert _steps(blocks[1]) == [(c, claim) for c, claim, _ in HOST_STEPS]
    env = {k: v for k, v in stack.environ.items() if not k.startswith("DISPATCHYARD_API")}
    env.pop("DISPATCHYARD_ORG", None)
    env["DISPATCHYARD_URL"] = stack.url  # what `make run` serves on localhost:8080
    ctx: dict[str, Any] = {"localhost:8080": stack.url.removeprefix("http://")}

    def filled(command: str) -> str:
        for placeholder, value in ctx.items():
            if "…" in placeholder or placeholder == "localhost:8080":
                command = command.replace(placeholder, value)
        assert "…" not in command, command
        return command

    for command, _, check in [*STEPS, *HOST_STEPS]:
        if command == "make run":
            continue
        if command.startswith("DY="):
            env["DY"] = command.removeprefix("DY=")
            continue
        if command.startswith("export "):
            for pair in filled(command).removeprefix("export ").split():
                name, _, value = pair.partition("=")
                env[name] = value
            continue
        done = subprocess.run(
            ["bash", "-c", filled(command)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert check is not None
        check(done, ctx)


def _gauge(url: str, name: str) -> float | None:
    text = requests.get(url + "/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                return sample.value
    return None


def test_real_beat_and_worker_show_in_metrics(stack):
    """The gauges the alerts read, from the real processes: RedBeat's lock (the key keys.py
    names) held by the running beat, and the worker's liveness."""
    wait_for(lambda: _gauge(stack.url, "dispatchyard_beat_leader") == 1, timeout=30)
    wait_for(lambda: (_gauge(stack.url, "dispatchyard_workers_online") or 0) >= 1, timeout=30)
    tick = "dispatchyard_beat_last_tick_age_seconds"  # +Inf until beat's first tick
    wait_for(lambda: (_gauge(stack.url, tick) or float("inf")) < 15, timeout=30)
