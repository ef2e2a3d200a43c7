"""Retention's pure parts: which setting a kind reads, and Redis memory against maxmemory."""

from __future__ import annotations

from dispatchyard.settings import Settings
from dispatchyard.state.models import Final
from dispatchyard.state.stats import Memory
from tasks.retention import retention_s


def test_a_kind_without_its_own_retention_reads_the_default():
    s = Settings(retention_s=100, retention_jobs_s=5, retention_schedules_s=7)
    assert retention_s(s, Final.JOBS) == 5
    assert retention_s(s, "schedules") == 7
    for kind in (Final.TEMPLATES, Final.SESSIONS, Final.MUTATIONS, Final.HOSTS):
        assert retention_s(s, kind) == 100
    assert Settings().retention_s == 7 * 24 * 3600


def test_memory_is_near_full_from_nine_tenths_of_a_set_maxmemory():
    assert Memory(used=10, limit=0).ratio is None and not Memory(10, 0).near_full
    assert Memory(used=89, limit=100).ratio == 0.89 and not Memory(89, 100).near_full
    assert Memory(used=90, limit=100).near_full and Memory(120, 100).near_full
