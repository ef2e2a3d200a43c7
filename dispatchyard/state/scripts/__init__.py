"""Loads every `*.lua` here once per Redis client, by file name.

A line `--! include NAME` is replaced by `NAME.lua` so shared Lua functions are written once.
"""

from __future__ import annotations

import re
import weakref
from pathlib import Path
from typing import Any

import redis

_DIR = Path(__file__).parent
_INCLUDE = re.compile(r"^--! include (\w+)\s*$", re.M)


def _source(name: str) -> str:
    text = (_DIR / f"{name}.lua").read_text()
    return _INCLUDE.sub(lambda m: _source(m.group(1)), text)


_SOURCES = {p.stem: _source(p.stem) for p in _DIR.glob("*.lua") if not p.stem.startswith("lib_")}


class Scripts:
    """`Scripts(r).enqueue_session(keys=[..], args=[..])` runs `enqueue_session.lua` by EVALSHA."""

    def __init__(self, r: redis.Redis) -> None:
        self._scripts = {name: r.register_script(src) for name, src in _SOURCES.items()}

    def __getattr__(self, name: str) -> Any:
        try:
            return self._scripts[name]
        except KeyError:
            raise AttributeError(name) from None


_cache: weakref.WeakKeyDictionary[redis.Redis, Scripts] = weakref.WeakKeyDictionary()


def scripts(r: redis.Redis) -> Scripts:
    s = _cache.get(r)
    if s is None:
        s = _cache[r] = Scripts(r)
    return s


def source(name: str) -> str:
    """The full text of a script (includes expanded), e.g. for redis-benchmark."""
    return _SOURCES[name]
