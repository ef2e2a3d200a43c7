"""repowire 0.17.0's own typed client, `repowire.client.AsyncRepowireClient` — a real client no
one here wrote — drives dispatchyard for every method whose route dispatchyard serves, and
decodes every answer with its own models. (`spawn`, `spawn_config`, `kill_peer`,
`restart_peer` and `resume_session` drive repowire's tmux spawner, which dispatchyard does
not serve.)"""

from __future__ import annotations

import asyncio
import secrets

import pytest
from repowire import client as repowire_client
from repowire.protocol.errors import DaemonHTTPError

from tests.support.mesh_client import MeshPeer


def run(coro):
    return asyncio.run(coro)


@pytest.fixture
def circle() -> str:
    return f"c{secrets.token_hex(3)}"


async def _client_session(shim_url, circle, bob: MeshPeer):
    async with repowire_client.AsyncRepowireClient(shim_url) as client:
        health = await client.health()
        assert health.status == "ok" and health.version

        # set_circle and mark_peer_offline name a peer without a circle: a unique name.
        alice_name = f"alice-{circle}"
        registered = await client.register_peer(
            alice_name, circle=circle, path="/tmp/alice", backend="codex", metadata={"team": "a"}
        )
        assert registered.ok and registered.display_name == alice_name
        alice = await client.get_peer(registered.peer_id)
        assert (alice.name, alice.circle, alice.backend) == (alice_name, circle, "codex")
        assert alice.status == "offline"  # registered, but no live transport
        assert alice.metadata == {"team": "a"}

        listed = await client.list_peers(backend="claude-code")
        assert bob.peer_id in [p.peer_id for p in listed]
        online = await client.list_peers(status="online")
        assert bob.peer_id in [p.peer_id for p in online]
        assert registered.peer_id not in [p.peer_id for p in online]

        by_name = await client.get_peer("bob", circle=circle)
        assert by_name.peer_id == bob.peer_id and by_name.status == "online"

        await client.set_description("bob", "reviewing PR 7", circle=circle)
        assert (await client.get_peer(bob.peer_id)).description == "reviewing PR 7"
        await client.touch_peer("bob", circle=circle)

        ask = await client.ask("bob", "ready?", from_peer=alice_name, circle=circle)
        assert ask.correlation_id.startswith("ask-") and ask.error is None
        assert bob.expect("ask")["correlation_id"] == ask.correlation_id
        pending = await client.pending_asks(peer_id=bob.peer_id)
        assert [p.correlation_id for p in pending] == [ask.correlation_id]
        assert pending[0].direction == "inbound" and pending[0].from_peer == alice_name
        outbound = await client.pending_asks(peer_id=registered.peer_id, direction="outbound")
        assert [p.correlation_id for p in outbound] == [ask.correlation_id]
        await client.ack(ask.correlation_id, from_peer="bob")
        assert await client.pending_asks(peer_id=bob.peer_id) == []

        await client.notify("bob", "fyi", from_peer=alice_name, circle=circle)
        assert bob.expect("notify")["text"] == "fyi"

        sent = await client.broadcast("all hands", from_peer=alice_name)
        assert "bob" in sent.sent_to  # display names, as repowire serve answers
        assert bob.expect("broadcast")["text"] == "all hands"

        events = await client.events()
        assert any(e.type == "notify" for e in events)
        await client.ingest_chat_turn("bob", "assistant", "done", peer_id=bob.peer_id)

        uploaded = await client.upload_attachment(b"\x00bytes\xff", filename="blob.bin")
        assert uploaded.size == 7 and uploaded.filename == "blob.bin"
        assert await client.download_attachment(uploaded.id) == b"\x00bytes\xff"

        status = await client.orchestrator_status(circle)
        assert status.circle == circle and status.present is False

        await client.set_circle(alice_name, circle)
        cancelled = await client.mark_peer_offline(alice_name)
        assert cancelled == 0
        await client.unregister_peer(alice_name, circle=circle)
        with pytest.raises(DaemonHTTPError) as missing:
            await client.get_peer(registered.peer_id)
        assert missing.value.status == 404


def test_repowire_typed_client_against_dispatchyard(shim_url, circle):
    bob = MeshPeer(shim_url, "bob", circle)
    try:
        run(_client_session(shim_url, circle, bob))
    finally:
        bob.close()


def test_repowire_query_and_by_pane(shim_url, circle):
    pane = f"%{secrets.randbelow(10**6)}"
    bob = MeshPeer(shim_url, "bob", circle, pane_id=pane)

    async def session():
        async with repowire_client.AsyncRepowireClient(shim_url) as client:
            assert (await client.get_peer_by_pane(pane)).peer_id == bob.peer_id
            answer = asyncio.create_task(client.query(bob.peer_id, "status?", timeout=20))
            frame = await asyncio.to_thread(bob.expect, "query")
            bob.send(type="response", correlation_id=frame["correlation_id"], text="green")
            result = await answer
            assert (result.text, result.error) == ("green", None)

    try:
        run(session())
    finally:
        bob.close()
