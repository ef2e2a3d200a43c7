"""The Lua scripts keep the house rules: each names its KEYS and ARGV once, in locals at its
top; no script spells a key shape (they come from keys.py as `K`); every state a script moves
to is checked against a machine of models.py (`may_move`) or is the machine's initial state."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dispatchyard.state import keys
from dispatchyard.state.scripts import source

SCRIPTS = Path(keys.__file__).parent / "scripts"
ENTRY_POINTS = sorted(p.stem for p in SCRIPTS.glob("*.lua") if not p.stem.startswith("lib_"))
LIBRARIES = sorted(p.stem for p in SCRIPTS.glob("lib_*.lua"))
INDEXED = re.compile(r"\b(KEYS|ARGV)\[")
# A Lua string that looks like the start of a key: `'peer:'`, `"work:queue"`.
KEY_LITERAL = re.compile(r"""['"][a-z_]+:[a-z_:]*['"]""")


def code_lines(name: str) -> list[str]:
    text = (SCRIPTS / f"{name}.lua").read_text()
    return [line for line in text.splitlines() if line.strip() and not line.startswith("--")]


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_keys_and_argv_are_named_once_at_the_top(name):
    lines = code_lines(name)
    # The header: `local` lines and their continuation lines (indented).
    first_statement = next(
        (i for i, line in enumerate(lines) if not re.match(r"^(local \w|\s)", line)), len(lines)
    )
    for i, line in enumerate(lines):
        # Only named locals read KEYS/ARGV (a loop over a variable number of KEYS may also
        # index them: find_projects, renew_connections).
        if INDEXED.search(line) and not ("for " in line or "KEYS[i" in line or "unpack" in line):
            assert i < first_statement, f"{name}.lua indexes KEYS/ARGV in the body: {line!r}"


@pytest.mark.parametrize("name", ENTRY_POINTS + LIBRARIES)
def test_no_script_spells_a_key(name):
    for line in code_lines(name):
        assert not KEY_LITERAL.search(line), f"{name}.lua spells a key: {line!r}"


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_every_script_loads_with_what_it_asks_for(name):
    text = source(name)
    assert not re.search(r"^--! ", text, re.M), "every directive is expanded"
    used = set(re.findall(r"\bK\.(\w+)", text))
    declared = re.search(r"^local K = \{(.*)\}$", text, re.M)
    names = set(re.findall(r"(\w+) = ", declared.group(1))) if declared else set()
    assert used <= names, f"{name}.lua uses K.{sorted(used - names)} without `--! keys`"


def test_a_shape_takes_exactly_its_ids():
    assert keys.peer_name("c", "n") == "peer:name:c:n"
    with pytest.raises(TypeError):
        keys.peer_name("c")
