"""libdevnode and the Python client on a real ZooKeeper (issue 19 items 1, 2, 4, 5): services
under `devnode up` with `backends: {registry: zookeeper://...}` register in lymph's layout (kazoo
reads them as lymph's ZookeeperServiceRegistry would), serve RPC on tcp, call each other across
languages through the registry, and `devnode discover` / `request` follow the same settings. A
killed instance goes with its session; a lymph-style registration without devnode's wire is
refused with a clear error instead of a call that waits for its timeout."""
import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest
from conftest import DEVNODE, ROOT, pid_alive, wait_for
from demohelpers import EXAMPLES, GREETING, free_port
from pyhelpers import CLIENT_DIR, PY_EXAMPLES, copy_examples, curl, py_env

kazoo_client = pytest.importorskip("kazoo.client")

SESSION_MS = 1000  # the fixture's ZooKeeper allows sessions from 200 ms
LYMPH_FIELDS = {"id", "identity", "version", "endpoint", "log_endpoint", "monitoring_endpoint",
                "backdoor_endpoint", "fqdn", "hostname", "ip", "type"}


@pytest.fixture
def chroot(zookeeper):
    """A chroot of the test's own, so services of other tests never show up here."""
    return "/t" + uuid.uuid4().hex[:12]


@pytest.fixture
def kazoo(zookeeper, chroot):
    """A kazoo client opened as lymph's ZookeeperServiceRegistry opens it (hosts + chroot)."""
    root = kazoo_client.KazooClient(hosts=zookeeper.hosts)
    root.start(timeout=15)
    root.ensure_path(chroot)
    root.stop()
    root.close()
    k = kazoo_client.KazooClient(hosts=zookeeper.hosts + chroot)
    k.start(timeout=15)
    yield k
    k.stop()
    k.close()


def instances(kazoo, service):
    """{znode name: description} of a service, read as lymph's registry reads it."""
    path = f"/services/{service}"
    if not kazoo.exists(path):
        return {}
    out = {}
    for child in kazoo.get_children(path):
        try:
            data, _ = kazoo.get(f"{path}/{child}")
        except kazoo_client.NoNodeError:
            continue
        out[child] = json.loads(data.decode())
    return out


def wait_instances(kazoo, service, count, timeout=30):
    def check():
        found = instances(kazoo, service)
        return found if len(found) == count and all(pid_alive(d["pid"]) for d in found.values()) else None
    return wait_for(check, timeout, f"{count} instance(s) of {service} in ZooKeeper")


def mixed_config(url, py_port, c_port, extra=""):
    """examples/python/mixed.lymph.yml (Python and C services calling each other) on ZooKeeper."""
    text = (PY_EXAMPLES / "mixed.lymph.yml").read_text()
    text = text.replace("../../build/examples/", f"{EXAMPLES}/")
    text = text.replace("port: 4080", f"port: {py_port}").replace("port: 4081", f"port: {c_port}")
    return f"backends:\n    registry: {url}\n{extra}" + text


def cli_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVNODE_")}
    env.update(extra)
    return env


def zk_received(zookeeper):
    """Packets the server has received from every client so far (srvr's `Received:`)."""
    return int(re.search(r"Received: (\d+)", zookeeper.four_letter("srvr")).group(1))


