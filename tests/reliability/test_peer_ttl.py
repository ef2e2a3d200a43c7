"""A shim process holding peers' WebSockets is SIGKILLed (the gunicorn master and all its
workers at once): nothing of it runs to say its peers left, yet through another shim on the same
Redis they read offline within the connection TTL (README "The agent mesh": "If that process
dies its peers go offline within 30 s"), since each peer's connection key expires unless the
holder renews it.

The TTL is `DISPATCHYARD_PEER_CONNECTION_TTL_S`, 30 s by default, short here. The holder renews
every third of it, so a killed holder's keys outlive it by two thirds of the TTL to all of it.
Nothing is delivered to the peers after the kill (a delivery that finds the holder gone takes
the peer offline at once, which would prove nothing of the TTL).
"""

from __future__ import annotations

import secrets
import signal
import time

from tests.support.mesh_client import MeshPeer
from tests.support.stack import Stack
from tests.support.waits import wait_for

TTL_S = 4.0
PEERS = 4
SLACK_S = 1.5  # polling, and a busy two-core machine answering the read


def test_peers_of_a_killed_shim_read_offline_through_another_within_the_ttl(tmp_path):
    ttl = {"DISPATCHYARD_PEER_CONNECTION_TTL_S": str(TTL_S)}
    with Stack(tmp_path / "holder", **ttl) as holder:
        holder.gunicorn()
        with Stack(tmp_path / "reader", redis_url=holder.redis_url, **ttl) as reader:
            reader.gunicorn()
            tag = secrets.token_hex(3)
            peers = [MeshPeer(holder.url, f"ttl-{tag}-{i}") for i in range(PEERS)]
            try:

                def status(peer: MeshPeer) -> str:
                    resp = reader.api.get(f"/peers/{peer.name}")
                    assert resp.status_code == 200, resp.text
                    return str(resp.json()["status"])

                # Held by the first shim, online as the second reads them.
                assert [status(p) for p in peers] == ["online"] * PEERS
                # Renewed (not merely connected): still online past the TTL, holder alive.
                connected = time.monotonic()
                wait_for(
                    lambda: (
                        time.monotonic() - connected > TTL_S * 1.5
                        and all(status(p) == "online" for p in peers)
                    ),
                    timeout=TTL_S * 3,
                    interval=0.2,
                    message="the peers to stay online while their holder lives",
                )
                assert all(status(p) == "online" for p in peers)

                holder.stop("shim", sig=signal.SIGKILL)
                killed = time.monotonic()
                offline_after: dict[str, float] = {}

                def all_offline() -> bool:
                    for p in peers:
                        if p.name not in offline_after and status(p) == "offline":
                            offline_after[p.name] = round(time.monotonic() - killed, 2)
                    return len(offline_after) == PEERS

                wait_for(all_offline, timeout=TTL_S + 15, interval=0.05, message="offline")
            finally:
                for p in peers:
                    p.close()
    figures = {"ttl_s": TTL_S, "offline_after_kill_s": sorted(offline_after.values())}
    print(f"\npeer ttl figures: {figures}")
    # Within the TTL (and its read), and not before the keys could have expired by themselves.
    assert max(offline_after.values()) <= TTL_S + SLACK_S, figures
    assert min(offline_after.values()) >= TTL_S / 3, figures
