#!/usr/bin/env python3
"""A fake agent CLI with the shape of `claude -p PROMPT --output-format json [--resume ID]`.

It prints one JSON line `{"type": "result", "session_id": ..., "result": ...}`, keeps the
session id it is asked to resume, and obeys directives in the prompt:
  sleep:N        sleep N seconds before answering
  fail:N         exit with code N (after printing to stderr)
  child          start a grandchild that sleeps (to prove process groups are reaped)
  ignore-term    ignore SIGTERM (to prove SIGKILL follows the grace period)
  started:PATH   append "<pid>" to PATH once running (tests wait for it instead of sleeping)
  wait:PATH      keep running until PATH exists (tests decide when a fire ends)
Every run appends its argv as a JSON line to $FAKE_AGENT_LOG when that is set.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("-p", "--prompt", required=True)
    p.add_argument("--output-format", default="text")
    p.add_argument("--resume")
    args = p.parse_args()
    prompt = args.prompt
    if os.environ.get("FAKE_AGENT_LOG"):
        with open(os.environ["FAKE_AGENT_LOG"], "a") as log:
            log.write(
                json.dumps({"argv": sys.argv[1:], "pid": os.getpid(), "cwd": os.getcwd()}) + "\n"
            )
    if "ignore-term" in prompt:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if "child" in prompt.split():
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    started = re.search(r"started:(\S+)", prompt)
    if started:
        with open(started.group(1), "a") as f:
            f.write(f"{os.getpid()}\n")
    wait = re.search(r"wait:(\S+)", prompt)
    while wait and not os.path.exists(wait.group(1)):
        time.sleep(0.02)
    sleep = re.search(r"sleep:([\d.]+)", prompt)
    if sleep:
        time.sleep(float(sleep.group(1)))
    session_id = args.resume or f"fake-{uuid.uuid4().hex[:12]}"
    fail = re.search(r"fail:(\d+)", prompt)
    if fail:
        print(f"fake agent failing as asked ({fail.group(1)})", file=sys.stderr)
        print(json.dumps({"type": "result", "session_id": session_id, "is_error": True}))
        return int(fail.group(1))
    result = f"done: {prompt[:80]}" + (f" (resumed {args.resume})" if args.resume else "")
    print(json.dumps({"type": "result", "session_id": session_id, "result": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
