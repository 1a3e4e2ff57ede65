"""libdevnode's RabbitMQ back end (issue 19 item 3) against the real broker fixture: services
started by the node with DEVNODE_EVENTS=amqp://… in their environment and no other change
(examples/listen, tests/libhelpers/amqpprobe.c) emit and handle events through RabbitMQ in
lymph's layout, and kombu, lymph's own library, reads and writes the same messages
(item 5's kombu half). See docs/backends.md, "The RabbitMQ layout"."""
import os
import re
import signal
import subprocess
import uuid

import pytest

from conftest import ROOT, wait_for
from demohelpers import LISTEN, examples_config

kombu = pytest.importorskip("kombu")
msgpack = pytest.importorskip("msgpack")

PROBE = ROOT / "build" / "libhelpers" / "amqpprobe"
LYMPH_MSGPACK = "application/lymph+x-msgpack"


def lymph_serializer():
    """lymph's `lymph-msgpack` serializer, registered with kombu as lymph registered it."""
    from kombu.serialization import register
    register("lymph-msgpack", lambda v: msgpack.packb(v, use_bin_type=True),
             lambda b: msgpack.unpackb(b, raw=False), content_type=LYMPH_MSGPACK, content_encoding="binary")


def start(project, rabbitmq, services, via_config=False):
    """Runs `services` under the node with the broker in their environment: DEVNODE_EVENTS in
    the node's, or `backends: {events: URL}` in .lymph.yml, which the node hands on."""
    if via_config:
        project.write(f"backends:\n    events: {rabbitmq.url}\n" + examples_config(services))
        node = project.up()
    else:
        project.write(examples_config(services))
        node = project.up(env=project.node_env(DEVNODE_EVENTS=rabbitmq.url))
    for name, spec in services.items():
        node.wait_running(name, spec[1], timeout=30)
    return node


