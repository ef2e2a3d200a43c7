"""The inbound ws-hook of a tmux pane: a program, run beside the agent.

    python -m dispatchyard.pane_hook --url URL --pane %N --name NAME --circle C --backend B
        [--token T] [--peer-id ID] [--path P] [--role R] [--machine M] [--tmux-session S]
        [--agent-pid PID] [--model M] [--tmux-socket L]

The hook holds the pane's peer WebSocket (`WS /ws`) and types each delivered `ask`, `notify`,
`query` and `broadcast` into the pane with `tmux send-keys -l` and `Enter`, as repowire's
websocket_hook does, answering each with a `receipt` frame (`injected` or `failed`). When the
socket drops it reconnects with backoff; it exits when the pane disappears, or when the daemon
refuses it for good (bad token, retired peer, a newer socket took the peer over).

POST /panes/{id}/link and POST /peers/{name}/rehook start it in its own session with the
pane's lock file inherited (see api_shim/daemon/pane_hooks.py): one hook per pane. The daemon
token comes in the environment (PANE_HOOK_TOKEN_ENV) rather than on the command line, where any
local user could read it. Standard library, `websockets` and `dispatchyard.tmux` only: it runs
beside the agent, not in the shim.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import sys
import time
from typing import Any

from dispatchyard.tmux import find_pane, tmux

log = logging.getLogger("dispatchyard.pane_hook")

PANE_HOOK_TOKEN_ENV = "DISPATCHYARD_PANE_HOOK_TOKEN"
# Foreground commands that mean the agent left and a bare shell holds the pane: typing a
# message and Enter there would run it as a command line.
SHELLS = frozenset({"bash", "zsh", "sh", "fish", "tcsh", "csh", "dash", "ksh", "login"})
CHUNK = 4096  # characters per `send-keys -l`, well under the kernel's limit on one argument
PANE_CHECK_S = 2.0  # how often an idle hook checks that its pane still exists
BACKOFF_START_S, BACKOFF_CAP_S = 0.5, 30.0
# Close codes after which reconnecting cannot help: bad token, retired peer, superseded.
FINAL_CLOSES = {4001: "authentication failed", 4004: "peer retired", 4005: "superseded"}
# C0 controls (but tab and newline), DEL and C1 are dropped from delivered text: a message
# must not be able to send Ctrl-C, Escape sequences or the like to the agent's terminal.
_CONTROLS = dict.fromkeys([*range(0, 9), *range(11, 32), *range(127, 160)])


def clean(text: str) -> str:
    return text.translate(_CONTROLS)


def type_into(socket: str | None, pane_id: str, text: str) -> str | None:
    """Type `text` into the pane and press Enter; None when done, else why it failed."""
    pane, conclusive = find_pane(socket, pane_id)
    if pane is None:
        return "tmux did not answer" if not conclusive else f"pane {pane_id} is gone"
    if pane["command"].lower().lstrip("-") in SHELLS:
        return f"pane {pane_id} shows a shell ({pane['command']}), not an agent"
    mode = tmux(socket, "display-message", "-p", "-t", pane_id, "#{pane_in_mode}")
    if mode is not None and mode.stdout.strip() == "1":
        # In copy mode the keys would land in the copy buffer and Enter would act on it.
        tmux(socket, "send-keys", "-t", pane_id, "-X", "cancel")
    text = clean(text)
    for start in range(0, len(text), CHUNK):
        done = tmux(socket, "send-keys", "-t", pane_id, "-l", text[start : start + CHUNK])
        if done is None or done.returncode != 0:
            return f"send-keys failed: {done.stderr.strip() if done else 'tmux did not run'}"
    # An agent's input box treats keys that arrive together as one paste and swallows an
    # Enter inside it: let the paste settle first (repowire's debounce, by text length).
    time.sleep(min(0.5 + len(text) / 4000.0, 1.5))
    done = tmux(socket, "send-keys", "-t", pane_id, "Enter")
    if done is None or done.returncode != 0:
        return "send-keys Enter failed"
    return None


def _attachment_lines(attachments: Any) -> str:
    """Attachments as repowire's hook lists them under the text."""
    if not isinstance(attachments, list) or not attachments:
        return ""
    lines = ["", "Attachments:"]
    for item in attachments:
        if not isinstance(item, dict):
            continue
        ident, path = item.get("id"), item.get("path")
        label = item.get("filename") or path or ident or "attachment"
        where = path or (f"/attachments/{ident}" if ident else "")
        lines.append(f"- {label}: {where}" if where else f"- {label}")
    return "\n".join(lines) if len(lines) > 2 else ""


def render(frame: dict[str, Any]) -> str | None:
    """The line typed into the pane for a delivered frame (repowire's framing), or None."""
    kind = frame.get("type")
    sender = frame.get("from_peer") or "unknown"
    text = str(frame.get("text") or "")
    to = f" → @{frame['to_peer']}" if frame.get("to_peer") else ""
    if kind == "ask":
        cid = frame.get("correlation_id", "")
        return f"@{sender}{to} [ask #{cid}]: {text}{_attachment_lines(frame.get('attachments'))}"
    if kind == "notify":
        return f"@{sender}{to}: {text}{_attachment_lines(frame.get('attachments'))}"
    if kind == "broadcast":
        return f"@{sender} [broadcast]: {text}"
    if kind == "query":
        return text
    return None


