"""The ZooKeeper registry through outages (docs/backends.md, "When ZooKeeper goes away"), for both
clients: lib/zkregistry.c driven by build/helpers/zkreg_probe, and the Python client's kazoo
registry driven by tests/e2e/zkpyprobe.py. Each test has a ZooKeeper of its own (restarting it
disturbs no other test) that it stops and starts again on the same port and data dir, or serves
for a while on a port the clients do not know: a partition, during which the test changes the
registry behind their backs and, when it lasts longer than their session, lets the server expire it.
"""
import json
import os
import select
import signal
import socket
import subprocess
import uuid
from contextlib import contextmanager

import pytest
from backends import LineProbe, ZooKeeper, _sweep_once, free_port
from conftest import ROOT, wait_for
from demohelpers import EXAMPLES
from demohelpers import free_port as free_tcp_port
from pyhelpers import CLIENT_DIR, copy_examples, curl, py_env
from test_zkwire import mixed_config

kazoo_client = pytest.importorskip("kazoo.client")

C_PROBE = ROOT / "build" / "helpers" / "zkreg_probe"
PY_PROBE = ROOT / "tests" / "e2e" / "zkpyprobe.py"
SESSION_MS = 6000        # outlives a restart of the server with room to spare on a busy machine
SHORT_SESSION_MS = 2000  # expires while the test keeps the server out of reach
LANGS = ["c", "python"]


@pytest.fixture
def zk():
    """A ZooKeeper of the test's own, restartable (backends.ZooKeeper.serve/stop_server)."""
    _sweep_once()
    server = ZooKeeper()
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@contextmanager
def kazoo(zk, chroot):
    """A kazoo client on wherever the server serves now, with the test's chroot."""
    k = kazoo_client.KazooClient(hosts=f"127.0.0.1:{zk.serving_port}{chroot}")
    k.start(timeout=30)
    try:
        yield k
    finally:
        k.stop()
        k.close()


def describe(iid, port):
    return json.dumps({"id": iid, "endpoint": f"tcp://127.0.0.1:{port}", "wire": "devnode/1"}).encode()


def endpoint(port):
    return f"tcp://127.0.0.1:{port}"


