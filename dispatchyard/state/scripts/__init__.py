"""Loads every `*.lua` here once per Redis client, by file name, and runs it by EVALSHA.

A script's header may ask for what it shares with Python, so nothing is spelled twice:

- `--! include NAME` pastes `NAME.lua` (shared Lua functions, `lib_*.lua`);
- `--! keys a b` defines `K.a`, `K.b` from `keys.py`: a fixed key as a string, a key shape as
  a function of its ids (`K.session(id)`);
- `--! machines session host` defines `SESSION`, `HOST`: the state machines of `models.py` as
  Lua tables `{state = {target = true}}`, for `may_move(SESSION, current, target)`.

The definitions come first, then the included libraries, then the script, so a library may
use what its own header asks for. A script refuses with `return refuse(kind, message, fields)`
(lib_common.lua); running it raises the matching `errors.StateError`.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import redis
from redis.client import Pipeline
from redis.commands.core import Script

from dispatchyard.state import errors, keys
from dispatchyard.state.models import LUA_MACHINES

_DIR = Path(__file__).parent
_DIRECTIVE = re.compile(r"^--! (include|keys|machines) (.+?)\s*$", re.M)


def _lua_table(machine: Mapping[Any, Any]) -> str:
    rows = []
    for state, targets in sorted(machine.items()):
        inner = ", ".join(f"['{t}'] = true" for t in sorted(targets))
        rows.append(f"['{state}'] = {{{inner}}}")
    return "{" + ", ".join(rows) + "}"


def _collect(name: str, found: dict[str, list[str]]) -> str:
    """The script's text with its includes pasted in; what every part asks for lands in
    `found` (includes, keys, machines, in order of first mention)."""
    text = (_DIR / f"{name}.lua").read_text()

    def directive(m: re.Match[str]) -> str:
        kind, names = m.group(1), m.group(2).split()
        if kind == "include":
            out = []
            for lib in names:
                if lib not in found["include"]:
                    found["include"].append(lib)
                    out.append(_collect(lib, found))
            return "\n".join(out)
        for item in names:
            if item not in found[kind]:
                found[kind].append(item)
        return ""

    return _DIRECTIVE.sub(directive, text)


def _source(name: str) -> str:
    found: dict[str, list[str]] = {"include": [], "keys": [], "machines": []}
    body = _collect(name, found)
    prelude = []
    if found["keys"]:
        entries = ", ".join(f"{k} = {keys.lua_entry(k)}" for k in found["keys"])
        prelude.append(f"local K = {{{entries}}}")
    for machine in found["machines"]:
        prelude.append(f"local {machine.upper()} = {_lua_table(LUA_MACHINES[machine])}")
    return "\n".join([*prelude, body])


_SOURCES = {p.stem: _source(p.stem) for p in _DIR.glob("*.lua") if not p.stem.startswith("lib_")}


class Runner:
    """One loaded script: `runner(keys=[..], args=[..])`, its refusals raised as StateError."""

    __slots__ = ("_script",)

    def __init__(self, script: Script) -> None:
        self._script = script

    def __call__(
        self,
        keys: Sequence[str] = (),
        args: Sequence[Any] = (),
        client: redis.Redis | redis.client.Pipeline | None = None,
    ) -> Any:
        try:
            script = self._script
            if client is None and not isinstance(script.registered_client, Pipeline):
                # Straight to EVALSHA, the hot path of every state call (redis-py's Script
                # call adds a per-call import and copies); a server that lost its scripts
                # (restarted, flushed) answers NOSCRIPT and the Script call loads it again.
                # (A pipeline must go through the Script call: it loads its scripts first.)
                with contextlib.suppress(redis.exceptions.NoScriptError):
                    return cast(Any, script.registered_client).execute_command(
                        "EVALSHA", script.sha, len(keys), *keys, *args
                    )
            return self._script(keys=list(keys), args=list(args), client=client)
        except redis.exceptions.ResponseError as e:
            errors.raise_refusal(str(e))
            raise


class Scripts:
    """`Scripts(r).enqueue_session(keys=[..], args=[..])` runs `enqueue_session.lua`."""

    def __init__(self, r: redis.Redis) -> None:
        self._runners = {name: Runner(r.register_script(src)) for name, src in _SOURCES.items()}

    def __getattr__(self, name: str) -> Runner:
        try:
            return self._runners[name]
        except KeyError:
            raise AttributeError(name) from None


_cache: weakref.WeakKeyDictionary[redis.Redis, Scripts] = weakref.WeakKeyDictionary()


def scripts(r: redis.Redis) -> Scripts:
    s = _cache.get(r)
    if s is None:
        s = _cache[r] = Scripts(r)
    return s


def library(name: str) -> str:
    """The text of a shared library (`lib_*.lua`), for tests that run its functions."""
    return (_DIR / f"{name}.lua").read_text()


def source(name: str) -> str:
    """The full text of a script (definitions and includes expanded), e.g. for
    redis-benchmark."""
    return _SOURCES[name]
