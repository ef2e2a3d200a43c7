"""docs/api.md and docs/configuration.md are generated (`python -m api_shim.openapi
--markdown docs/api.md --configuration docs/configuration.md`); the committed files must equal
a fresh render, so they cannot drift from the routes, their models or settings.py."""

from __future__ import annotations

from pathlib import Path

from api_shim import openapi

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = (
    "python -m api_shim.openapi --markdown docs/api.md --configuration docs/configuration.md"
)


def test_api_reference_is_current() -> None:
    assert (DOCS / "api.md").read_text() == openapi.render_markdown(), f"run: {REGENERATE}"


def test_configuration_reference_is_current() -> None:
    assert (DOCS / "configuration.md").read_text() == openapi.configuration_markdown(), (
        f"run: {REGENERATE}"
    )


def test_configuration_lists_every_setting() -> None:
    from dispatchyard.settings import Settings

    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`DISPATCHYARD_{name.upper()}`" in text


def test_api_reference_lists_every_operation(tmp_path: Path) -> None:
    text = (DOCS / "api.md").read_text()
    doc = openapi.document(openapi.build_app(str(tmp_path)))
    for path, methods in doc["paths"].items():
        for method in methods:
            assert f"### `{method.upper()} {path}`" in text