def test_c_and_python_services_register_in_lymphs_layout_and_call_each_other_over_tcp(
        project, zookeeper, chroot, kazoo):
    py_port, c_port = free_port(), free_port()
    copy_examples(project)
    project.write(mixed_config(zookeeper.url(chroot), py_port, c_port))
    node = project.up(env=py_env(project, DEVNODE_REGISTRY_SESSION_MS=str(SESSION_MS)))

    # kazoo reads every instance, C and Python alike, as lymph's registry would
    for name in ("Web", "CWeb", "Greeting", "CGreeting", "Listen", "CListen"):
        found = wait_instances(kazoo, name, 2)
        for znode, desc in found.items():
            assert LYMPH_FIELDS <= set(desc), desc
            assert desc["id"] == znode and desc["type"] is False, desc
            assert desc["wire"] == "devnode/1" and desc["ip"] == "127.0.0.1", desc
            assert re.fullmatch(r"tcp://127\.0\.0\.1:\d+", desc["endpoint"]), desc
            assert desc["hostname"] and desc["fqdn"] and re.fullmatch(r"[0-9a-f]{32}", desc["identity"]), desc
            # ephemeral: the registration is owned by a session, and goes with it
            assert kazoo.exists(f"/services/{name}/{znode}").ephemeralOwner != 0

    # Python Web -> C CGreeting, and C CWeb -> Python Greeting, each found in ZooKeeper
    assert curl(py_port, "/greet?name=joe")[:2] == (200, "Hi, joe!")
    assert curl(c_port, "/greet?name=ann")[:2] == (200, "Hi, ann!")

    # the node's status still shows the instances, with the endpoints they registered
    status = node.service("CGreeting")
    assert status is not None

    # the CLI follows backends: without DEVNODE_REGISTRY in its environment
    r = project.cli("request", "CGreeting.greet", '{"name": "Bo"}', env=cli_env())
    assert (r.returncode, r.stdout.strip()) == (0, '"Hi, Bo!"'), r.stderr
    r = project.cli("request", "Greeting.greet", '{"name": "Cy"}', env=cli_env())
    assert (r.returncode, r.stdout.strip()) == (0, '"Hi, Cy!"'), r.stderr
    r = project.cli("request", "Greeting.lymph.status", env=cli_env())
    assert r.returncode == 0 and '"endpoint": "tcp://127.0.0.1:' in r.stdout, (r.stdout, r.stderr)

    # discover lists what ZooKeeper holds, even a service this node does not run
    kazoo.create("/services/Elsewhere/x1", json.dumps(
        {"id": "x1", "identity": "e" * 32, "endpoint": "tcp://127.0.0.1:9", "wire": "devnode/1"}).encode(),
        ephemeral=True, makepath=True)
    r = project.cli("discover", env=cli_env())
    assert r.returncode == 0, r.stderr
    for line in ("CGreeting [2]", "Greeting [2]", "Web [2]", "CWeb [2]", "Elsewhere [1]"):
        assert line in r.stdout.splitlines(), r.stdout
    r = project.cli("discover", "--json", env=cli_env())
    listed = json.loads(r.stdout)
    assert {d["endpoint"] for d in listed["CGreeting"]} == \
        {d["endpoint"] for d in instances(kazoo, "CGreeting").values()}
    r = project.cli("discover", "CGreeting", env=cli_env())
    assert r.returncode == 0 and r.stdout.count("tcp://127.0.0.1:") == 2, r.stdout

    # a stopped instance deletes its registration at once (no session timeout to wait for)
    r = project.cli("scale", "CGreeting", "1", env=cli_env())
    assert r.returncode == 0, r.stderr
    wait_for(lambda: len(instances(kazoo, "CGreeting")) == 1, 10, "CGreeting's second znode to go")


def test_a_killed_instance_goes_with_its_session_and_callers_stop_picking_it(project, zookeeper, chroot, kazoo):
    py_port, c_port = free_port(), free_port()
    copy_examples(project)
    project.write(mixed_config(zookeeper.url(chroot), py_port, c_port))
    project.up(env=py_env(project, DEVNODE_REGISTRY_SESSION_MS=str(SESSION_MS)))
    wait_instances(kazoo, "Web", 2)
    wait_instances(kazoo, "CWeb", 2)
    for name in ("CGreeting", "Greeting"):
        before = wait_instances(kazoo, name, 2)
        # warm the callers' caches and connections: both instances are in use
        for port in (py_port, c_port):
            for _ in range(4):
                assert curl(port, "/greet?name=w")[0] == 200
        victim_id, victim = sorted(before.items())[0]
        os.kill(victim["pid"], signal.SIGKILL)
        wait_for(lambda: victim_id not in instances(kazoo, name), 15,
                 f"the killed {name}'s znode to go with its session")
        # the long-running callers (Python Web, C CWeb) and the CLI no longer pick it
        for _ in range(10):
            assert curl(py_port, "/greet?name=x")[:2] == (200, "Hi, x!")
            assert curl(c_port, "/greet?name=y")[:2] == (200, "Hi, y!")
        r = project.cli("request", "-N", "20", f"{name}.greet", '{"name": "z"}', env=cli_env())
        assert r.returncode == 0, (r.stdout, r.stderr)
        # the node starts it again, and the new process registers itself
        wait_instances(kazoo, name, 2)


