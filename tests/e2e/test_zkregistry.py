"""lib/zkregistry.c against a real ZooKeeper (the session fixture), driven through
build/helpers/zkreg_probe, and read back with kazoo the way lymph's ZookeeperServiceRegistry
reads it: chroot /lymph, ephemeral /services/<Service>/<id> holding lymph's JSON description."""
import json
import os
import signal
import subprocess
import uuid

import pytest
from backends import LineProbe
from conftest import ROOT, wait_for

kazoo_client = pytest.importorskip("kazoo.client")

PROBE = ROOT / "build" / "helpers" / "zkreg_probe"
SHORT_SESSION_MS = 1000  # the fixture's ZooKeeper allows sessions from 200 ms


class Probe(LineProbe):
    """One zkreg_probe process: a registry client with its own ZooKeeper session."""

    def __init__(self, project, url, session_ms=10000):
        self.proc = subprocess.Popen([str(PROBE), url, str(session_ms)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=project.node_env())
        self.first = self.read()

    def read(self):
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"zkreg_probe exited {self.proc.wait(10)}: {self.proc.stderr.read()}")
        return json.loads(line)

    def ids(self, service):
        return [i["id"] for i in self.ok("lookup", service)["instances"]]

    def quit(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        assert self.proc.wait(15) == 0


@pytest.fixture
def kazoo(zookeeper):
    """A kazoo client with lymph's chroot, as lymph's ZookeeperServiceRegistry opens it."""
    root = kazoo_client.KazooClient(hosts=zookeeper.hosts)
    root.start(timeout=15)
    root.ensure_path("/lymph")  # kazoo warns about a chroot that does not exist yet
    root.stop()
    root.close()
    k = kazoo_client.KazooClient(hosts=zookeeper.hosts + "/lymph")
    k.start(timeout=15)
    yield k
    k.stop()
    k.close()


def service_name():
    return "Svc" + uuid.uuid4().hex[:10]


def test_registration_reads_as_lymph_reads_it(project, zookeeper, kazoo):
    name = service_name()
    probe = Probe(project, zookeeper.url())
    assert probe.first["ok"] and probe.first["session_id"]
    probe.ok("register", name, "inst1", "tcp://127.0.0.1:40000")

    # lymph's discover(): the children of /services; lookup(name): the children of
    # /services/<name>, then each child's JSON.
    assert name in kazoo.get_children("/services")
    assert kazoo.get_children(f"/services/{name}") == ["inst1"]
    data, stat = kazoo.get(f"/services/{name}/inst1")
    desc = json.loads(data.decode("utf-8"))
    assert stat.ephemeralOwner == probe.first["session_id"]
    for key in ("id", "identity", "endpoint", "log_endpoint", "hostname", "fqdn", "ip", "version",
                "monitoring_endpoint", "backdoor_endpoint", "type"):
        assert key in desc, f"lymph's description has {key}: {desc}"
    assert desc["id"] == "inst1"
    assert desc["endpoint"] == "tcp://127.0.0.1:40000"
    assert desc["ip"] == "127.0.0.1"
    assert desc["wire"] == "devnode/1"
    assert desc["pid"] == probe.proc.pid

    # Registering the same id again replaces the znode (lymph deletes first), and an explicit
    # unregister removes it.
    probe.ok("register", name, "inst1", "tcp://127.0.0.1:40001")
    assert json.loads(kazoo.get(f"/services/{name}/inst1")[0])["endpoint"] == "tcp://127.0.0.1:40001"
    probe.ok("unregister", name, "inst1")
    assert kazoo.exists(f"/services/{name}/inst1") is None
    probe.quit()


def test_chroot_from_the_url(project, zookeeper):
    name = service_name()
    probe = Probe(project, zookeeper.url("/team/staging"))
    probe.ok("register", name, "a", "tcp://127.0.0.1:40000")
    k = kazoo_client.KazooClient(hosts=zookeeper.hosts)
    k.start(timeout=15)
    try:
        assert k.exists(f"/team/staging/services/{name}/a") is not None
        assert k.exists(f"/lymph/services/{name}") is None
    finally:
        k.stop()
        k.close()
    probe.quit()


def test_discover_follows_instances_through_watches(project, zookeeper, kazoo):
    name = service_name()
    watcher = Probe(project, zookeeper.url())
    assert watcher.ids(name) == []  # no such service yet: empty, and watched for its creation

    first = Probe(project, zookeeper.url())
    first.ok("register", name, "i1", "tcp://127.0.0.1:41001")
    wait_for(lambda: watcher.ids(name) == ["i1"], 15, "the watcher to see the first instance")

    # An instance lymph itself registered (no wire field) is listed, and says it speaks no wire
    # devnode can call.
    kazoo.create(f"/services/{name}/lymph1", json.dumps({"id": "lymph1", "endpoint": "tcp://127.0.0.1:41009"}).encode(),
                 ephemeral=True)
    second = Probe(project, zookeeper.url())
    second.ok("register", name, "i2", "tcp://127.0.0.1:41002")
    wait_for(lambda: watcher.ids(name) == ["i1", "i2", "lymph1"], 15, "the watcher to see all three")
    insts = {i["id"]: i for i in watcher.ok("lookup", name)["instances"]}
    assert insts["i2"]["endpoint"] == "tcp://127.0.0.1:41002" and insts["i2"]["wire"] == "devnode/1"
    assert insts["lymph1"]["wire"] is None

    # Lookups answer from the cache: many of them read nothing from ZooKeeper.
    before = watcher.ok("stats")
    for _ in range(200):
        watcher.ok("lookup", name)
    after = watcher.ok("stats")
    assert after["lookups"] - before["lookups"] == 200
    assert after["reads"] == before["reads"], f"lookups went to ZooKeeper: {before} -> {after}"

    # A description that changes in place is seen too (a data watch).
    kazoo.set(f"/services/{name}/lymph1", json.dumps({"id": "lymph1", "endpoint": "tcp://127.0.0.1:41010"}).encode())
    wait_for(lambda: {i["id"]: i["endpoint"] for i in watcher.ok("lookup", name)["instances"]}["lymph1"]
             == "tcp://127.0.0.1:41010", 15, "the watcher to see the changed endpoint")

    second.quit()  # its session closes: its znode goes at once
    wait_for(lambda: watcher.ids(name) == ["i1", "lymph1"], 15, "the watcher to see the second instance go")
    first.quit()
    watcher.quit()


def test_a_killed_instance_goes_with_its_session(project, zookeeper, kazoo):
    name = service_name()
    watcher = Probe(project, zookeeper.url())
    victim = Probe(project, zookeeper.url(), session_ms=SHORT_SESSION_MS)
    victim.ok("register", name, "doomed", "tcp://127.0.0.1:42000")
    wait_for(lambda: watcher.ids(name) == ["doomed"], 15, "the watcher to see the instance")
    os.kill(victim.proc.pid, signal.SIGKILL)
    victim.proc.wait(10)
    # ZooKeeper expires the session after its timeout; the ephemeral znode goes with it.
    wait_for(lambda: kazoo.exists(f"/services/{name}/doomed") is None, 15, "the killed instance's znode to go")
    wait_for(lambda: watcher.ids(name) == [], 15, "the watcher to see it go")
    watcher.quit()


def test_registers_again_after_its_session_expired(project, zookeeper, kazoo):
    """A process stalled past its session timeout (SIGSTOP here; a long GC pause or a
    suspended laptop in life) loses its session and its znode; once it runs again it gets a
    new session and writes its registration back, and its watches work again."""
    name = service_name()
    probe = Probe(project, zookeeper.url(), session_ms=SHORT_SESSION_MS)
    probe.ok("register", name, "stalled", "tcp://127.0.0.1:43000")
    assert probe.ids(name) == ["stalled"]
    old_session = probe.first["session_id"]
    os.kill(probe.proc.pid, signal.SIGSTOP)
    try:
        wait_for(lambda: kazoo.exists(f"/services/{name}/stalled") is None, 15,
                 "ZooKeeper to expire the stalled session")
    finally:
        os.kill(probe.proc.pid, signal.SIGCONT)
    stat = wait_for(lambda: kazoo.exists(f"/services/{name}/stalled"), 15, "the registration to come back")
    assert stat.ephemeralOwner != old_session
    stats = probe.ok("stats")
    assert stats["sessions"] == 2 and stats["restored"] == 1, stats
    assert stats["session_id"] == stat.ephemeralOwner
    # The new session's watches: another instance appearing is seen.
    kazoo.create(f"/services/{name}/other", b'{"id": "other"}', ephemeral=True)
    wait_for(lambda: probe.ids(name) == ["other", "stalled"], 15, "the new session's watch to see a newcomer")
    probe.quit()


def test_refuses_bad_urls_and_absent_servers(project):
    r = subprocess.run([str(PROBE), "zookeeper://127.0.0.1:0", "1000"], capture_output=True, text=True, timeout=30,
                       env=project.node_env())
    assert r.returncode == 1
    assert "column 23" in json.loads(r.stdout)["error"] and "1 to 65535" in r.stdout
    # nothing listens on this port (bound here, never listened on)
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = subprocess.run([str(PROBE), f"zookeeper://127.0.0.1:{port}", "500"], capture_output=True, text=True,
                           timeout=30, env=project.node_env())
    assert r.returncode == 1
    assert f"no ZooKeeper session with 127.0.0.1:{port} within 500 ms" in json.loads(r.stdout)["error"]
