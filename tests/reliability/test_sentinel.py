"""Redis Sentinel: a master, a replica and three sentinels; the master is SIGKILLed while the
shim takes writes. The shim answers 503 (never 500) until the sentinels promote the replica
and 200 again by itself after; writes acknowledged more than the replication lag before the
kill are on the new master; the worker, beat and the hub's subscription follow it too.

Everything runs against its own redis-servers on free ports (no persistence), never the suite's
private Redis, with `DISPATCHYARD_REDIS_URL=sentinel://…` for every process of the stack. The
measured figures are written to `var/test-figures/sentinel_failover.json` (and printed)."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests

from dispatchyard.cli.devstack import free_port, start_redis
from dispatchyard.clients import celery_broker, redbeat_config, redis_client
from dispatchyard.redis_urls import sentinel_url
from dispatchyard.settings import Settings
from dispatchyard.state import keys
from tests.support import records
from tests.support.http import Api
from tests.support.mesh_client import MeshPeer
from tests.support.stack import Stack
from tests.support.waits import wait_for

FIGURES = Path(__file__).resolve().parents[2] / "var" / "test-figures" / "sentinel_failover.json"
MASTER = "dy-sentinel-test"
DOWN_AFTER_MS = 1000
LAG_S = 1.0  # a write acknowledged this long before the kill has surely reached the replica
# What a Celery worker prints when kombu 5.7.0 kills it on a broker connection loss.
KOMBU_CLOSE_CRASH = "Unrecoverable error: AttributeError(\"'NoneType' object has no attribute"


@dataclass
class Topology:
    tmp: Path
    master_port: int = 0
    replica_port: int = 0
    sentinel_ports: list[int] = field(default_factory=list)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"sentinel://{hosts}/0?master={MASTER}"

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, decode_responses=True, socket_connect_timeout=0.5)

    def master_addr(self, port: int) -> int | None:
        """The master's port as the sentinel on `port` sees it."""
        try:
            found = self.node(port).sentinel_get_master_addr_by_name(MASTER)
        except redis.RedisError:
            return None
        return int(found[1]) if found else None


def _sentinel_argv(conf: Path) -> list[str]:
    # Debian's redis-sentinel package is the same binary started in sentinel mode.
    if shutil.which("redis-sentinel"):
        return ["redis-sentinel", str(conf)]
    return ["redis-server", str(conf), "--sentinel"]


@pytest.fixture
def topology(tmp_path):
    topo = Topology(tmp_path)
    try:
        topo.master_port = free_port()
        topo.procs["master"] = start_redis(topo.master_port, tmp_path / "master", persist=False)
        topo.replica_port = free_port()
        conf = tmp_path / "replica.conf"
        conf.write_text(f"replicaof 127.0.0.1 {topo.master_port}\n")
        topo.procs["replica"] = start_redis(
            topo.replica_port, tmp_path / "replica", conf=conf, persist=False
        )
        replica = topo.node(topo.replica_port)
        wait_for(
            lambda: replica.info("replication").get("master_link_status") == "up",
            timeout=15,
            message="the replica to sync",
        )
        for i in range(3):
            port = free_port()
            conf = tmp_path / f"sentinel-{i}.conf"  # sentinels rewrite their own file
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndaemonize no\ndir {tmp_path}\n"
                f"logfile {tmp_path / f'sentinel-{i}.log'}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {topo.master_port} 2\n"
                f"sentinel down-after-milliseconds {MASTER} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {MASTER} 5000\n"
            )
            topo.procs[f"sentinel-{i}"] = subprocess.Popen(
                _sentinel_argv(conf), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            topo.sentinel_ports.append(port)

        def sentinels_ready() -> bool:
            # Each sentinel knows the replica and the two other sentinels: a failover can run.
            try:
                for port in topo.sentinel_ports:
                    s = topo.node(port)
                    if len(s.sentinel_sentinels(MASTER)) != 2 or not s.sentinel_slaves(MASTER):
                        return False
                return True
            except redis.RedisError:
                return False

        wait_for(sentinels_ready, timeout=20, interval=0.1, message="sentinels to meet")
        yield topo
    finally:
        for proc in topo.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)


