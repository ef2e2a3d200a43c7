"""`GET /asks/open` (docs/decisions.md): the open asks and blocking questions of the whole mesh,
newest first, at most 200, read from one index (`asks:open`) kept in the transaction that opens
an ask and the script that resolves it. Resolved asks leave the index, whichever way they were
resolved (an ack, an ack with a reply, an answer, a blocking question's timeout), so the list
stays full at its cap with the next older open asks rather than thinning out.

The suite's Redis is shared: the clock is moved a year ahead so this test's asks are the
newest, and every ask it opened is acked afterwards (the index is left as it was found).
"""

from __future__ import annotations

import secrets
import threading

import pytest

from dispatchyard.state import clock, keys
from tests.support.http import Api
from tests.support.mesh_client import MeshPeer
from tests.support.waits import wait_for

CAP = 200  # api_shim/daemon/dashboard.py OPEN_SHOWN, as the decision states it
SENDERS = 8  # asks are spread over senders, each well within its peer budget


def shown(api: Api) -> list[str]:
    resp = api.get("/asks/open")
    assert resp.status_code == 200, resp.text
    return [a["correlation_id"] for a in resp.json()["asks"]]


@pytest.fixture
def recipient(api):
    """A peer online over the mesh WebSocket (an ask needs a live recipient), and its circle."""
    circle = f"open-{secrets.token_hex(3)}"
    peer = MeshPeer(api.base, f"bob-{circle}", circle)
    yield peer, circle
    peer.close()


@pytest.fixture
def opened(api):
    """Correlation ids of the asks a test opened; those still open are acked after it."""
    ids: list[str] = []
    yield ids
    for cid in ids:
        api.post("/ack", json={"correlation_id": cid})


def test_resolved_asks_leave_the_index_and_the_list_keeps_its_cap(api, r, recipient, opened):
    clock.advance(365 * 24 * 3600)
    peer, circle = recipient
    tag = secrets.token_hex(3)

    def ask(i: int, **extra) -> str:
        resp = api.post(
            "/ask",
            json={
                "from_peer": f"asker-{tag}-{i % SENDERS}",
                "to_peer": peer.name,
                "text": f"open {i}",
                "circle": circle,
                **extra,
            },
        )
        assert resp.status_code == 200, resp.text
        cid = resp.json()["correlation_id"]
        opened.append(cid)
        clock.advance(0.002)  # distinct opening times: a strict newest-first order
        return cid

    older = [ask(i) for i in range(CAP + 10)]
    newest_first = older[::-1]
    assert shown(api) == newest_first[:CAP], "the newest 200, newest first"

    # Resolve the four newest, each a different way.
    acked, replied, answered, late = newest_first[:4]
    assert api.post("/ack", json={"correlation_id": acked}).status_code == 200
    reply = api.post("/ack", json={"correlation_id": replied, "message": "done"})
    assert reply.status_code == 200, reply.text
    # `answered` was opened as a plain ask: /answer is for questions, so open one.
    question = ask(
        CAP + 10,
        question={
            "kind": "choice",
            "prompt": "ship it?",
            "options": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
        },
    )
    assert shown(api)[0] == question
    resp = api.post("/answer", json={"correlation_id": question, "option_id": "yes"})
    assert resp.status_code == 200, resp.text
    assert api.post("/ack", json={"correlation_id": answered}).status_code == 200
    assert api.post("/ack", json={"correlation_id": late}).status_code == 200

    # A blocking question is listed while it is held, and leaves when its cap resolves it.
    held = f"held-{tag}"
    outcome: dict = {}
    waiter = threading.Thread(
        target=lambda: outcome.update(
            Api(api.base)
            .post(
                "/questions/ask-blocking",
                json={"prompt": "proceed?", "timeout_seconds": 1, "correlation_id": held},
            )
            .json()
        ),
        daemon=True,
    )
    waiter.start()
    opened.append(held)
    wait_for(lambda: held in shown(api), timeout=10, message="the blocking question listed")
    waiter.join(15)
    assert not waiter.is_alive() and outcome, "the question's 1 s cap did not release it"

    resolved = {acked, replied, answered, late, question, held}
    for cid in resolved:
        assert r.zscore(keys.ASKS_OPEN, cid) is None, f"{cid} still in the index"
    # Still full at its cap: the resolved ones gave their places to the next older ones.
    assert shown(api) == newest_first[4 : 4 + CAP]
    assert not resolved & set(shown(api))
