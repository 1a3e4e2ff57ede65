"""The real back-end servers the fixtures start (tests/e2e/backends.py), proven with lymph's
own client libraries: kazoo for ZooKeeper, kombu for RabbitMQ. Later tests of issue 19 (the
ZooKeeper registry, the RabbitMQ event bus) stand on these."""
import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest
from conftest import PYTHON, pid_alive, wait_for

import backends

kazoo_client = pytest.importorskip("kazoo.client")
kombu = pytest.importorskip("kombu")


def test_zookeeper_fixture_serves_kazoo_with_lymph_chroot(zookeeper):
    assert zookeeper.four_letter("ruok") == "imok"
    root = kazoo_client.KazooClient(hosts=zookeeper.hosts)
    root.start(timeout=15)
    try:
        root.ensure_path("/lymph/services")
        name = "fixture-" + uuid.uuid4().hex[:8]
        k = kazoo_client.KazooClient(hosts=zookeeper.hosts + "/lymph")
        k.start(timeout=15)
        try:
            k.create(f"/services/{name}/abc", b'{"id": "abc"}', ephemeral=True, makepath=True)
            assert root.get(f"/lymph/services/{name}/abc")[0] == b'{"id": "abc"}'
        finally:
            k.stop()
            k.close()
        # The ephemeral znode went with the session that made it.
        assert root.exists(f"/lymph/services/{name}/abc") is None
    finally:
        root.stop()
        root.close()


def test_rabbitmq_fixture_is_private_and_carries_kombu(rabbitmq):
    assert 5672 not in (rabbitmq.port, rabbitmq.dist_port, rabbitmq.epmd_port)
    exchange = kombu.Exchange("lymph", type="topic", durable=True)
    queue = kombu.Queue("fixture-" + uuid.uuid4().hex[:8], exchange, routing_key="greeted", auto_delete=True)
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        with conn.Producer() as producer:
            bound = queue(conn.default_channel)
            bound.declare()
            producer.publish({"type": "greeted", "body": {"name": "x"}}, exchange=exchange, routing_key="greeted",
                             serializer="json", declare=[exchange])
            msg = wait_for(lambda: bound.get(no_ack=False), 15, "the published message in the queue")
            assert msg.payload == {"type": "greeted", "body": {"name": "x"}}
            msg.ack()


def test_a_crashed_run_leaves_nothing(tmp_path):
    """A pytest that starts a ZooKeeper and is then SIGKILLed: its server dies with it, and
    the next sweep finds nothing of it (no process, no directory)."""
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {os.path.dirname(backends.__file__)!r})
        import backends
        zk = backends.ZooKeeper().start()
        print(zk.proc.pid, zk.dir, backends.owner_tag(), flush=True)
        time.sleep(600)
    """))
    runner = subprocess.Popen([PYTHON, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        server_pid, server_dir, tag = runner.stdout.readline().split()
        assert pid_alive(int(server_pid))
    finally:
        runner.kill()
        runner.wait(10)
    wait_for(lambda: not pid_alive(int(server_pid)), 15, "the ZooKeeper of the killed run to die with it")
    backends.sweep_orphans()
    assert not backends.tagged_pids(tag), "processes of the crashed run remain"
    assert not os.path.exists(server_dir), "the crashed run's directory remains"