def test_url_forms():
    target = sentinel_url("sentinel://:pw@h1,h2:26380,[::1]:26381/2?master=m")
    assert target is not None
    assert target.sentinels == (("h1", 26379), ("h2", 26380), ("::1", 26381))
    assert (target.master, target.db, target.password, target.username) == ("m", 2, "pw", None)
    assert sentinel_url("redis://127.0.0.1:6379/0") is None
    url, options = celery_broker("sentinel://u:p%40ss@h1,h2:26380/3?master=m")
    assert url == "sentinel://u:p%40ss@h1:26379/3;sentinel://h2:26380/3"
    assert options["master_name"] == "m"
    assert celery_broker("redis://h:6379/0") == ("redis://h:6379/0", {})
    beat = redbeat_config("sentinel://h1,h2/3?master=m&sentinel_password=s")
    assert beat["redbeat_redis_url"] == "redis-sentinel://h1:26379/3"
    assert beat["redbeat_redis_options"]["sentinel_kwargs"]["password"] == "s"
    for bad in ("sentinel://h1/0", "sentinel://h1/x?master=m", "sentinel://h1/0?master=m&db=1"):
        with pytest.raises(ValueError):
            sentinel_url(bad)


@dataclass
class Load:
    """POST /jobs in a loop, recording every answer with the time it arrived: jobs due much
    later (a pure state write) or, with `fire_now`, no-op shell jobs fired at once (a state
    write and a publish to the broker, then the worker runs them)."""

    base: str
    tmp: Path
    fire_now: bool = False
    answers: list[tuple[float, int, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        http = requests.Session()
        body = {"title": "load", "path": str(self.tmp)}
        if self.fire_now:
            body |= {"prompt": "true", "backend": "shell"}
        else:
            due = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            body |= {"prompt": "p", "backend": "claude-code", "due_at": due}
        while not self.stop.is_set():
            try:
                resp = http.post(f"{self.base}/jobs", json=body, timeout=15)
            except requests.RequestException:
                self.answers.append((time.monotonic(), 0, None))
                continue
            job_id = resp.json().get("job_id") if resp.status_code == 200 else None
            self.answers.append((time.monotonic(), resp.status_code, job_id))
            if resp.status_code != 200 or self.fire_now:
                # Fires are paced (each starts a process); after a 503 a real client would
                # wait Retry-After, this one retries sooner to time the recovery.
                time.sleep(0.05)

    def acked(self, before: float = float("inf"), after: float = 0.0) -> list[str]:
        return [j for t, code, j in self.answers if code == 200 and j and after < t < before]

    def codes(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for _, code, _ in self.answers:
            out[code] = out.get(code, 0) + 1
        return out


def write_figures(figures: dict) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(figures, indent=2) + "\n")


def present_on(node: redis.Redis, job_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(job_ids), 500):
        chunk = job_ids[i : i + 500]
        docs = node.hmget(keys.JOB_DOCS, chunk)
        found |= {j for j, doc in zip(chunk, docs, strict=True) if doc}
    return found


def test_master_killed_under_load_everything_follows(topology, tmp_path):
    url = topology.url
    stack = Stack(tmp_path, redis_url=url)
    state = redis_client(Settings(redis_url=url))  # the state client, through the sentinels
    assert state.ping() and state.connection_pool.get_master_address()[1] == topology.master_port
    writes, fires = Load(stack.url, tmp_path), Load(stack.url, tmp_path, fire_now=True)
    threads = [threading.Thread(target=load.run, daemon=True) for load in (writes, writes, fires)]
    peer = None
    try:
        stack.gunicorn()
        stack.worker()
        stack.beat()
        api = Api(stack.url)
        wait_for(
            lambda: (h := api.get("/health").json())["beat"]["alive"] and h["workers"]["online"],
            timeout=30,
            interval=0.1,
            message="the worker's and beat's first ticks",
        )
        # A peer on a live socket: after the failover a notify must still reach it through the
        # holding process's subscription.
        peer = MeshPeer(stack.url, "sentinel-bob", "sentinel")
        load_started = time.monotonic()
        for t in threads:
            t.start()
        wait_for(
            lambda: time.monotonic() - load_started > 2 * LAG_S and len(fires.acked()) >= 5,
            timeout=20,
            message="some load",
        )

        killed_at = time.monotonic()
        topology.procs["master"].send_signal(signal.SIGKILL)
        topology.procs["master"].wait(5)

        wait_for(
            lambda: any(
                topology.master_addr(p) == topology.replica_port for p in topology.sentinel_ports
            ),
            timeout=30,
            interval=0.05,
            message="the sentinels to promote the replica",
        )
        promoted_s = time.monotonic() - killed_at
        # Requests in flight at the kill may still be answered by the old master: recovery is
        # the first write acknowledged after the shim noticed the outage.
        first_503 = wait_for(
            lambda: next((t for t, code, _ in writes.answers if code == 503 and t > killed_at), 0),
            timeout=10,
            message="the shim to notice the outage",
        )
        first_ok = wait_for(
            lambda: next((t for t, code, _ in writes.answers if code == 200 and t > first_503), 0),
            timeout=30,
            interval=0.05,
            message="the shim to write again",
        )
        recovered_s = first_ok - killed_at
        wait_for(
            lambda: time.monotonic() - first_ok > 2 and fires.acked(after=first_ok),
            timeout=15,
            message="more load after the failover",
        )
        for load in (writes, fires):
            load.stop.set()
        for t in threads:
            t.join(20)

        # 503 while the store or broker is unreachable, 200 otherwise; never 500.
        for load in (writes, fires):
            assert set(load.codes()) <= {200, 503}, load.codes()

        new_master = topology.node(topology.replica_port)
        acked = writes.acked() + fires.acked()
        old = writes.acked(before=killed_at - LAG_S) + fires.acked(before=killed_at - LAG_S)
        present = present_on(new_master, acked)
        lost = [j for j in acked if j not in present]
        figures = {
            "acknowledged": len(acked),
            "acknowledged_before_lag": len(old),
            "lost": len(lost),
            "answered_503": writes.codes().get(503, 0) + fires.codes().get(503, 0),
            "promoted_after_s": round(promoted_s, 2),
            "shim_writing_after_s": round(recovered_s, 2),
        }
        write_figures(figures)
        print(
            f"\nsentinel failover: {len(acked)} writes acknowledged ({len(old)} more than "
            f"{LAG_S:.0f} s before the kill), {len(lost)} lost; "
            f"{figures['answered_503']} answered 503; replica promoted {promoted_s:.2f} s and "
            f"shim writing {recovered_s:.2f} s after the kill"
        )
        assert not set(old) - present, "acknowledged writes older than the lag were lost"

        # The state client followed by itself.
        assert state.set("sentinel:probe", "1")
        assert state.connection_pool.get_master_address()[1] == topology.replica_port

        # The hub followed: its subscription is back (on the new master) and a notify reaches
        # the peer's socket.
        wait_for(
            lambda: new_master.pubsub_numsub(keys.ASKS_RESOLVED)[0][1] >= 1,
            timeout=20,
            message="the hub to subscribe on the new master",
        )
        body = {"from_peer": "cli", "to_peer": "sentinel-bob", "text": "still here"}
        resp = api.post("/notify", json=body)
        assert resp.status_code == 200, resp.text
        assert peer.expect("notify", timeout=10)["text"] == "still here"

        assert KOMBU_CLOSE_CRASH not in stack.log("worker"), "the worker died on the failover"

        # The worker followed: every fire-now job acknowledged before the lag window, and every
        # one acknowledged after the failover, completes.
        must_run = fires.acked(before=killed_at - LAG_S) + fires.acked(after=first_ok)
        for job_id in must_run:
            done = records.wait_job(api, job_id, timeout=30)
            assert done["state"] == "completed", done

        # Beat followed: its scheduler tick fires a job that falls due after the failover, and
        # its liveness tick (run by the worker) lands on the new master.
        due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
        resp = api.post(
            "/jobs",
            json={"title": "due", "prompt": "due after", "path": str(tmp_path)}
            | {"backend": "claude-code", "due_at": due},
        )
        assert resp.status_code == 200, resp.text
        done = records.wait_job(api, resp.json()["job_id"], timeout=30)
        assert done["state"] == "completed", done
        before_tick = int(time.time() * 1000)
        wait_for(
            lambda: int(new_master.get(keys.BEAT_LAST_TICK) or 0) > before_tick,
            timeout=20,
            interval=0.2,
            message="beat's liveness tick on the new master",
        )
        assert stack.procs["beat"].poll() is None and stack.procs["worker"].poll() is None
        window = [j for j in fires.acked() if j not in must_run]
        states = [records.job(api, j)["state"] if j in present else "lost" for j in window]
        figures |= {
            "fire_now_acknowledged": len(fires.acked()),
            "fire_now_checked_completed": len(must_run),
            "fire_now_around_the_kill": {k: states.count(k) for k in sorted(set(states))},
            "all_followed_after_s": round(time.monotonic() - killed_at, 1),
        }
        write_figures(figures)
        print(
            f"fire-now jobs: {len(fires.acked())} acknowledged, {len(must_run)} checked "
            f"completed; the {len(window)} acknowledged around the kill: "
            f"{figures['fire_now_around_the_kill']}; everything followed within "
            f"{figures['all_followed_after_s']} s of the kill"
        )
    finally:
        for load in (writes, fires):
            load.stop.set()
        if peer is not None:
            with contextlib.suppress(Exception):
                peer.close()
        stack.close()
