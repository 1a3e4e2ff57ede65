"""libdevnode's and the Python client's RabbitMQ back end when the broker goes away (docs/backends.md,
"When the broker goes away"): a broker gone silent (SIGSTOPped: its sockets stay open and say
nothing, as behind a firewall that drops packets) is noticed through AMQP heartbeats
(DEVNODE_EVENTS_HEARTBEAT_S, 1 s here so the tests are quick) by consumers and publishers alike;
no-wait events the broker did not confirm are counted by devnode_close / devnode_stop and said;
a waited emit fails naming the broker; devnode_run's status says when events were lost; and a
member consuming through a broker restart consumes again. Against the shared broker fixture,
which each test leaves running and unpaused."""
import re
import subprocess
import uuid

import pytest

from test_amqp_events import PROBE, emit, rabbitmqctl, texts, wait_texts

kombu = pytest.importorskip("kombu")

BEAT = "1"  # DEVNODE_EVENTS_HEARTBEAT_S: a silent broker is noticed in 2-2.5 s


def up(project, rabbitmq, config, env=None):
    project.write(config)
    return project.up(env=env or project.node_env(DEVNODE_EVENTS=rabbitmq.url, DEVNODE_EVENTS_HEARTBEAT_S=BEAT))


def service_says(node, service, *needles):
    return lambda rec: rec.get("service") == service and all(n in rec["text"] for n in needles)


