"""repowire 0.17.0's own tools as subprocesses, pointed at one daemon each: `repowire serve`
(the reference daemon) or dispatchyard. Each tool gets a HOME of its own (a temp folder), so
nothing reads or writes ~/.repowire, and no TMUX variables (it is not in a pane)."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from dispatchyard.cli.devstack import free_port
from tests.support.http import Api
from tests.support.waits import wait_for

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without tmux's or repowire's variables, plus `extra`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REPOWIRE_", "TMUX")) and not k.startswith("DISPATCHYARD_")
    }
    return {**env, "COLUMNS": "250", "REPOWIRE_DISABLE_HOOK_INSTALL": "1", **extra}


@contextlib.contextmanager
def repowire_serve(home: Path) -> Iterator[str]:
    """`repowire serve` (0.17.0, the test dependency) on a free port, with HOME in `home`."""
    port = free_port()
    log = open(home / "serve.log", "wb")  # noqa: SIM115  (closed with the process)
    proc = subprocess.Popen(
        [str(BIN / "repowire"), "serve", "--no-install-hooks", "--port", str(port)],
        cwd=home,
        env=clean_env(HOME=str(home)),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        with contextlib.suppress(requests.RequestException):
            return requests.get(url + "/health", timeout=1).ok
        return False

    try:
        wait_for(healthy, timeout=60, interval=0.1, message="repowire serve /health")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
        log.close()


@dataclass
class Run:
    rc: int
    out: str


@dataclass
class Side:
    """One daemon and the CLI pointed at it. `names` maps what a daemon called a peer to the
    test's name for it (repowire renames peers it registers: folder-backend), for `shape`."""

    label: str
    url: str
    home: Path
    names: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> Api:
        return Api(self.url)

    @property
    def port(self) -> str:
        return self.url.rsplit(":", 1)[1]

    def env(self) -> dict[str, str]:
        return clean_env(
            HOME=str(self.home),
            REPOWIRE_DAEMON__HOST="127.0.0.1",
            REPOWIRE_DAEMON__PORT=self.port,
        )

    def actual(self, stand_in: str) -> str:
        """What this daemon called what the test calls `stand_in` (the latest so named)."""
        return next(a for a, known in reversed(self.names.items()) if known == stand_in)

    def cli(self, *args: str, cwd: Path | None = None) -> Run:
        """Run the CLI; an argument that is a stand-in (`<bob>`) is this side's own name."""
        known = set(self.names.values())
        argv = [self.actual(a) if a in known else a for a in args]
        done = subprocess.run(
            [str(BIN / "repowire"), *argv],
            cwd=cwd or self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        # httpx logs each request at INFO on stderr (doctor): not the command's output.
        err = "\n".join(
            line for line in done.stderr.splitlines() if not line.startswith("INFO:httpx")
        )
        return Run(done.returncode, done.stdout + err)

    def shape(self, text: str) -> list[str]:
        return shape(text, self.names, self.url)


def both(sides: tuple[Side, Side], *args: str, cwd: Path | None = None) -> tuple[Run, Run]:
    """The same command against both daemons at once."""
    with ThreadPoolExecutor(2) as pool:
        ours, theirs = pool.map(lambda s: s.cli(*args, cwd=cwd), sides)
    return ours, theirs


# What varies between two runs of one command: ids, times, URLs; and the drawing of a table
# (its column widths follow its contents).
VARYING = [
    (re.compile(r"repow-[\w-]+-[0-9a-f]{8}"), "<peer-id>"),
    (re.compile(r"\bask-[0-9a-f]{8}\b"), "<ask>"),
    (re.compile(r"\b(notif-delivery-[0-9a-f]{8}|qd-[0-9a-f]{12})\b"), "<delivery>"),
    (re.compile(r"\bnotif-[0-9a-f]{8}\b"), "<notif>"),
    (re.compile(r"\bwork-[0-9a-f]{12}\b"), "<job>"),
    (re.compile(r"\bcal-[0-9a-f]{12}\b"), "<template>"),
    (re.compile(r"\battempt-[0-9a-f]{12}\b"), "<attempt>"),
    (re.compile(r"\bsched-[0-9a-f]{8}\b"), "<schedule>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?"), "<ts>"),
    (re.compile(r"\d+[smhd] ago \(\d\d:\d\d UTC\)"), "<ago>"),
    (re.compile(r"[━─═]+"), "─"),
    (re.compile(r" {2,}"), " "),
]


def shape(text: str, names: dict[str, str], url: str) -> list[str]:
    """The output's lines with what varies replaced, trailing blanks dropped."""
    text = text.replace(url, "<daemon>")
    # Longest first: a name may contain another.
    for actual in sorted(names, key=len, reverse=True):
        text = re.sub(rf"(?<![\w/-]){re.escape(actual)}(?![\w-])", names[actual], text)
    out = []
    for line in text.splitlines():
        for pattern, stand_in in VARYING:
            line = pattern.sub(stand_in, line)
        out.append(line.rstrip())
    while out and not out[-1]:
        out.pop()
    return out
