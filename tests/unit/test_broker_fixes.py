"""The kombu fix is applied only to the kombu versions it was checked against."""

from __future__ import annotations

import logging

import kombu
from kombu.transport import redis as redis_transport

from workers import broker_fixes


def test_the_installed_kombu_is_a_checked_one_and_is_patched():
    # pyproject.toml keeps kombu in the checked range, so the worker always runs patched.
    assert broker_fixes.apply() is True
    assert redis_transport.Channel.close is broker_fixes._close


def test_an_unchecked_kombu_is_left_alone(monkeypatch, caplog):
    monkeypatch.setattr(redis_transport.Channel, "close", broker_fixes._original_close)
    monkeypatch.setattr(kombu, "__version__", "5.9.0")
    # Celery's logging setup (an in-process worker earlier in the run) may have disabled it.
    monkeypatch.setattr(broker_fixes.log, "disabled", False)
    monkeypatch.setattr(broker_fixes.log, "propagate", True)
    with caplog.at_level(logging.WARNING):
        assert broker_fixes.apply() is False
    assert redis_transport.Channel.close is broker_fixes._original_close
    assert "5.9.0 is not one of the versions" in caplog.text
