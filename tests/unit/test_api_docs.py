"""The API's declarations and the generated references.

Every route declares what it accepts and answers (`api_shim/declare.py`); the OpenAPI document
is made from those declarations alone. docs/api.md and docs/configuration.md are generated
(`python -m tools.docs_render`); the committed files must equal a fresh render, so they cannot
drift from the routes, their models or settings.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from pydantic import BaseModel, RootModel

from api_shim import bodies, conformance, create_app, declare, errors, openapi
from api_shim.answers import Answer, OpenAnswer
from api_shim.declare import Media
from dispatchyard.settings import Settings
from tools.docs_render import api_reference, configuration

DOCS = Path(__file__).resolve().parents[2] / "docs"
REGENERATE = "python -m tools.docs_render"


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    data_dir = tmp_path_factory.mktemp("docs")
    yield create_app(Settings.model_validate({"dev_mode": True, "data_dir": data_dir}))


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    return openapi.document(app)


def test_api_reference_is_current() -> None:
    assert (DOCS / "api.md").read_text() == api_reference.render(), f"run: {REGENERATE}"


def test_configuration_reference_is_current() -> None:
    assert (DOCS / "configuration.md").read_text() == configuration.render(), f"run: {REGENERATE}"


def test_configuration_lists_every_setting() -> None:
    text = (DOCS / "configuration.md").read_text()
    for name in Settings.model_fields:
        assert f"`DISPATCHYARD_{name.upper()}`" in text


def test_every_setting_says_what_it_means() -> None:
    undescribed = [name for name, f in Settings.model_fields.items() if not f.description]
    assert not undescribed, f"give these a Field(description=...): {undescribed}"


def test_api_reference_lists_every_operation(document: dict[str, Any]) -> None:
    text = (DOCS / "api.md").read_text()
    for path, methods in document["paths"].items():
        for method in methods:
            assert f"### `{method.upper()} {path}`" in text


def test_every_route_is_declared(app: Flask) -> None:
    """A route without a declaration would be missing from the document (whose build refuses
    it), and its answers would go unchecked."""
    undeclared = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint not in openapi.BUILT_IN
        and declare.of(app.view_functions[rule.endpoint]) is None
    ]
    assert not undeclared


def test_every_operation_declares_its_success(app: Flask, document: dict[str, Any]) -> None:
    assert sum(len(methods) for methods in document["paths"].values()) > 80
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            success = [code for code in operation["responses"] if code.startswith("2")]
            assert success, f"{method.upper()} {path} declares no success answer"


def test_answer_models_are_strict(app: Flask) -> None:
    """Answer models are strict (a string is no number), and refuse fields they do not list,
    so a route answering more or other fields fails the conformance check; only a declared
    open shape (the document, whose fields are OpenAPI's) or a root model of them differs."""
    for view in app.view_functions.values():
        declared = declare.of(view)
        for answer in declared.responses.values() if declared else ():
            if not isinstance(answer, Media):
                assert issubclass(answer, Answer | OpenAnswer | RootModel), answer


# ---- The declarations are enforced -------------------------------------------------------------


class Body(BaseModel):
    name: str


class Other(BaseModel):
    name: str


class Named(Answer):
    name: str


def tiny_app(answer: dict[str, Any]) -> Flask:
    """A real Flask app with one declared route, checked as the tests check the shim's."""
    app = Flask(__name__)
    errors.register(app)
    conformance.register(app)

    @app.post("/declared")
    @declare.declare(body=Body, responses={200: Named})
    def declared() -> dict[str, Any]:
        bodies.parse(Body)
        return answer

    @app.post("/drifted")
    @declare.declare(body=Body, responses={200: Named})
    def drifted() -> dict[str, Any]:
        bodies.parse(Other)  # not the declared model
        return answer

    return app


def test_a_route_validating_an_undeclared_model_fails() -> None:
    client = tiny_app({"name": "x"}).test_client()
    assert client.post("/declared", json={"name": "x"}).status_code == 200
    assert client.post("/drifted", json={"name": "x"}).status_code == 500


def test_an_answer_off_its_model_fails_under_the_check() -> None:
    client = tiny_app({"name": "x", "extra": 1}).test_client()
    resp = client.post("/declared", json={"name": "x"})
    assert resp.status_code == 500
    assert "does not match Named" in resp.get_json()["detail"]
