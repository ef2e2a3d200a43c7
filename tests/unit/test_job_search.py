"""The jobs list's search rules (state/job_search.py): which words of a title are indexed, which
index keys a job belongs in, and how a record listed without an index is matched."""

from __future__ import annotations

import pytest

from dispatchyard.state import job_search


def test_words_are_lower_case_distinct_and_bounded():
    assert job_search.words("Nightly BUILD of x, nightly-build #42 ünïcode") == [
        "nightly",
        "build",
        "of",
        "42",
        "ünïcode",
    ]
    assert job_search.words("a " + "y" * 41) == []  # too short, too long
    assert len(job_search.words(" ".join(f"w{i}" for i in range(40)))) == job_search.MAX_WORDS
    assert job_search.words(None) == []


def test_index_keys_of_a_job():
    doc = {
        "title": "Deploy api",
        "assigned_peer_id": "repow-x",
        "execution": {"target": {"backend": "codex", "path": "/srv"}},
    }
    assert job_search.index_keys(doc) == {
        "jobs:by:word:deploy",
        "jobs:by:word:api",
        "jobs:by:backend:codex",
        "jobs:by:peer:repow-x",
    }
    assert job_search.index_keys({"title": "", "execution": {}}) == set()
    # Every peer it was assigned (as asked, and now) or delivered to: a job's keys only grow.
    handed = {
        **doc,
        "assigned_peer_id": "repow-z",
        "request": {"execution": {"target": {"assigned_peer_id": "repow-x"}}},
        "runner": {"attempts": [{"assigned_peer_id": "repow-y"}, {"assigned_peer_id": "repow-z"}]},
    }
    peers = {k for k in job_search.index_keys(handed) if k.startswith("jobs:by:peer:")}
    assert peers == {f"jobs:by:peer:repow-{p}" for p in "xyz"}


def test_a_q_needs_a_word():
    keys = job_search.filter_keys({"q": "Deploy API", "backend": "shell"})
    assert [(name, value) for _, name, value in keys] == [
        ("backend", "shell"),
        ("q", "deploy"),
        ("q", "api"),
    ]
    with pytest.raises(ValueError, match="q must hold a word"):
        job_search.filter_keys({"q": "- !"})


def test_matches_as_the_indexes_would():
    doc = {
        "title": "Hourly triage of the inbox",
        "circle": "ops",
        "assigned_peer_id": None,
        "execution": {"target": {"backend": "claude-code"}},
    }
    assert job_search.matches(doc, {"q": "TRIAGE inbox", "backend": "claude-code", "circle": "ops"})
    assert not job_search.matches(doc, {"q": "triage mail"})
    assert not job_search.matches(doc, {"q": "tria"})  # whole words
    assert not job_search.matches(doc, {"backend": "codex"})
    assert not job_search.matches(doc, {"peer": "repow-x"})
    assert not job_search.matches(doc, {"circle": "dev"})
