"""Agent backends are data (settings): how to start one, how to resume one, and how to read
its runtime session id and result from what it printed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TAIL_CHARS = 2000


@dataclass(frozen=True)
class Backend:
    name: str
    command: list[str]
    resume_command: list[str] | None
    session_id_from: dict[str, Any] | None
    result_from: dict[str, Any] | None

    @classmethod
    def from_settings(cls, name: str, spec: dict[str, Any]) -> Backend:
        return cls(
            name=name,
            command=list(spec["command"]),
            resume_command=list(spec["resume_command"]) if spec.get("resume_command") else None,
            session_id_from=spec.get("session_id_from"),
            result_from=spec.get("result_from"),
        )

    @property
    def can_resume(self) -> bool:
        return self.resume_command is not None

    def argv(self, prompt: str, path: str, session_id: str | None = None) -> list[str]:
        """The command line for one fire; placeholders are whole arguments, never a shell."""
        template = self.resume_command if session_id and self.resume_command else self.command
        values = {"prompt": prompt, "path": path, "session_id": session_id or ""}
        return [part.format_map(values) for part in template]

    def session_id(self, stdout: str) -> str | None:
        return _json_field(stdout, self.session_id_from)

    def result(self, stdout: str) -> str:
        """The parsed result, else the tail of stdout."""
        found = _json_field(stdout, self.result_from)
        return found if found is not None else stdout.strip()[-TAIL_CHARS:]


def _json_field(stdout: str, rule: dict[str, Any] | None) -> str | None:
    """The last value of `rule["json_field"]` among the JSON objects printed (one per line,
    or the whole output as one document)."""
    if not rule or "json_field" not in rule:
        return None
    name = rule["json_field"]
    documents = [stdout]
    documents += reversed([line for line in stdout.splitlines() if line.startswith("{")])
    for text in documents:
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get(name), str | int | float):
            return str(value[name])
    return None
