"""Host and peer moves against Redis: the scripts check the same tables as Python; a move the
table refuses writes nothing; the peer indexes follow every status and circle change; projects
are found in one round trip."""

from __future__ import annotations

import secrets

import pytest

from dispatchyard.state import clock, connections, heartbeats, hosts, keys, orgs, peers
from dispatchyard.state.errors import Conflict, NotFound
from dispatchyard.state.models import LUA_MACHINES, HostState, PeerState, may_move
from dispatchyard.state.scripts import _lua_table, library


@pytest.mark.parametrize("name", sorted(LUA_MACHINES))
def test_lua_checks_moves_against_the_same_table(r, name):
    """`may_move` in Lua (lib_common.lua over the table the loader writes) answers as Python's
    for every pair of states, and refuses a state no machine has."""
    table = LUA_MACHINES[name]
    states = sorted(table)
    script = f"""
    local M = {_lua_table(table)}
    {library("lib_common")}
    local out = {{}}
    for i = 1, #ARGV, 2 do
      local current = ARGV[i] ~= "" and ARGV[i]  -- false: a field Redis does not have
      out[#out + 1] = may_move(M, current, ARGV[i + 1]) and 1 or 0
    end
    return out
    """
    pairs = [(a, b) for a in [*states, "nonsense", ""] for b in states]
    answers = r.eval(script, 0, *[x for pair in pairs for x in pair])
    assert answers == [int(may_move(table, a, b)) for a, b in pairs]


def test_a_key_shape_builds_the_same_key_in_lua(r):
    for shape in (keys.session, keys.peer_name, keys.org_mutations_in):
        ids = [f"id{i}" for i in range(shape.template.count("{}"))]
        built = r.eval(f"return ({shape.lua()})(unpack(ARGV))", 0, *ids)
        assert built == shape(*ids)


def _host(r, org, machine_id: str | None = None) -> dict:
    fields = {"hostname": "h", "capacity": 1, "version": None, "projects": "all", "region": None}
    host = hosts.register(
        r, org.id, **fields, machine_id=machine_id, reg_key_id="key_x", now_ms=clock.now_ms()
    )
    assert host is not None
    return host


def test_refused_host_moves_write_nothing(r, org):
    host_id = _host(r, org)["id"]
    assert hosts.deregister(r, host_id, clock.now_ms(), 60) == []
    before = r.hgetall(keys.host(host_id))
    assert before["status"] == HostState.DEREGISTERED
    clock.advance(10)
    # Deregistering again: refused, deregisteredAt unchanged.
    with pytest.raises(NotFound):
        hosts.deregister(r, host_id, clock.now_ms(), 60)
    # A stale heartbeat entry for it: the sweep drops the entry and does not mark it offline.
    # (A cutoff of 0 sweeps only this entry, not the other tests' hosts.)
    r.zadd(keys.HOST_HEARTBEATS, {host_id: 0})
    assert heartbeats.sweep_offline(r, 1000, 1000) == {}
    assert r.hgetall(keys.host(host_id)) == before
    assert r.zscore(keys.HOST_HEARTBEATS, host_id) is None


def test_registration_brings_a_deregistered_host_back_under_its_machine_id(r, org):
    machine = f"m-{secrets.token_hex(3)}"
    first = _host(r, org, machine)
    hosts.deregister(r, first["id"], clock.now_ms(), 60)
    again = _host(r, org, machine)
    assert again["id"] == first["id"] and again["status"] == HostState.ACTIVE


def _peer(r, name: str, circle: str, **fields) -> dict:
    """A registered peer, online: a (simulated) socket holds it."""
    body = {"name": name, "circle": circle, "backend": "claude-code", "path": "/w", **fields}
    peer = peers.register(r, body, clock.now_ms())
    connections.connect(r, peer["peer_id"], "test-node", clock.now_ms())
    return peers.get(r, peer["peer_id"])


