"""The agent CLIs dispatchyard knows how to start out of the box (`DISPATCHYARD_BACKENDS`
replaces or adds to them): how to start one, resume one, and read its session id and result."""

from __future__ import annotations

from typing import Any

DEFAULT_BACKENDS: dict[str, dict[str, Any]] = {
    # `{prompt}`, `{session_id}` and `{path}` are filled per fire; argv lists, never a shell string.
    "claude-code": {
        "command": ["claude", "-p", "{prompt}", "--output-format", "json"],
        "resume_command": [
            "claude",
            "-p",
            "{prompt}",
            "--output-format",
            "json",
            "--resume",
            "{session_id}",
        ],
        "session_id_from": {"json_field": "session_id"},
        "result_from": {"json_field": "result"},
    },
    "codex": {
        "command": ["codex", "exec", "--json", "{prompt}"],
        "resume_command": ["codex", "exec", "--json", "resume", "{session_id}", "{prompt}"],
        "session_id_from": {"json_field": "thread_id"},
        "result_from": {"json_field": "text"},
    },
    "gemini": {
        "command": ["gemini", "-p", "{prompt}", "--output-format", "json"],
        "resume_command": [
            "gemini",
            "-p",
            "{prompt}",
            "--output-format",
            "json",
            "--resume",
            "{session_id}",
        ],
        "session_id_from": {"json_field": "session_id"},
        "result_from": {"json_field": "response"},
    },
    "opencode": {
        "command": ["opencode", "run", "--format", "json", "{prompt}"],
        "resume_command": [
            "opencode",
            "run",
            "--format",
            "json",
            "--session",
            "{session_id}",
            "{prompt}",
        ],
        "session_id_from": {"json_field": "sessionID"},
        "result_from": {"json_field": "text"},
    },
    "shell": {
        "command": ["sh", "-c", "{prompt}"],
        "resume_command": None,
        "session_id_from": None,
        "result_from": None,
    },
}