def receipt(frame: dict[str, Any], error: str | None) -> dict[str, Any] | None:
    """The receipt for a delivered frame; None for one with no id to report against (a
    broadcast)."""
    ids = {k: frame[k] for k in ("correlation_id", "delivery_id") if frame.get(k)}
    if not ids:
        return None
    answer = {"type": "receipt", **ids, "message_type": frame.get("type")}
    answer["status"] = "failed" if error else "injected"
    if error:
        answer["detail"] = error
    return answer


class Hook:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        base = args.url.rstrip("/")
        self.ws_url = "ws" + base[4:] + "/ws" if base.startswith("http") else base + "/ws"
        self.token = args.token or os.environ.get(PANE_HOOK_TOKEN_ENV)
        self.connected = False
        pane, _ = find_pane(args.tmux_socket, args.pane)
        # The pane's shell pid pins the pane: tmux reuses pane ids after a server restart, and
        # a new pane under the old id is not ours to type into.
        self.pane_pid = pane["pid"] if pane else None

    def pane_alive(self) -> bool:
        pane, conclusive = find_pane(self.args.tmux_socket, self.args.pane)
        if not conclusive:
            return True  # tmux hiccup: no verdict, keep going
        return pane is not None and (self.pane_pid is None or pane["pid"] == self.pane_pid)

    def hello(self) -> dict[str, Any]:
        a = self.args
        frame: dict[str, Any] = {
            "type": "connect",
            "display_name": a.name,
            "circle": a.circle,
            "backend": a.backend,
            "role": a.role,
            "pane_id": a.pane,
            "hook_version": 1,
            "capabilities": ["delivery_receipts"],
        }
        # Every identity field the peer has goes again: a connect re-registers the peer and
        # would blank the ones left out.
        optional = {
            "peer_id": a.peer_id,
            "path": a.path,
            "machine": a.machine,
            "tmux_session": a.tmux_session,
            "agent_pid": a.agent_pid,
            "model": a.model,
            "auth_token": self.token,
        }
        frame.update({k: v for k, v in optional.items() if v})
        return frame

    def run(self) -> int:
        from websockets.exceptions import ConnectionClosed, WebSocketException

        delay = BACKOFF_START_S
        while self.pane_alive():
            self.connected = False
            try:
                self.session()
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
                if code in FINAL_CLOSES:
                    log.info("daemon closed with %s (%s); exiting", code, FINAL_CLOSES[code])
                    return 3 if code == 4001 else 0
                log.warning("connection closed (%s); reconnecting", code)
            except (OSError, TimeoutError, ValueError, WebSocketException) as e:
                log.warning("cannot reach %s (%s)", self.ws_url, e)
            if self.connected:
                delay = BACKOFF_START_S  # it was up: a drop starts the backoff again
            elif not self.pane_alive():
                break
            time.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, BACKOFF_CAP_S)
        log.info("pane %s is gone; exiting", self.args.pane)
        return 0

    def session(self) -> None:
        """One connection, until the pane goes (returns) or the socket ends (raises)."""
        from websockets.sync.client import connect

        with connect(self.ws_url, open_timeout=10, close_timeout=2) as ws:
            ws.send(json.dumps(self.hello()))
            first = json.loads(ws.recv(timeout=10))
            if first.get("type") != "connected":
                log.warning("refused: %s", first)
                ws.recv(timeout=5)  # the close that follows the error frame raises here
                return
            self.connected = True
            log.info("connected as %s (%s)", first.get("display_name"), first.get("session_id"))
            while True:
                try:
                    raw = ws.recv(timeout=PANE_CHECK_S)
                except TimeoutError:
                    if not self.pane_alive():
                        return
                    continue
                try:
                    frame = json.loads(raw)
                except ValueError:
                    continue
                if isinstance(frame, dict):
                    self.deliver(ws, frame)

    def deliver(self, ws: Any, frame: dict[str, Any]) -> None:
        if frame.get("type") == "ping":
            ws.send(json.dumps({"type": "pong"}))
            return
        line = render(frame)
        if line is None:
            return
        error = type_into(self.args.tmux_socket, self.args.pane, line)
        if error:
            log.warning("%s not typed: %s", frame.get("type"), error)
        answer = receipt(frame, error)
        if answer is not None:
            ws.send(json.dumps(answer))


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m dispatchyard.pane_hook", description=__doc__)
    p.add_argument("--url", required=True, help="the daemon's base URL (http[s]://host:port)")
    p.add_argument("--pane", required=True, help="the tmux pane id, e.g. %%3")
    p.add_argument("--name", required=True)
    p.add_argument("--circle", default="global")
    p.add_argument("--backend", default="claude-code")
    p.add_argument("--token", default=None, help=f"else ${PANE_HOOK_TOKEN_ENV}")
    p.add_argument("--peer-id", default=None)
    p.add_argument("--path", default=None)
    p.add_argument("--role", default="agent")
    p.add_argument("--machine", default=None)
    p.add_argument("--tmux-session", default=None)
    p.add_argument("--agent-pid", type=int, default=None)
    p.add_argument("--model", default=None)
    p.add_argument("--tmux-socket", default=None, help="tmux -L name; default server if unset")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s pid=%(process)d %(message)s"
    )
    args = parse(argv)
    try:
        return Hook(args).run()
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