def test_discover_is_one_cached_lookup_not_a_zookeeper_read_per_call(project, zookeeper, chroot, kazoo):
    project.write(f"backends:\n    registry: {zookeeper.url(chroot)}\n    ip: 127.0.0.2\n"
                  f"instances:\n    CGreeting:\n        command: {GREETING}\n        ready: notify\n")
    project.up(env=py_env(project))
    desc = next(iter(wait_instances(kazoo, "CGreeting", 1).values()))
    # backends.ip: bound and registered on that address
    assert desc["ip"] == "127.0.0.2" and desc["endpoint"].startswith("tcp://127.0.0.2:"), desc

    calls = 1000
    before = zk_received(zookeeper)
    r = project.cli("request", "-N", str(calls), "CGreeting.greet", '{"name": "n"}', env=cli_env(), timeout=120)
    assert r.returncode == 0, (r.stdout, r.stderr)
    during_c = zk_received(zookeeper) - before

    # the Python client the same way: 1000 calls through the registry it watches
    script = ("import devnode\n"
              "c = devnode.Client(name='zkbench')\n"
              f"for i in range({calls}):\n"
              "    assert c.call('CGreeting.greet', {'name': 'p'}) == 'Hi, p!'\n"
              "c.close()\n")
    env = py_env(project, DEVNODE_REGISTRY=zookeeper.url(chroot), PYTHONPATH=str(CLIENT_DIR))
    env["DEVNODE_ENDPOINT"] = (project.run_dir / "endpoint").read_text().strip()
    before = zk_received(zookeeper)
    p = subprocess.run(["/usr/bin/python3", "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    during_py = zk_received(zookeeper) - before

    # a session's set-up, the first read (children, then each child) and a few pings: nothing
    # near one packet per call
    assert during_c < calls / 10, f"{during_c} packets reached ZooKeeper during {calls} C calls"
    assert during_py < calls / 10, f"{during_py} packets reached ZooKeeper during {calls} Python calls"


def test_a_registration_without_devnodes_wire_is_refused_clearly(project, zookeeper, chroot, kazoo):
    """lymph's own processes register no `wire` (their replies go to the caller's bound endpoint):
    a devnode client must refuse them at once, not send requests nobody answers."""
    project.write(f"backends:\n    registry: {zookeeper.url(chroot)}\n"
                  f"instances:\n    CGreeting:\n        command: {GREETING}\n        ready: notify\n")
    project.up(env=py_env(project))
    wait_instances(kazoo, "CGreeting", 1)
    # registered the way lymph's ZookeeperServiceRegistry.register does it
    lymph = {"id": "f" * 32, "identity": "a" * 32, "endpoint": f"tcp://127.0.0.1:{free_port()}",
             "log_endpoint": None, "monitoring_endpoint": None, "backdoor_endpoint": None, "fqdn": "h",
             "hostname": "h", "ip": "127.0.0.1", "version": None, "type": False}
    kazoo.create("/services/Lymphy/" + "f" * 32, json.dumps(lymph).encode(), ephemeral=True, makepath=True)

    t0 = time.monotonic()
    r = project.cli("request", "--timeout", "20", "Lymphy.hello", env=cli_env())
    took = time.monotonic() - t0
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "Lymphy: its 1 instance(s) in the registry speak lymph's ZeroMQ wire" in r.stderr, r.stderr
    assert "devnode cannot call" in r.stderr and took < 15, (took, r.stderr)

    script = ("import devnode\n"
              "c = devnode.Client(name='refused')\n"
              "try:\n"
              "    c.call('Lymphy.hello', timeout=20)\n"
              "except devnode.NotFound as e:\n"
              "    print('refused:', e)\n"
              "c.close()\n")
    env = py_env(project, DEVNODE_REGISTRY=zookeeper.url(chroot), PYTHONPATH=str(CLIENT_DIR))
    env["DEVNODE_ENDPOINT"] = (project.run_dir / "endpoint").read_text().strip()
    p = subprocess.run(["/usr/bin/python3", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "refused: Lymphy: its 1 instance(s) in the registry speak lymph's ZeroMQ wire" in p.stdout, p.stdout

    # discover still lists it: it is there, devnode just cannot call it
    r = project.cli("discover", env=cli_env())
    assert "Lymphy [1]" in r.stdout.splitlines(), r.stdout


def test_events_backend_is_handed_on_and_bad_settings_are_refused_not_ignored(project, zookeeper):
    # backends.events is RabbitMQ for libdevnode (tests/e2e/test_amqp_events.py); a bad one is
    # refused by check, without repeating the URL (it holds a password).
    project.write("backends:\n    events: amqp://guest:guest@127.0.0.1:5999/%2F\n"
                  "instances:\n    A:\n        command: sleep 30\n")
    r = project.cli("check")
    assert r.returncode == 0, r.stderr
    project.write("backends:\n    events: http://guest:s3cret@127.0.0.1:5999/\n"
                  "instances:\n    A:\n        command: sleep 30\n")
    r = project.cli("check")
    assert r.returncode == 2 and "backends.events: not an AMQP URL" in r.stderr and "s3cret" not in r.stderr, r.stderr

    project.write(f"instances:\n    CGreeting:\n        command: {GREETING}\n        ready: notify\n"
                  f"        restart: never\n")
    project.up(env=py_env(project))
    # the CLI follows DEVNODE_EVENTS too: an unreachable broker is one line, password hidden
    r = project.cli("emit", "x.y", "{}", env=cli_env(DEVNODE_EVENTS="amqp://guest:s3cret@127.0.0.1:1/%2F"))
    assert r.returncode != 0 and "DEVNODE_EVENTS=amqp://guest:***@127.0.0.1:1/%2F: cannot connect" in r.stderr, \
        r.stderr
    assert "s3cret" not in r.stderr
    r = project.cli("request", "CGreeting.greet", env=cli_env(DEVNODE_REGISTRY="zookeeper://h:0"))
    assert r.returncode != 0 and "DEVNODE_REGISTRY: registry URL column" in r.stderr, r.stderr
