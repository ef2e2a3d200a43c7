"""The `dispatchyard` CLI against the real shim over HTTP (the private Redis): through click's
CliRunner, and a few through a real subprocess of the installed console script."""

from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr
from werkzeug.serving import make_server

from api_shim import create_app
from dispatchyard.cli import cli
from dispatchyard.cli.devstack import PROBE_MARK, Printer, free_port
from dispatchyard.settings import get_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent / "dispatchyard"


@pytest.fixture
def dy(shim_url):
    """Run a CLI command in process: (exit code, stdout, stderr)."""
    runner = CliRunner()

    def run(*args: str, key: str | None = None):
        argv = ["--url", shim_url, *(["--key", key] if key else []), *args]
        result = runner.invoke(cli, argv, catch_exceptions=False)
        return result.exit_code, result.stdout, result.stderr

    return run


def later(minutes: int = 60) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def test_org_project_and_sessions(dy):
    slug = f"cli-{secrets.token_hex(4)}"
    code, out, _ = dy("org", "create", "CLI Org", "--slug", slug, "--json")
    assert code == 0, out
    created = json.loads(out)
    org_id, key = created["orgId"], created["key"]

    code, out, err = dy(
        "project",
        "create",
        "--org",
        org_id,
        "--slug",
        "web",
        "--name",
        "Web",
        "--repository",
        "github.com/acme/web",
        key=key,
    )
    assert code == 0, err
    code, out, _ = dy("project", "list", "--org", org_id, key=key)
    assert code == 0 and "web" in out and out.splitlines()[0].split()[:2] == ["ID", "SLUG"]
    code, out, _ = dy("project", "list", "--org", org_id, "--json", key=key)
    assert [p["slug"] for p in json.loads(out)["projects"]] == ["web"]

    for n in (1, 2):
        code, out, err = dy(
            "session",
            "enqueue",
            "--project",
            "web",
            "--issue-id",
            f"i{n}",
            "--issue",
            f"WEB-{n}",
            "--prompt",
            "fix it",
            key=key,
        )
        assert code == 0, err
    code, out, _ = dy("session", "list", "--project", "web", key=key)
    assert code == 0 and "WEB-1" in out and "WEB-2" in out and "green" in out
    code, out, _ = dy("session", "list", "--json", key=key)
    assert len(json.loads(out)["sessions"]) == 2

    code, out, _ = dy("key", "list", "--org", org_id, key=key)
    assert code == 0 and "owner" in out


def test_jobs_and_schedules(dy):
    title = f"cli job {secrets.token_hex(3)}"
    code, out, err = dy(
        "job",
        "create",
        "--prompt",
        "later",
        "--title",
        title,
        "--backend",
        "shell",
        "--due-at",
        later(),
        "--json",
    )
    assert code == 0, err
    job_id = json.loads(out)["job_id"]
    code, out, _ = dy("job", "list")
    assert code == 0 and job_id in out and "queued" in out
    code, out, _ = dy("job", "list", "--json")
    assert job_id in [j["job_id"] for j in json.loads(out)["work"]]
    code, out, _ = dy("job", "show", job_id)
    assert code == 0 and title in out

    code, out, err = dy(
        "job",
        "create",
        "--prompt",
        "daily",
        "--cron",
        "0 9 * * *",
        "--timezone",
        "Europe/Paris",
        "--backend",
        "shell",
    )
    assert code == 0 and out.startswith("template cal-"), err
    cal_id = out.split()[1]
    code, out, _ = dy("template", "list")
    assert code == 0 and cal_id in out
    assert dy("template", "pause", cal_id)[0] == 0

    sender = f"cli-{secrets.token_hex(3)}"
    code, out, err = dy(
        "schedule",
        "create",
        "--from",
        sender,
        "--to",
        "bob",
        "--text",
        "hi",
        "--fire-at",
        later(),
        "--json",
    )
    assert code == 0, err
    code, out, _ = dy("schedule", "list", "--from", sender)
    assert code == 0 and sender in out and "bob" in out
    code, out, _ = dy("schedule", "list", "--from", sender, "--json")
    (only,) = json.loads(out)["schedules"]
    assert dy("schedule", "delete", only["schedule_id"])[0] == 0
    assert json.loads(dy("schedule", "list", "--from", sender, "--json")[1])["schedules"] == []


def test_errors_and_usage(dy):
    # The API's message on stderr, exit 1.
    code, _, err = dy("job", "show", "work-doesnotexist")
    assert code == 1 and "No work: work-doesnotexist" in err
    code, _, err = dy("project", "list", "--org", "org_x", key="rsk_live_wrong")
    assert code == 1 and "HTTP 401" in err
    # Usage errors: click's 2.
    assert dy("job", "wait")[0] == 2
    assert dy("job", "create", "--overlap", "sometimes")[0] == 2
    assert dy("nonsense")[0] == 2


def test_job_list_shows_why_a_job_failed(dy, celery_worker, tmp_path):
    title = f"failing {secrets.token_hex(3)}"
    create = ("job", "create", "--title", title, "--backend", "shell", "--path", str(tmp_path))
    code, out, err = dy(*create, "--prompt", "exit 3", "--json")
    assert code == 0, err
    job_id = json.loads(out)["job_id"]
    assert dy("job", "wait", job_id, "--timeout", "30")[0] == 1  # ended, not completed
    code, out, _ = dy("job", "list", "--state", "failed")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["JOB_ID", "STATE", "REASON"]
    (row,) = [line for line in rows if line.startswith(job_id)]
    assert row.split()[1:3] == ["failed", "exit_code"]