def emit(project, rabbitmq, type_, n, *args, url=None, **kw):
    env = project.node_env(DEVNODE_EVENTS=url or rabbitmq.url)
    return subprocess.run([str(PROBE), "emit", type_, str(n), *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL, **kw)


def texts(node, service, pattern):
    return [(r, m) for r in node.records() if r.get("service") == service
            for m in [re.search(pattern, r["text"])] if m]


def wait_texts(node, service, pattern, count, timeout=30):
    return wait_for(lambda: (lambda found: found if len(found) >= count else None)(texts(node, service, pattern)),
                    timeout, f"{count} lines of {service} matching {pattern!r}")


def queue_state(rabbitmq, name):
    """(messages, consumers) of an existing queue (a passive declare, which fails if it is not there)."""
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        ok = conn.default_channel.queue_declare(queue=name, passive=True)
        return ok.message_count, ok.consumer_count


def drain(conn):
    try:
        conn.drain_events(timeout=0.5)
    except TimeoutError:
        pass
    return False


def test_each_event_is_handled_once_per_service_across_instances(project, rabbitmq):
    node = start(project, rabbitmq, {"Listen": (LISTEN, 2), "Audit": (LISTEN, 1)}, via_config=True)
    # lymph's layout: one queue per (service, handler), the service's instances competing on it.
    assert queue_state(rabbitmq, "Listen-greeted") == (0, 2)
    assert queue_state(rabbitmq, "Audit-greeted") == (0, 1)
    r = emit(project, rabbitmq, "greeted", 40)
    assert r.stdout.strip() == "accepted 40 failed 0 close 0", r.stdout + r.stderr
    for service in ("Listen", "Audit"):
        found = wait_texts(node, service, r"Somebody greeted (p\d+)", 40)
        names = sorted(m.group(1) for _, m in found)
        assert names == sorted(f"p{i}" for i in range(40)), f"{service}: each event once"
    listen_pids = {re.search(r"pid=(\d+)", r["text"]).group(1) for r, _ in texts(node, "Listen", "Somebody")}
    assert len(listen_pids) == 2, "both instances of Listen consumed from the shared queue"
    node.stop()


def test_broadcast_reaches_every_instance(project, rabbitmq):
    node = start(project, rabbitmq, {"Board": (PROBE, 2, "consume 'board.#' --broadcast")})
    r = emit(project, rabbitmq, "board.posted", 5)
    assert r.returncode == 0, r.stdout + r.stderr
    found = wait_texts(node, "Board", r"got board\.posted n=(\d+) .* pid=(\d+)", 10)
    per_pid = {}
    for _, m in found:
        per_pid.setdefault(m.group(2), []).append(int(m.group(1)))
    assert len(per_pid) == 2 and all(sorted(v) == list(range(5)) for v in per_pid.values()), per_pid
    node.stop()


def test_a_delayed_event_waits_in_lymph_waiting_then_arrives(project, rabbitmq):
    node = start(project, rabbitmq, {"Later": (PROBE, 1, "consume 'reminder.due'")})
    r = emit(project, rabbitmq, "reminder.due", 1, "--wait", "--delay-ms", 4000)
    assert r.returncode == 0, r.stdout + r.stderr
    # lymph's delay queue holds it (its TTL dead-letters it into `lymph` with the event's type)...
    messages, _ = queue_state(rabbitmq, "reminder.due-wait_4000")
    handled = texts(node, "Later", r"got reminder\.due")
    assert (messages, handled) == (1, []), "the event waits in reminder.due-wait_4000"
    # ...and then reaches the handler.
    wait_texts(node, "Later", r"got reminder\.due n=0 name=p0 source=publisher", 1, timeout=30)
    assert queue_state(rabbitmq, "reminder.due-wait_4000")[0] == 0
    node.stop()


def test_a_consumer_killed_before_its_ack_gets_the_event_redelivered(project, rabbitmq):
    node = start(project, rabbitmq, {"Slow": (LISTEN, 2, "--pattern job.run --sleep-ms 60000")})
    r = emit(project, rabbitmq, "job.run", 1)
    assert r.returncode == 0, r.stdout + r.stderr
    (first, m), = wait_texts(node, "Slow", r"handling job\.run delivery=\d+ pid=(\d+)(?!\d| redelivered)", 1)
    os.kill(int(m.group(1)), signal.SIGKILL)
    # The broker takes the unacked delivery back and hands it to the other (or the restarted) instance.
    again = wait_texts(node, "Slow", r"handling job\.run delivery=\d+ pid=(\d+) redelivered", 1)
    assert again[0][1].group(1) != m.group(1)
    node.stop()


def test_a_handler_that_gives_an_event_back_gets_it_again_through_lymph_retry(project, rabbitmq):
    node = start(project, rabbitmq, {"Picky": (PROBE, 1, "consume 'order.placed' --fail-first")})
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        # lymph's retry path: the handler's queue is bound to lymph_retry under its own name.
        conn.default_channel.queue_bind("Picky-order.placed", exchange="lymph_retry", routing_key="Picky-order.placed")
    r = emit(project, rabbitmq, "order.placed", 3)
    assert r.returncode == 0, r.stdout + r.stderr
    again = wait_texts(node, "Picky", r"got order\.placed n=(\d+) .*redelivered=1", 3)
    assert sorted(int(m.group(1)) for _, m in again) == [0, 1, 2]
    assert len(texts(node, "Picky", r"giving back")) == 3
    node.stop()


def test_a_waited_emit_returns_once_the_broker_has_it_and_close_counts_every_confirm(project, rabbitmq):
    queue = "Check-" + uuid.uuid4().hex[:8]
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        conn.default_channel.queue_declare(queue=queue, auto_delete=False)
        conn.default_channel.queue_bind(queue, exchange="lymph", routing_key="audit.checked")
    # The waited emits returned, the process still holds its connection: the broker has them.
    p = subprocess.Popen([str(PROBE), "emit", "audit.checked", "3", "--wait", "--hold"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=project.node_env(DEVNODE_EVENTS=rabbitmq.url))
    assert p.stdout.readline().strip() == "emitted"
    assert queue_state(rabbitmq, queue) == (3, 0)
    out, err = p.communicate("\n", timeout=30)
    assert out.strip() == "accepted 3 failed 0 close 0" and p.returncode == 0, out + err
    # No-wait emits: devnode_close returns 0 once the broker confirmed every one.
    r = emit(project, rabbitmq, "audit.checked", 5000)
    assert (r.stdout.strip(), r.returncode, r.stderr) == ("accepted 5000 failed 0 close 0", 0, "")
    assert queue_state(rabbitmq, queue) == (5003, 0)
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        conn.default_channel.queue_delete(queue)


def test_a_nack_is_warned_and_counted_by_close(project, rabbitmq):
    # A queue that takes one message and refuses more (reject-publish): the broker nacks the rest.
    queue = "Full-" + uuid.uuid4().hex[:8]
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        conn.default_channel.queue_declare(queue=queue, auto_delete=False,
                                           arguments={"x-max-length": 1, "x-overflow": "reject-publish"})
        conn.default_channel.queue_bind(queue, exchange="lymph", routing_key="audit.full")
    r = emit(project, rabbitmq, "audit.full", 4)
    assert r.stdout.strip() == "accepted 4 failed 0 close 3" and r.returncode == 1, r.stdout + r.stderr
    assert "the broker refused" in r.stderr and "audit.full" in r.stderr, r.stderr
    # A waited emit hears of the nack itself.
    r = emit(project, rabbitmq, "audit.full", 1, "--wait")
    assert r.stdout.strip() == "accepted 0 failed 1 close 0", r.stdout + r.stderr
    assert "amqpprobe: emit audit.full: the broker refused it (nack)" in r.stderr, r.stderr
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        conn.default_channel.queue_delete(queue)


def test_a_broker_that_is_not_there_is_one_line_without_the_password(project, rabbitmq):
    r = emit(project, rabbitmq, "greeted", 1, "--wait", url="amqp://guest:s3cret@127.0.0.1:1/%2F")
    assert r.returncode == 1
    assert "amqpprobe: DEVNODE_EVENTS=amqp://guest:***@127.0.0.1:1/%2F: cannot connect" in r.stderr, r.stderr
    assert "s3cret" not in r.stderr
    r = emit(project, rabbitmq, "greeted", 1, url="http://127.0.0.1/")
    assert "not an AMQP URL (want amqp://user:pass@host:5672/vhost" in r.stderr, r.stderr


def test_a_stream_subscription_under_amqp_is_refused_clearly(project, rabbitmq):
    libemit = ROOT / "build" / "libhelpers" / "libemit"
    env = project.node_env(DEVNODE_EVENTS=rabbitmq.url, DEVNODE_ENDPOINT=f"ipc://{project.dir}/none.sock",
                           DEVNODE_SERVICE="Counter")
    r = subprocess.run([str(libemit), "count", "book.#", "1", "book.#"], capture_output=True, text=True, env=env,
                       timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert "subscribe to stream book.#: retained streams are the embedded node's only" in r.stderr, r.stderr


def test_kombu_publishes_in_lymphs_format_and_a_devnode_handler_consumes_it_once(project, rabbitmq):
    node = start(project, rabbitmq, {"Listen": (LISTEN, 2)})
    lymph_serializer()
    exchange = kombu.Exchange("lymph", type="topic", durable=True)
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        producer = conn.Producer(serializer="lymph-msgpack")
        for i in range(3):
            # lymph's Event.serialize() and KombuEventSystem.emit: routing key = the event type.
            producer.publish({"type": "greeted", "headers": {"trace_id": f"kombu-trace-{i}"},
                              "body": {"name": f"kombu{i}"}, "source": "lymph-identity"},
                             exchange=exchange, routing_key="greeted", declare=[exchange])
    found = wait_texts(node, "Listen", r"Somebody greeted (kombu\d)", 3)
    assert sorted(m.group(1) for _, m in found) == ["kombu0", "kombu1", "kombu2"]
    assert sorted(r["trace_id"] for r, _ in found) == ["kombu-trace-0", "kombu-trace-1", "kombu-trace-2"]
    node.stop()
    assert len(texts(node, "Listen", r"Somebody greeted kombu")) == 3, "each once per service"


def test_kombu_consumes_what_a_devnode_service_emits(project, rabbitmq):
    lymph_serializer()
    exchange = kombu.Exchange("lymph", type="topic", durable=True)
    queue = kombu.Queue("lymphsvc-on_greeted-" + uuid.uuid4().hex[:6], exchange, routing_key="greeted",
                        auto_delete=True)
    got = []
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        with conn.Consumer(queue, callbacks=[lambda body, message: (got.append((body, message)), message.ack())]):
            r = emit(project, rabbitmq, "greeted", 1, "--wait")
            assert r.returncode == 0, r.stdout + r.stderr
            wait_for(lambda: got or drain(conn), 20, "kombu to get the event")
            # the CLI follows backends.events, with no node running
            project.write(f"backends:\n    events: {rabbitmq.url}\ninstances:\n    A: {{command: sleep 1}}\n")
            r = project.cli("emit", "greeted", '{"name": "cli"}')
            assert r.returncode == 0, r.stderr
            wait_for(lambda: len(got) == 2 or drain(conn), 20, "kombu to get the CLI's event")
    assert got[1][0]["body"] == {"name": "cli"} and got[1][0]["source"] == "cli", got[1][0]
    body, message = got[0]
    assert message.delivery_info["exchange"] == "lymph"
    assert message.delivery_info["routing_key"] == "greeted"
    assert message.content_type == LYMPH_MSGPACK
    assert set(body) == {"type", "headers", "body", "source"}
    assert body["type"] == "greeted" and body["source"] == "publisher"
    assert body["body"] == {"n": 0, "name": "p0"}
    assert re.fullmatch(r"[0-9a-f]{32}", body["headers"]["trace_id"]), body


def rabbitmqctl(rabbitmq, *args):
    """The broker's own CLI, on the fixture's node (its cookie is in the fixture's HOME)."""
    env = dict(os.environ, HOME=str(rabbitmq.dir), ERL_EPMD_PORT=str(rabbitmq.epmd_port))
    return subprocess.run(["/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", rabbitmq.nodename, *args], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def test_connections_the_broker_closes_are_said_and_opened_again(project, rabbitmq):
    node = start(project, rabbitmq, {"Recon": (PROBE, 1, "consume 'recon.x'")})
    r = rabbitmqctl(rabbitmq, "close_all_connections", "closed by the test")
    assert r.returncode == 0, r.stdout + r.stderr
    # Both of the service's connections: said, never silent, and the subscription comes back.
    node.wait_log(lambda rec: rec.get("service") == "Recon" and "lost the connection to the broker" in rec["text"]
                  and "CONNECTION_FORCED - closed by the test" in rec["text"], 30, "the publisher's loss said")
    node.wait_log(lambda rec: rec.get("service") == "Recon" and "lost the consumer connection" in rec["text"]
                  and "***" in rec["text"], 30, "the consumer's loss said")
    node.wait_log(lambda rec: rec.get("service") == "Recon" and "subscribed again" in rec["text"], 30,
                  "the subscription back")
    r = emit(project, rabbitmq, "recon.x", 1, "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_texts(node, "Recon", r"got recon\.x n=0", 1)
    node.stop()


PY_RELAY = '''import devnode


class Relay(devnode.Interface):
    """Handles each `greeted` once per service, then emits `relayed` (no wait) for C to handle."""

    @devnode.event('greeted')
    def on_greeted(self, event):
        print('py got %s from %s redelivered=%s' % (event['name'], event.source, event.redelivered))
        self.emit('relayed', {'name': event['name'], 'n': event['n']})
'''


def test_python_services_use_the_same_broker_in_the_same_layout(project, rabbitmq):
    """The Python client's back end (clients/python/devnode/amqp.py, on kombu): two Python Relay
    instances share the queue Relay-on_greeted (each event once), and what they emit a C
    handler gets through the same exchange."""
    from pyhelpers import py_config, py_env, write_service
    write_service(project, "relay.py", PY_RELAY)
    config = py_config({"Relay": ("relay:Relay", 2)}) + examples_config(
        {"Sink": (PROBE, 1, "consume relayed")}).replace("instances:\n", "")
    project.write(f"backends:\n    events: {rabbitmq.url}\n" + config)
    node = project.up(env=py_env(project))
    node.wait_running("Relay", 2, timeout=30)
    node.wait_running("Sink", 1, timeout=30)
    assert queue_state(rabbitmq, "Relay-on_greeted")[1] == 2, "both instances consume lymph's queue"
    r = emit(project, rabbitmq, "greeted", 10)
    assert r.returncode == 0, r.stdout + r.stderr
    got = wait_texts(node, "Relay", r"py got (p\d+) from publisher", 10)
    assert sorted(m.group(1) for _, m in got) == sorted(f"p{i}" for i in range(10))
    relayed = wait_texts(node, "Sink", r"got relayed n=(\d+) name=(p\d+) source=Relay", 10)
    assert sorted(int(m.group(1)) for _, m in relayed) == list(range(10))
    node.stop()
