"""Fixtures of the e2e tests: real gunicorn, Celery worker and beat processes, on a Redis of
their own (tests/support/stack.py), so a test passes through them or not at all."""

from __future__ import annotations

import pytest

from tests.support.stack import full_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with full_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s
