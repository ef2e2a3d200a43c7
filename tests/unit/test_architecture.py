"""The import graph points one way (docs/architecture.md): api_shim -> state and task names,
tasks -> state and workers, workers -> state, state -> Redis and pure libraries only, the CLI ->
state and settings, the developer tools (tools/) -> the shim and settings, and nothing -> tools;
and no module imports itself back through others."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("dispatchyard", "api_shim", "tasks", "workers", "tools")
TOP_MODULES = ("beat_schedule",)
STATE = "dispatchyard.state"
SETTINGS = "dispatchyard.settings"
CLIENTS = "dispatchyard.clients"

# What each part may import from the project, besides itself.
ALLOWED = {
    STATE: set(),
    # The settings read two pure modules: the Redis URL forms and the shipped agent backends.
    SETTINGS: {"dispatchyard.redis_urls", "dispatchyard.agent_backends"},
    "dispatchyard.redis_urls": set(),
    "dispatchyard.agent_backends": set(),
    # The Redis clients every process builds from the settings.
    CLIENTS: {SETTINGS, "dispatchyard.redis_urls"},
    "dispatchyard.cli": {STATE, SETTINGS, CLIENTS, "dispatchyard.redis_urls", "beat_schedule"},
    # tmux calls, shared by the pane routes and the pane hook: the standard library only.
    "dispatchyard.tmux": set(),
    # The pane hook is a WebSocket client program beside the agent: no shim, no state.
    "dispatchyard.pane_hook": {"dispatchyard.tmux"},
    # The shim reads tmux for its pane routes and starts the pane hook program.
    "api_shim": {
        STATE,
        SETTINGS,
        CLIENTS,
        "tasks.names",
        "dispatchyard.tmux",
        "dispatchyard.pane_hook",
    },
    "tasks": {STATE, "workers", SETTINGS, CLIENTS, "tasks.names"},
    "workers": {
        STATE,
        SETTINGS,
        CLIENTS,
        "dispatchyard.redis_urls",
        "tasks.names",
        "beat_schedule",
    },
    "beat_schedule": {"tasks.names"},
    # Developer tools (the docs renderers) read the shim and the settings; nothing imports them.
    "tools": {"api_shim", SETTINGS, STATE},
}
# Third-party packages `state/` may use: it knows Redis and pure libraries, nothing else.
STATE_LIBRARIES = {"redis", "pydantic", "croniter"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (imports inside functions count)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module_name(path).rsplit(".", 1)[0] if path.name != "__init__.py" else None
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = f"{package or module_name(path)}.{base}".rstrip(".")
            found.add(base)
            # `from dispatchyard.state import jobs` imports the module dispatchyard.state.jobs.
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def project_modules() -> dict[str, Path]:
    files = [p for part in PACKAGES for p in (ROOT / part).rglob("*.py")]
    files += [ROOT / f"{name}.py" for name in TOP_MODULES]
    return {module_name(p): p for p in files}


MODULES = project_modules()


def part_of(module: str) -> str:
    """The part a module belongs to: `tasks.names` alone, the core's subpackages
    (`dispatchyard.state`, `.settings`, `.cli`) each on its own, else its top package."""
    if module == "tasks.names":
        return module
    top = module.split(".")
    return ".".join(top[:2]) if top[0] == "dispatchyard" and len(top) > 1 else top[0]


def project_imports(module: str) -> set[str]:
    found = {m for m in imports_of(MODULES[module]) if m in MODULES}
    # `from tasks import names` names the package only to reach its submodule.
    return {m for m in found if not any(other.startswith(m + ".") for other in found)}


@pytest.mark.parametrize("module", sorted(m for m in MODULES if part_of(m) in ALLOWED))
def test_imports_point_one_way(module):
    part = part_of(module)
    wrong = {
        m
        for m in project_imports(module)
        if part_of(m) != part
        and part_of(m) not in ALLOWED[part]
        and m not in ALLOWED[part]
        # `from tasks import names` and the like name a package only to reach a submodule.
        and m not in ("dispatchyard",)
    }
    assert not wrong, f"{module} imports {sorted(wrong)} against docs/architecture.md"


@pytest.mark.parametrize("module", sorted(m for m in MODULES if part_of(m) == STATE))
def test_state_uses_only_redis_and_pure_libraries(module):
    outside = {
        m.split(".")[0]
        for m in imports_of(MODULES[module])
        if m.split(".")[0] not in (*sys.stdlib_module_names, "__future__") and part_of(m) != STATE
    }
    assert outside <= STATE_LIBRARIES, f"{module} imports {sorted(outside - STATE_LIBRARIES)}"


def test_task_names_import_nothing():
    assert project_imports("tasks.names") == set()


def test_no_import_cycle():
    graph = {m: project_imports(m) - {m} for m in MODULES}
    # A package's __init__ importing its own submodules (to register routes) is not a cycle
    # of dependencies between parts; only edges between different modules' files count.
    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            cycle = [*visiting[visiting.index(module) :], module]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        visiting.append(module)
        for target in sorted(graph[module]):
            if not module.startswith(target + "."):  # a submodule importing its package
                visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