def probe(project, rabbitmq, *args):
    """amqpprobe emit … --ready: its connection is open once it printed `ready`; a line on stdin
    lets it emit."""
    p = subprocess.Popen([str(PROBE), "emit", *map(str, args), "--ready"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=project.node_env(DEVNODE_EVENTS=rabbitmq.url, DEVNODE_EVENTS_HEARTBEAT_S=BEAT))
    assert p.stdout.readline().strip() == "ready", p.stderr.read() if p.poll() is not None else "no ready line"
    return p


def test_a_consumer_notices_a_silent_broker_by_heartbeats_and_consumes_again(project, rabbitmq):
    node = up(project, rabbitmq, "instances:\n    Beat:\n        command: %s consume beat.x\n"
              "        ready: notify\n        stop_timeout: 3\n" % PROBE)
    node.wait_running("Beat", 1, timeout=30)
    with rabbitmq.paused():
        # Without heartbeats nothing ever arrives and nothing fails: the member waits forever.
        node.wait_log(service_says(node, "Beat", "lost the consumer connection", "no heartbeat from the broker for 2 s",
                                   "***"), 20, "the consumer's silent broker noticed")
        node.wait_log(service_says(node, "Beat", "lost the connection to the broker", "no heartbeat"), 20,
                      "the publisher's silent broker noticed")
    node.wait_log(service_says(node, "Beat", "subscribed again"), 60, "the subscription back")
    r = emit(project, rabbitmq, "beat.x", 1, "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_texts(node, "Beat", r"got beat\.x n=0", 1)
    node.stop()


def test_no_wait_events_a_silent_broker_never_confirmed_are_counted_by_close(project, rabbitmq):
    p = probe(project, rabbitmq, "silent.x", 20)
    with rabbitmq.paused():
        out, err = p.communicate("\n", timeout=60)
    # Written to the socket, never confirmed: the heartbeat says the broker is gone, and close
    # returns every one of them (the embedded bus's contract: delivered, or told how many not).
    assert out.strip() == "accepted 20 failed 0 close 20" and p.returncode == 1, out + err
    assert re.search(r"lost the connection to the broker amqp://guest:\*\*\*@127\.0\.0\.1:\d+/%2F \(no heartbeat "
                     r"from the broker for 2 s\): 20 event\(s\) emitted without waiting were not confirmed", err), err


def test_a_waited_emit_to_a_silent_broker_fails_naming_it(project, rabbitmq):
    p = probe(project, rabbitmq, "silent.y", 1, "--wait")
    with rabbitmq.paused():
        out, err = p.communicate("\n", timeout=60)
    assert out.strip() == "accepted 0 failed 1 close 0" and p.returncode == 1, out + err
    assert re.search(r"amqpprobe: emit silent\.y: amqp://guest:\*\*\*@127\.0\.0\.1:\d+/%2F: the connection was lost "
                     r"\(no heartbeat from the broker for 2 s\)", err), err


def test_a_publisher_connection_closed_with_events_unconfirmed_is_counted_by_close(project, rabbitmq):
    # A memory alarm: the broker stops reading publishers, so what they write stays unconfirmed.
    p = probe(project, rabbitmq, "alarm.x", 50, "--hold")
    r = rabbitmqctl(rabbitmq, "set_vm_memory_high_watermark", "0")
    assert r.returncode == 0, r.stdout + r.stderr
    try:
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "emitted"
        r = rabbitmqctl(rabbitmq, "close_all_connections", "closed by the test")
        assert r.returncode == 0, r.stdout + r.stderr
        out, err = p.communicate("\n", timeout=60)
    finally:
        r = rabbitmqctl(rabbitmq, "set_vm_memory_high_watermark", "0.4")
        assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"accepted 50 failed 0 close (\d+)", out)
    assert m and int(m.group(1)) > 0 and p.returncode == 1, out + err
    assert re.search(rf"lost the connection to the broker amqp://guest:\*\*\*@\S+ \(.*CONNECTION_FORCED - closed by "
                     rf"the test.*\): {m.group(1)} event\(s\) emitted without waiting were not confirmed", err), err


def test_devnode_run_fails_when_its_no_wait_events_were_not_all_confirmed(project, rabbitmq):
    # Everything the relay emits goes to a queue that refuses it (the broker nacks).
    queue = "Refuse-" + uuid.uuid4().hex[:8]
    with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
        conn.default_channel.exchange_declare("lymph", "topic", durable=True, auto_delete=False)  # as lymph does
        conn.default_channel.queue_declare(queue=queue, auto_delete=False,
                                           arguments={"x-max-length": 0, "x-overflow": "reject-publish"})
        conn.default_channel.queue_bind(queue, exchange="lymph", routing_key="relay.out")
    try:
        node = up(project, rabbitmq, "instances:\n    Relay:\n        command: %s consume relay.in --relay relay.out\n"
                  "        ready: notify\n        stop_timeout: 10\n" % PROBE)
        node.wait_running("Relay", 1, timeout=30)
        r = emit(project, rabbitmq, "relay.in", 3, "--wait")
        assert r.returncode == 0, r.stdout + r.stderr
        wait_texts(node, "Relay", r"got relay\.in", 3)
        node.wait_log(service_says(node, "Relay", "the broker refused"), 20, "the nacks said")
        node.stop()
        # devnode_stop counted them; devnode_run must not then say 0 (the process exited 0).
        assert node.node_lines(r"^Relay\.0 stopped \(exited with status 1\)"), [r["text"] for r in node.node_lines("Relay")]
        assert texts(node, "Relay", r"3 event\(s\) emitted without waiting were not delivered"), \
            [r["text"] for r in node.records() if r.get("service") == "Relay"]
    finally:
        with kombu.Connection(rabbitmq.url, connect_timeout=15) as conn:
            conn.default_channel.queue_delete(queue)


PY_BEAT = '''import devnode


class PyBeat(devnode.Interface):
    @devnode.event('pybeat.x')
    def on_x(self, event):
        print('py got %s' % event['name'])
'''


def test_a_python_consumer_notices_a_silent_broker_and_consumes_again(project, rabbitmq):
    from pyhelpers import py_config, py_env, write_service
    write_service(project, "pybeat.py", PY_BEAT)
    node = up(project, rabbitmq, py_config({"PyBeat": ("pybeat:PyBeat", 1)}),
              env=py_env(project, DEVNODE_EVENTS=rabbitmq.url, DEVNODE_EVENTS_HEARTBEAT_S=BEAT))
    node.wait_running("PyBeat", 1, timeout=30)
    with rabbitmq.paused():
        node.wait_log(service_says(node, "PyBeat", "lost the consumer connection", "***"), 20,
                      "the Python consumer's silent broker noticed")
    node.wait_log(service_says(node, "PyBeat", "subscribed again"), 60, "the Python subscription back")
    r = emit(project, rabbitmq, "pybeat.x", 1, "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_texts(node, "PyBeat", r"py got p0", 1)
    node.stop()


def test_members_consume_again_after_a_broker_restart(project, rabbitmq):
    from pyhelpers import py_config, py_env, write_service
    from demohelpers import examples_config
    write_service(project, "pybeat.py", PY_BEAT)
    config = py_config({"PyBeat": ("pybeat:PyBeat", 1)}) + examples_config(
        {"Beat": (PROBE, 1, "consume pybeat.x")}).replace("instances:\n", "")
    node = up(project, rabbitmq, config,
              env=py_env(project, DEVNODE_EVENTS=rabbitmq.url, DEVNODE_EVENTS_HEARTBEAT_S=BEAT))
    node.wait_running("PyBeat", 1, timeout=30)
    node.wait_running("Beat", 1, timeout=30)
    rabbitmq.restart()
    for service in ("Beat", "PyBeat"):
        node.wait_log(service_says(node, service, "subscribed again"), 60, f"{service}'s subscription back")
    r = emit(project, rabbitmq, "pybeat.x", 1, "--wait")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_texts(node, "PyBeat", r"py got p0", 1)
    wait_texts(node, "Beat", r"got pybeat\.x n=0", 1)
    node.stop()


def test_a_heartbeat_that_is_not_a_number_of_seconds_is_refused(project, rabbitmq):
    for bad in ("abc", "601", "-1"):
        r = subprocess.run([str(PROBE), "emit", "x.y", "1"], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL,
                           env=project.node_env(DEVNODE_EVENTS=rabbitmq.url, DEVNODE_EVENTS_HEARTBEAT_S=bad))
        assert r.returncode == 1, r.stdout + r.stderr
        assert f"amqpprobe: DEVNODE_EVENTS_HEARTBEAT_S={bad}: want seconds from 1 to 600, or 0 for none" in r.stderr, \
            r.stderr
