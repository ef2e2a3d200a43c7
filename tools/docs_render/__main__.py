"""`python -m tools.docs_render`: write docs/api.md and docs/configuration.md (`--check`: only
say whether they are current)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.docs_render import api_reference, configuration

DOCS = Path(__file__).resolve().parents[2] / "docs"
RENDERERS = {"api.md": api_reference.render, "configuration.md": configuration.render}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.docs_render")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    stale = []
    for name, render in RENDERERS.items():
        path = DOCS / name
        text = render()
        if path.exists() and path.read_text() == text:
            continue
        stale.append(name)
        if not args.check:
            path.write_text(text)
    for name in stale:
        print(f"docs/{name}: {'stale' if args.check else 'written'}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
