"""Fixtures of the e2e tests: real gunicorn, Celery worker and beat processes
(tests/support/stack.py)."""

from __future__ import annotations

import pytest

from tests.support.stack import full_stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with full_stack(tmp_path_factory.mktemp("stack")) as s:
        yield s