def test_refused_credentials_name_the_setting_to_fix(dy):
    slug = f"cli-auth-{secrets.token_hex(4)}"
    owner = json.loads(dy("org", "create", "Auth Org", "--slug", slug, "--json")[1])
    org_id = owner["orgId"]
    code, _, err = dy("project", "list", "--org", org_id)
    assert code == 1
    assert "HTTP 401: Unauthorized. The API key was not given: set DISPATCHYARD_API_KEY" in err
    assert "--key" in err
    code, _, err = dy("project", "list", "--org", org_id, key="rsk_live_wrong")
    assert code == 1 and "The API key was not accepted: set DISPATCHYARD_API_KEY" in err
    # A key of the org, with a role too low to create a project: 403 names the key setting.
    code, out, err = dy(
        "key", "create", "--org", org_id, "--name", "m", "--role", "member", "--json"
    )
    assert code == 0, err
    member = json.loads(out)["key"]
    create = ("project", "create", "--org", org_id, "--slug", "w", "--name", "W")
    code, _, err = dy(*create, "--repository", "github.com/a/w", key=member)
    assert code == 1 and "HTTP 403" in err
    assert "The API key (DISPATCHYARD_API_KEY / --key) lacks the role" in err
    # The right key with another org's id: the org setting is what to fix.
    code, _, err = dy("project", "list", "--org", "org_someoneelse", key=owner["key"])
    assert code == 1 and "HTTP 404: Organization not found" in err
    assert "The org (DISPATCHYARD_ORG / --org) is not the API key's" in err


def test_refused_daemon_token_names_its_setting():
    settings = get_settings().model_copy(update={"daemon_auth_token": SecretStr("the-token")})
    server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        for token, said in ((None, "was not given"), ("wrong", "was not accepted")):
            argv = ["--url", url, *(["--token", token] if token else []), "job", "list"]
            result = CliRunner().invoke(cli, argv, env={"DISPATCHYARD_DAEMON_AUTH_TOKEN": None})
            assert result.exit_code == 1
            assert "GET /jobs: HTTP 401" in result.stderr
            assert f"The daemon token {said}: set DISPATCHYARD_DAEMON_AUTH_TOKEN" in result.stderr
        ok = CliRunner().invoke(cli, ["--url", url, "--token", "the-token", "job", "list"])
        assert ok.exit_code == 0, ok.stderr
    finally:
        server.shutdown()


def test_connection_refused_says_how_to_start(shim_url):
    result = CliRunner().invoke(cli, ["--url", f"http://127.0.0.1:{free_port()}", "job", "list"])
    assert result.exit_code == 1 and "make run" in result.stderr


def _subprocess(shim_url: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "DISPATCHYARD_URL": shim_url}
    return subprocess.run(
        [str(BIN), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_console_script_job_wait_times_out(shim_url):
    made = _subprocess(
        shim_url,
        "job",
        "create",
        "--prompt",
        "p",
        "--backend",
        "shell",
        "--due-at",
        later(),
        "--json",
    )
    assert made.returncode == 0, made.stderr
    job_id = json.loads(made.stdout)["job_id"]
    waited = _subprocess(shim_url, "job", "wait", job_id, "--timeout", "1.5", "--interval", "0.3")
    assert waited.returncode == 3
    assert f"{job_id} queued" in waited.stderr and "timed out" in waited.stderr


def test_console_script_errors_and_help(shim_url):
    missing = _subprocess(shim_url, "job", "result", "work-nope")
    assert missing.returncode == 1 and "No work: work-nope" in missing.stderr
    usage = _subprocess(shim_url, "schedule", "create", "--from", "a")
    assert usage.returncode == 2 and "Missing option" in usage.stderr
    helped = _subprocess(shim_url, "job", "wait", "--help")
    assert helped.returncode == 0 and "--timeout" in helped.stdout


def test_run_printer_prefixes_and_hides_routine_ticks():
    out = io.StringIO()
    printer = Printer(["web", "worker"], stream=out, routine={"scheduler.tick"})
    printer.write("web", "Listening at: http://127.0.0.1:8080\n")
    printer.write("beat", "[..: INFO/MainProcess] Scheduler: Sending due task t (scheduler.tick)")
    printer.write("worker", "[..: INFO/MainProcess] Task scheduler.tick[1] succeeded in 0.01s")
    printer.write("worker", "[..: ERROR/MainProcess] Task scheduler.tick[2] raised: boom")
    printer.write("worker", "[..: INFO/MainProcess] Task jobs.fire[3] succeeded in 0.2s")
    printer.write("web", f'127.0.0.1 "GET /health?{PROBE_MARK} HTTP/1.1" 200 178 1ms')
    printer.system("up")
    assert out.getvalue().splitlines() == [
        "web    | Listening at: http://127.0.0.1:8080",
        "worker | [..: ERROR/MainProcess] Task scheduler.tick[2] raised: boom",
        "worker | [..: INFO/MainProcess] Task jobs.fire[3] succeeded in 0.2s",
        "system | up",
    ]
