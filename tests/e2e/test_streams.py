"""Retained streams at the protocol level: delayed events join a stream when due, and
committed offsets of any group name survive a node restart."""
import json
import time

import msgpack
import zmq

from conftest import wait_for

CONFIG = """
instances:
    Idle:
        command: sleep 1000
streams:
    audit.#: {retain_events: 1000}
"""


def conn(project):
    s = zmq.Context.instance().socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.connect((project.run_dir / "endpoint").read_text().strip())
    return s


def request(sock, type_, body):
    sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])
    while sock.poll(5000):
        _, ty, b = sock.recv_multipart()
        if ty != b"event":
            return ty.decode(), msgpack.unpackb(b)
    raise AssertionError(f"no reply to {type_}")


def events(sock, ack=True, wait_ms=300):
    out = []
    while sock.poll(wait_ms):
        _, ty, b = sock.recv_multipart()
        if ty == b"event":
            ev = msgpack.unpackb(b)
            out.append(ev)
            if ack:
                sock.send_multipart([b"1", b"ack", msgpack.packb({"delivery": ev["delivery"]})])
    return out


def journal_offsets(project):
    r = project.cli("events", "--json", check=True)
    return [json.loads(line)["offset"] for line in r.stdout.splitlines()]


def test_a_delayed_event_joins_the_stream_when_it_is_due(project):
    node = project.write(CONFIG).up()
    node.wait_running("Idle", 1)
    sub = conn(project)
    assert request(sub, "subscribe", {"id": 1, "subscription": "s", "patterns": ["audit.#"], "broadcast": True,
                                      "stream": "audit.#", "from": "now"})[0] == "ok"
    pub = conn(project)
    t0 = time.monotonic()
    kind, reply = request(pub, "emit", {"id": 2, "type": "audit.login", "body": {}, "delay_ms": 1500})
    assert kind == "ok" and reply["offset"] is None
    assert journal_offsets(project) == []
    got = wait_for(lambda: events(sub, wait_ms=100), 10, "the delayed event")
    assert time.monotonic() - t0 >= 1.4
    assert [e["offset"] for e in got] == [0]
    assert journal_offsets(project) == [0]


def test_committed_offset_of_a_group_with_spaces_survives_a_restart(project):
    node = project.write(CONFIG).up()
    pub = conn(project)
    for i in range(5):
        request(pub, "emit", {"id": i, "type": "audit.login", "body": {"i": i}})
    sub = conn(project)
    body = {"id": 10, "subscription": "s", "patterns": ["audit.#"], "group": "Audit.my log", "stream": "audit.#",
            "from": "beginning"}
    assert request(sub, "subscribe", body)[0] == "ok"
    assert [e["offset"] for e in events(sub)] == [0, 1, 2, 3, 4]
    sub.close()
    pub.close()
    node.stop()
    node2 = project.up()
    node2.wait_running("Idle", 1)
    pub = conn(project)
    request(pub, "emit", {"id": 20, "type": "audit.login", "body": {"i": 5}})
    sub = conn(project)
    body["from"] = "resume"
    assert request(sub, "subscribe", body)[0] == "ok"
    assert [e["offset"] for e in events(sub)] == [5]


def test_group_names_with_control_characters_are_refused(project):
    project.write(CONFIG).up()
    sub = conn(project)
    kind, reply = request(sub, "subscribe", {"id": 1, "subscription": "s", "patterns": ["audit.#"],
                                             "group": "bad\nname"})
    assert kind == "error" and "control characters" in reply["message"]


def test_a_journal_that_cannot_be_opened_stops_up_before_anything_runs(project):
    project.write(CONFIG)
    project.run_dir.mkdir(mode=0o700)
    (project.run_dir / "streams").write_text("not a directory\n")
    node = project.up(wait=False)
    assert node.wait_exit() == 1
    out = node.output()
    assert "cannot read" in out and "streams: Not a directory" in out, out[-2000:]
    assert "Idle.0 started" not in out