class Probe(LineProbe):
    """One registry client (C or Python) in a process of its own, with its own session."""

    def __init__(self, lang, project, url, session_ms):
        env = project.node_env()
        if lang == "c":
            argv = [str(C_PROBE), url, str(session_ms)]
        else:
            argv = ["/usr/bin/python3", str(PY_PROBE), url, str(session_ms)]
            env["PYTHONPATH"] = str(CLIENT_DIR)
        self.session_ms = session_ms
        self.err_path = project.dir / f"probe-{uuid.uuid4().hex[:6]}.err"
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                                         env=env)
        self.first = self.read()

    def read(self):
        # A deadline well past the session timeout: an answer that does not come is a hang.
        timeout = self.session_ms / 1000 + 20
        if not select.select([self.proc.stdout], [], [], timeout)[0]:
            raise AssertionError(f"the probe gave no answer within {timeout:.0f} s (it hangs); "
                                 f"stderr: {self.stderr()[-2000:]}")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the probe exited {self.proc.wait(10)}: {self.stderr()[-2000:]}")
        return json.loads(line)

    def endpoints(self, service):
        return sorted(i["endpoint"] for i in self.ok("lookup", service)["instances"])

    def stderr(self):
        return self.err_path.read_text(errors="replace")

    def quit(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        assert self.proc.wait(15) == 0

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def probes():
    made = []

    def make(*args):
        p = Probe(*args)
        made.append(p)
        return p
    yield make
    for p in made:
        p.kill()


def setup_registry(zk, chroot):
    with kazoo(zk, "") as k:  # made from the root: kazoo warns about a chroot that is not there yet
        k.create(f"{chroot}/services/Svc/a", describe("a", 51001), makepath=True)


def own_znode(zk, chroot):
    """The path and owner session of the one instance the probe registered as Mine."""
    with kazoo(zk, chroot) as k:
        kids = k.get_children("/services/Mine") if k.exists("/services/Mine") else []
        if len(kids) != 1:
            return None
        stat = k.exists(f"/services/Mine/{kids[0]}")
        return (kids[0], stat.ephemeralOwner) if stat else None


@pytest.mark.parametrize("lang", LANGS)
def test_a_restart_within_the_session_keeps_the_registration_and_refreshes_the_cache(project, zk, probes, lang):
    chroot = "/r" + uuid.uuid4().hex[:10]
    setup_registry(zk, chroot)
    p = probes(lang, project, zk.url(chroot), SESSION_MS)
    p.ok("register", "Mine", "m1", endpoint(51000))
    assert p.endpoints("Svc") == [endpoint(51001)]
    assert p.endpoints("Late") == []          # no such service yet: watched for its creation
    session = p.ok("stats")["session_id"]
    mine = own_znode(zk, chroot)
    assert mine and mine[1] == session

    zk.stop_server()
    # While ZooKeeper is away the cache still answers what it knew...
    assert p.endpoints("Svc") == [endpoint(51001)]
    # ...and a service it never read fails with the address it cannot reach, not a hang.
    answer = p.ask("lookup", "Unseen")
    assert not answer["ok"] and zk.hosts in answer["error"], answer

    # The server comes back where the probe cannot see it: what changes there, it misses.
    zk.serve(free_port())
    with kazoo(zk, chroot) as k:
        k.delete("/services/Svc/a")
        k.create("/services/Svc/b", describe("b", 51002))
        k.create("/services/Late/x", describe("x", 51003), makepath=True)
    zk.stop_server()
    zk.serve(zk.port)  # the same port and data dir again

    wait_for(lambda: p.endpoints("Svc") == [endpoint(51002)], 30, "the cache to drop a and take b after reconnecting")
    wait_for(lambda: p.endpoints("Late") == [endpoint(51003)], 30, "the cache to see the service created meanwhile")
    assert own_znode(zk, chroot) == mine, "the registration (an ephemeral znode of the same session) is still there"
    assert p.ok("stats")["session_id"] == session
    # the watches work again: a newcomer after the reconnect is seen too
    with kazoo(zk, chroot) as k:
        k.create("/services/Svc/c", describe("c", 51004))
    wait_for(lambda: p.endpoints("Svc") == [endpoint(51002), endpoint(51004)], 30, "the re-armed watch to see c")
    said = p.stderr().splitlines()
    assert [line for line in said if "lost the connection" in line] == said[:1], said
    assert len([line for line in said if "again in the same session" in line]) == 1, said
    assert len(said) == 2, f"one line when the connection went, one when it came back: {said}"
    p.quit()


@pytest.mark.parametrize("lang", LANGS)
def test_after_its_session_expired_it_registers_again_and_says_so_once(project, zk, probes, lang):
    chroot = "/e" + uuid.uuid4().hex[:10]
    setup_registry(zk, chroot)
    p = probes(lang, project, zk.url(chroot), SHORT_SESSION_MS)
    p.ok("register", "Mine", "m1", endpoint(52000))
    assert p.endpoints("Svc") == [endpoint(51001)]
    name, session = own_znode(zk, chroot)

    # Out of the probe's reach for longer than its session: the server expires it, and its
    # ephemeral znode goes; meanwhile another instance registers.
    zk.stop_server()
    zk.serve(free_port())
    with kazoo(zk, chroot) as k:
        wait_for(lambda: not k.exists(f"/services/Mine/{name}"), 30, "the server to expire the probe's session")
        k.create("/services/Svc/b", describe("b", 51002))
    zk.stop_server()
    zk.serve(zk.port)

    renewed = wait_for(lambda: (lambda m: m if m and m[1] != session else None)(own_znode(zk, chroot)), 30,
                       "the probe to register again in a new session")
    assert renewed[0] == name
    wait_for(lambda: p.endpoints("Svc") == [endpoint(51001), endpoint(51002)], 30,
             "the new session's cache to see the instance registered meanwhile")
    assert p.ok("stats")["session_id"] == renewed[1]
    said = p.stderr().splitlines()
    lines = [line for line in said if "expired" in line]
    assert len(lines) == 1, said
    assert zk.hosts in lines[0] and "renewed" in lines[0] and "1 registration" in lines[0], lines
    assert len(said) == 2, f"one line when the connection went, one for the renewal: {said}"
    p.quit()


@pytest.mark.parametrize("lang", LANGS)
def test_a_zookeeper_that_is_not_there_fails_the_open_clearly(project, probes, lang):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound, never listening: nothing answers there
        port = s.getsockname()[1]
        p = probes(lang, project, f"zookeeper://127.0.0.1:{port}", 500)
    assert not p.first["ok"]
    assert f"127.0.0.1:{port}" in p.first["error"] and "500 ms" in p.first["error"], p.first
    assert p.proc.wait(10) == 1


def test_callers_find_instances_that_registered_while_they_were_cut_off(project, zk):
    """examples/python's mixed demo under `devnode up`: the callers (Python Web, C CWeb) know only
    the server's port, the Greeting services (Python Greeting, C CGreeting) know it and a second
    one. The server moves to the second port (the callers are cut off, within their session), every
    Greeting instance is killed there, the node starts new ones that register there, and the old
    ones' znodes go with their 1 s sessions. Back on its port, the callers must drop the dead
    instances and call the new ones: their caches read again after the reconnection. Each caller
    says the outage in two lines, not a line per connection attempt."""
    chroot = "/m" + uuid.uuid4().hex[:10]
    other = free_port()
    both = f"zookeeper://127.0.0.1:{zk.port},127.0.0.1:{other}{chroot}"
    py_port, c_port = free_tcp_port(), free_tcp_port()
    copy_examples(project)
    text = mixed_config(zk.url(chroot), py_port, c_port)
    greeting_env = f"            DEVNODE_REGISTRY: \"{both}\"\n            DEVNODE_REGISTRY_SESSION_MS: \"1000\"\n"
    text = text.replace("    Greeting:\n        command: python3 -m devnode instance --config=conf/greeting.yml\n"
                        "        numprocesses: 2\n        ready: notify\n        env:\n",
                        "    Greeting:\n        command: python3 -m devnode instance --config=conf/greeting.yml\n"
                        "        numprocesses: 2\n        ready: notify\n        env:\n" + greeting_env)
    text = text.replace("    CGreeting:\n        command: " + f"{EXAMPLES}/greeting" +
                        "\n        numprocesses: 2\n        ready: notify\n",
                        "    CGreeting:\n        command: " + f"{EXAMPLES}/greeting" +
                        "\n        numprocesses: 2\n        ready: notify\n        env:\n" + greeting_env)
    assert text.count("DEVNODE_REGISTRY_SESSION_MS") == 2, text
    project.write(text)
    # the callers' session outlives the whole cut (nothing waits for it to run out)
    node = project.up(env=py_env(project, DEVNODE_REGISTRY_SESSION_MS="15000"))

    def registered(name, count, k, exclude=()):
        path = f"/services/{name}"
        found = {}
        for child in (k.get_children(path) if k.exists(path) else []):
            try:
                found[child] = json.loads(k.get(f"{path}/{child}")[0])
            except kazoo_client.NoNodeError:
                continue
        pids = {d["pid"] for d in found.values()}
        return found if len(found) == count and not pids & set(exclude) else None

    with kazoo(zk, chroot) as k:
        for name in ("Web", "CWeb"):
            wait_for(lambda: registered(name, 2, k), 60, f"2 instances of {name}")
        old = {}
        for name in ("Greeting", "CGreeting"):
            old[name] = wait_for(lambda: registered(name, 2, k), 60, f"2 instances of {name}")
    for _ in range(4):  # the callers' caches and connections are warm
        assert curl(py_port, "/greet?name=w")[:2] == (200, "Hi, w!")
        assert curl(c_port, "/greet?name=w")[:2] == (200, "Hi, w!")

    zk.stop_server()
    zk.serve(other)
    old_pids = {d["pid"] for descs in old.values() for d in descs.values()}
    for pid in old_pids:
        os.kill(pid, signal.SIGKILL)
    with kazoo(zk, chroot) as k:
        for name in ("Greeting", "CGreeting"):
            wait_for(lambda: registered(name, 2, k, exclude=old_pids), 60,
                     f"{name}'s new instances registered and the killed ones' znodes gone")
    zk.stop_server()
    zk.serve(zk.port)

    def calls_succeed():
        for _ in range(6):
            if curl(py_port, "/greet?name=x")[:2] != (200, "Hi, x!"):
                return False
            if curl(c_port, "/greet?name=y")[:2] != (200, "Hi, y!"):
                return False
        return True
    wait_for(calls_succeed, 60, "both callers to call the Greeting instances that registered while they were cut off")
    for _ in range(10):
        assert curl(py_port, "/greet?name=z")[:2] == (200, "Hi, z!")
        assert curl(c_port, "/greet?name=z")[:2] == (200, "Hi, z!")

    # each caller said the outage once and its end once, and nothing per connection attempt
    for name in ("Web", "CWeb"):
        said = [r["text"] for r in node.records() if r.get("service") == name and r.get("stream") != "node"
                and ("ZooKeeper" in r["text"] or "zookeeper" in r["text"] or "kazoo" in r["text"]
                     or "Connection" in r["text"])]
        assert sum("lost the connection to ZooKeeper" in t for t in said) == 2, (name, said)
        assert sum("again in the same session" in t for t in said) == 2, (name, said)
        assert len(said) == 4, (name, said[:20])