def test_refused_peer_moves_write_nothing(r):
    circle = f"c{secrets.token_hex(3)}"
    peer = _peer(r, "refused", circle)
    peer_id = peer["peer_id"]
    key = keys.peer(peer_id)
    peers.set_status(r, peer_id, PeerState.RETIRED, clock.now_ms())
    before = r.hgetall(key)
    clock.advance(5)
    # PEER_TRANSITIONS: a retired peer moves to nothing but offline (a revival) and retired.
    with pytest.raises(Conflict) as refused:
        peers.set_status(r, peer_id, PeerState.ONLINE, clock.now_ms())
    assert refused.value.state == PeerState.RETIRED
    # A registration of the retired identity without a live agent: refused too.
    body = {"name": "refused", "circle": circle, "backend": "claude-code", "path": "/w"}
    with pytest.raises(Conflict) as again:
        peers.register(r, body, clock.now_ms())
    assert again.value.state == PeerState.RETIRED
    with pytest.raises(Conflict):
        connections.connect(r, peer_id, "test-node", clock.now_ms())
    assert r.hgetall(key) == before
    assert not r.sismember(keys.peers_in_state(PeerState.ONLINE), peer_id)
    with pytest.raises(NotFound):
        peers.set_status(r, "repow-nobody-00000000", PeerState.OFFLINE, 1)


def ids(found: list[dict]) -> list[str]:
    return [p["peer_id"] for p in found]


def test_peer_indexes_follow_status_and_circle(r):
    circle, other = f"c{secrets.token_hex(3)}", f"c{secrets.token_hex(3)}"
    a = _peer(r, "a", circle)
    b = _peer(r, "b", circle, path="/elsewhere")
    # From the circle's index, in the order of the unindexed list (registration, then id).
    in_circle = ids(peers.list_all(r, circle=circle))
    assert in_circle == [p["peer_id"] for p in peers.list_all(r) if p["circle"] == circle]
    assert sorted(in_circle) == sorted([a["peer_id"], b["peer_id"]])
    assert ids(peers.list_all(r, circle=circle, path="/w")) == [a["peer_id"]]
    assert peers.find_online(r, path="/w", backend="claude-code", circle=circle)["name"] == "a"

    peers.set_status(r, a["peer_id"], PeerState.OFFLINE, clock.now_ms())
    assert ids(peers.list_all(r, circle=circle, status=PeerState.ONLINE)) == [b["peer_id"]]
    assert ids(peers.list_all(r, circle=circle, status=PeerState.OFFLINE)) == [a["peer_id"]]
    assert peers.find_online(r, path="/w", backend="claude-code", circle=circle) is None
    # Marking it offline again is a repeated report, not a refused move.
    peers.set_status(r, a["peer_id"], PeerState.OFFLINE, clock.now_ms())

    # Registering again (by id, into another circle) while its socket still holds it brings it
    # online and moves its circle.
    moved = _peer(r, "a", other, peer_id=a["peer_id"])
    assert moved["peer_id"] == a["peer_id"] and moved["status"] == PeerState.ONLINE
    assert ids(peers.list_all(r, circle=circle)) == [b["peer_id"]]
    assert ids(peers.list_all(r, circle=other, status=PeerState.ONLINE)) == [a["peer_id"]]
    assert ids(peers.list_all(r, circle=circle, status=PeerState.OFFLINE)) == []


def test_find_projects_by_id_or_slug_in_one_call(r, org):
    mine = orgs.create_project(r, org.id, "mine", "Mine", None, clock.now_ms())
    other_org = orgs.create_org(r, "O", f"o-{secrets.token_hex(3)}", clock.now_ms())
    theirs = orgs.create_project(r, other_org["id"], "theirs", "T", None, clock.now_ms())
    found = orgs.find_projects(r, org.id, [mine["id"], "mine", theirs["id"], "theirs", "nope"])
    assert [p and p["id"] for p in found] == [mine["id"], mine["id"], None, None, None]
    assert orgs.get_projects(r, org.id, [theirs["id"], mine["id"], "mine"]) == [
        None,
        orgs.get_project(r, org.id, mine["id"]),
        None,
    ]
    assert orgs.find_projects(r, org.id, []) == []
