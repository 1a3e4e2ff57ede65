"""Talking to a running node: scale, restart, stop, the single-node lock, the raw wire
protocol, signals and exit codes."""
import fcntl
import json
import os
import re
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path

import msgpack
import pytest
import zmq

from conftest import (BURST, DEVNODE, Node, base_env, describe_pids, marked_pids, pid_alive, proc_cmdline,
                      proc_environ, wait_for)

SLEEPER = """\
instances:
    Svc:
        command: exec sleep 1000
        numprocesses: {n}
    Other:
        command: exec sleep 1001
"""


def iso_time(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def pids_of(insts):
    return [i["pid"] for i in insts]


def test_scale_up_down_to_zero_and_back(project):
    project.write(SLEEPER.format(n=3))
    node = project.up()
    three = pids_of(node.wait_running("Svc", 3))
    other = pids_of(node.wait_running("Other", 1))

    r = node.cli("scale", "Svc", "5")
    assert r.returncode == 0 and re.fullmatch(r"scaled Svc to 5: 2 instances ready in \d+\.\d s\n", r.stdout), r
    five = pids_of(node.wait_running("Svc", 5))
    assert five[:3] == three, "scaling up must leave the running instances alone"
    assert len(set(five)) == 5

    r = node.cli("scale", "Svc", "1")
    assert r.returncode == 0 and re.fullmatch(r"scaled Svc to 1: 4 instances stopped in \d+\.\d s\n", r.stdout), r
    one = pids_of(node.wait_running("Svc", 1))
    assert one == [three[0]], "scaling down stops the highest indexes"
    wait_for(lambda: not any(pid_alive(p) for p in five[1:]), 10, "scaled-away instances to be gone")
    texts = [x["text"] for x in node.node_lines()]
    for i in range(1, 5):
        assert any(t.startswith(f"Svc.{i} stopped (") and t.endswith("; scaled away") for t in texts), texts

    r = node.cli("scale", "Svc", "0")
    assert r.returncode == 0 and re.fullmatch(r"scaled Svc to 0: 1 instance stopped in \d+\.\d s\n", r.stdout), r
    node.wait_running("Svc", 0)
    wait_for(lambda: not pid_alive(one[0]), 10, "Svc.0 to be gone")

    r = node.cli("scale", "Svc", "2")
    assert r.returncode == 0, r.stderr
    two = pids_of(node.wait_running("Svc", 2))
    assert not set(two) & set(five)
    assert [proc_environ(p)["DEVNODE_INSTANCE"] for p in two] == ["0", "1"]
    assert all(i["restarts"] == 0 for i in node.service("Svc")["instances"])

    # Other was never touched.
    assert pids_of(node.service("Other")["instances"]) == other

    r = node.cli("scale", "Nope", "2")
    assert r.returncode == 2 and r.stderr == "devnode: scale: no service 'Nope' (known: Other, Svc)\n", r.stderr
    for bad in ("-1", "many"):
        r = node.cli("scale", "Svc", bad)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip() == "devnode: scale: COUNT must be a whole number from 0 to 10000, not '%s'" % bad, r.stderr
    node.wait_running("Svc", 2)
    node.stop()


def test_restart_service_and_instance(project):
    project.write(SLEEPER.format(n=2))
    node = project.up()
    before = pids_of(node.wait_running("Svc", 2))
    other = pids_of(node.wait_running("Other", 1))

    r = node.cli("restart", "Svc")
    assert r.returncode == 0 and re.fullmatch(r"restarted Svc: 2 instances ready in \d+\.\d s\n", r.stdout), r

    def restarted(count_by_index, old):
        def check():
            insts = node.service("Svc")["instances"]
            ok = all(i["state"] == "running" and pid_alive(i["pid"]) and i["restarts"] == count_by_index[i["index"]]
                     for i in insts)
            return insts if ok and len(insts) == 2 else None
        return wait_for(check, 10, f"Svc restarts to reach {count_by_index}")

    after = restarted({0: 1, 1: 1}, before)
    assert not set(pids_of(after)) & set(before)
    for p in before:
        wait_for(lambda: not pid_alive(p), 10, f"old pid {p} to be gone")

    r = node.cli("restart", "Svc.1")
    assert r.returncode == 0 and re.fullmatch(r"restarted Svc\.1: 1 instance ready in \d+\.\d s\n", r.stdout), r
    again = restarted({0: 1, 1: 2}, after)
    assert again[0]["pid"] == after[0]["pid"]
    assert again[1]["pid"] != after[1]["pid"]

    assert pids_of(node.service("Other")["instances"]) == other
    assert node.service("Other")["instances"][0]["restarts"] == 0

    r = node.cli("restart", "Nope")
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == "devnode: restart: no service 'Nope' (known: Other, Svc)\n", r.stderr
    r = node.cli("restart", "Svc.7")
    assert r.returncode == 2 and r.stderr == "devnode: restart: Svc has no instance 7 (known: Svc.0, Svc.1)\n", r.stderr
    r = node.cli("restart")
    assert r.returncode == 2
    node.stop()


def test_restart_brings_back_a_failed_service_once_fixed(project):
    project.write("""\
instances:
    Tool:
        command: ./tool.sh
""")
    node = project.up()
    node.wait_node_line(r"^Tool\.0 cannot run: command not found \(exit status 127\)")
    assert node.service("Tool")["instances"][0]["state"] == "failed"
    tool = project.dir / "tool.sh"
    tool.write_text("#!/bin/sh\nexec sleep 1000\n")
    tool.chmod(0o755)
    r = node.cli("restart", "Tool")
    assert r.returncode == 0, r.stderr
    (inst,) = node.wait_running("Tool", 1)
    assert inst["failure"] is None
    node.stop()


def test_second_up_is_refused_and_stale_lock_recovered(project):
    project.write(SLEEPER.format(n=1))
    node = project.up()
    node.wait_running("Svc", 1)

    second_marker = project.marker + "-second"
    r = subprocess.run([str(DEVNODE), "up"], cwd=project.dir, timeout=20, capture_output=True, text=True,
                       env=base_env(DEVNODE_TEST_MARKER=second_marker), stdin=subprocess.DEVNULL)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert r.stderr.strip() == f"devnode: node already running (pid {node.pid})"
    assert marked_pids(second_marker) == [], "the refused node started something"
    assert node.alive() and node.status()["node"]["pid"] == node.pid

    # SIGKILL the node: its lock goes stale; a new node takes over.
    os.kill(node.pid, signal.SIGKILL)
    node.wait_exit(10)
    wait_for(lambda: not marked_pids(project.marker), 10,
             lambda: f"old node's processes to be gone: {describe_pids(marked_pids(project.marker))}")
    r = project.cli("status")
    assert r.returncode == 1 and "no node running" in r.stderr, (r.stdout, r.stderr)

    fresh = project.up()
    assert fresh.pid != node.pid
    fresh.wait_running("Svc", 1)
    assert fresh.status()["node"]["pid"] == fresh.pid
    assert (project.run_dir / "node.lock").read_text().strip() == str(fresh.pid)
    fresh.stop()


# ---------------------------------------------------------------- wire protocol

class Dealer:
    def __init__(self, endpoint):
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def send(self, frames):
        self.sock.send_multipart(frames)

    def recv(self, timeout_ms=5000):
        if not self.sock.poll(timeout_ms):
            raise AssertionError(f"no reply from the node within {timeout_ms} ms")
        return self.sock.recv_multipart()

    def request(self, type_, body):
        self.send([b"1", type_, msgpack.packb(body)])
        frames = self.recv()
        assert len(frames) == 3, frames
        return frames[0], frames[1], msgpack.unpackb(frames[2], raw=False)

    def close(self):
        self.sock.close(0)
        self.ctx.term()


@pytest.fixture
def dealer(project):
    made = []

    def connect():
        d = Dealer((project.run_dir / "endpoint").read_text().strip())
        made.append(d)
        return d
    yield connect
    for d in made:
        d.close()


def test_wire_status_round_trip_and_malformed_messages(project, dealer):
    project.write(SLEEPER.format(n=2))
    node = project.up()
    node.wait_running("Svc", 2)
    d = dealer()

    version, type_, body = d.request(b"status", {"id": 7})
    assert (version, type_) == (b"1", b"status")
    assert body["id"] == 7
    assert body["node"]["pid"] == node.pid and body["node"]["malformed_messages"] == 0
    assert [s["name"] for s in body["services"]] == ["Svc", "Other"]

    garbage = [
        [b"hello"],                                                    # a single frame
        [b"01", b"status", msgpack.packb({"id": 1})],                  # a version is no number
        [b"2", b"status", b"\xc1"],                                    # another version, no map
        [b"1", b"status"],                                             # missing body
        [b"1", b"status", msgpack.packb([1, 2, 3])],                   # body not a map
        [b"1", b"status", msgpack.packb("id")],                        # body a string
        [b"1", b"status", msgpack.packb({"id": 1}), b"x"],             # extra frame
        [b"1", b"status", msgpack.packb({"id": 1}), b"x", b"y"],       # 3 body frames
        [b"1", b"status", b"\xc1\xff\x00garbage"],                     # not msgpack at all
        [b"1", b"status", b"\xdf\xff\xff\xff\xff"],                    # map claiming 4G entries
        [b"1", b"", msgpack.packb({"id": 1})],                         # empty type
        [b"\x00" * 100000],                                            # one big junk frame
        [b"1", b"status", b"\x81\xa2id" + b"\x91" * 100000 + b"\x01"],   # 100000 nested arrays
        [b"1", b"status", b"\x81\xa2id\xdb\xff\xff\xff\xf0abc"],         # str claiming 4 GiB
        [b"1", b"status", b"\x81\xa2id\xdd\xff\xff\xff\xf0"],            # array claiming 4G items
        [b"1", b"status"] + [b"x"] * 1000,                              # 1000 frames
        [b"1", b"status", msgpack.packb({"id": 1}) + b"\x00\x00"],      # trailing bytes
        [b"1", b"s" * 10000, msgpack.packb({"id": 1})],                 # absurd type
    ]
    for frames in garbage:
        d.send(frames)
    # Malformed messages get no reply: the next reply is the answer to this request.
    version, type_, body = d.request(b"status", {"id": 8})
    assert (version, type_) == (b"1", b"status") and body["id"] == 8
    assert body["node"]["malformed_messages"] == len(garbage)
    assert node.status()["node"]["malformed_messages"] == len(garbage)

    version, type_, body = d.request(b"frobnicate", {"id": 9})
    assert (version, type_) == (b"1", b"error")
    assert body["id"] == 9 and "frobnicate" in body["message"]
    assert node.status()["node"]["malformed_messages"] == len(garbage)

    # A burst of pipelined requests on one socket: every one is answered (the edge-triggered
    # ZMQ_FD path), and a second client is served meanwhile.
    for i in range(1000):
        d.send([b"1", b"status", msgpack.packb({"id": 1000 + i})])
    other = dealer()
    _, type_, body = other.request(b"status", {"id": "other"})
    assert type_ == b"status" and body["id"] == "other"
    ids = []
    for _ in range(1000):
        frames = d.recv()
        ids.append(msgpack.unpackb(frames[2], raw=False)["id"])
    assert ids == list(range(1000, 2000))
    assert node.alive()
    node.stop()


def test_wire_errors_for_bad_requests(project, dealer):
    project.write(SLEEPER.format(n=1))
    node = project.up()
    d = dealer()
    _, type_, body = d.request(b"restart", {"id": 1, "target": "Nope"})
    assert type_ == b"error" and body == {"id": 1, "message": "no service named 'Nope'"}
    _, type_, body = d.request(b"restart", {"id": 2})
    assert type_ == b"error" and body["id"] == 2 and "target" in body["message"]
    _, type_, body = d.request(b"scale", {"id": 3, "service": "Svc", "count": "two"})
    assert type_ == b"error" and body["id"] == 3
    _, type_, body = d.request(b"scale", {"id": 4, "service": "Svc", "count": 2})
    assert type_ != b"error" and body["id"] == 4, (type_, body)
    node.wait_running("Svc", 2)
    assert node.status()["node"]["malformed_messages"] == 0
    node.stop()


def test_a_client_of_another_protocol_version_gets_one_line_naming_both(project, dealer):
    project.write(SLEEPER.format(n=1))
    node = project.up()
    d = dealer()
    for version in (b"2", b"10"):
        d.send([version, b"status", msgpack.packb({"id": 41})])
        frames = d.recv()
        assert len(frames) == 3
        assert frames[:2] == [b"1", b"error"]   # framed in the node's own version
        body = msgpack.unpackb(frames[2], raw=False)
        assert body["id"] == 41
        message = body["message"]
        assert "\n" not in message
        assert message.startswith(f"the node speaks protocol 1, this client {version.decode()}: "), message
    # Not served, so counted with the malformed messages; the node goes on serving version 1.
    assert node.status()["node"]["malformed_messages"] == 2
    _, type_, body = d.request(b"ping", {"id": 42})
    assert type_ == b"ok" and body == {"id": 42}
    node.stop()


class OtherVersionNode:
    """A node of protocol version 2, as far as a client can tell: it holds the run dir's lock,
    publishes an endpoint and answers every message in its own version with the error a node
    gives a client of another version. Only this can show what the CLI does then."""

    def __init__(self, project):
        import threading
        project.run_dir.mkdir(mode=0o700, exist_ok=True)
        self.lock = open(project.run_dir / "node.lock", "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.lock.write(str(os.getpid()))
        self.lock.flush()
        endpoint = f"ipc://{project.run_dir}/v2.sock"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind(endpoint)
        (project.run_dir / "endpoint").write_text(endpoint + "\n")
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            if not self.sock.poll(100):
                continue
            frames = self.sock.recv_multipart()
            ident, version = frames[0], frames[1]
            body = msgpack.unpackb(frames[3]) if len(frames) == 4 else {}
            self.sock.send_multipart([ident, b"2", b"error", msgpack.packb(
                {"id": body.get("id"), "message": f"the node speaks protocol 2, this client {version.decode()}"})])

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        self.ctx.term()
        self.lock.close()


def test_the_cli_names_both_versions_when_the_node_speaks_another(project):
    project.write(SLEEPER.format(n=1))
    other = OtherVersionNode(project)
    try:
        for args in (("status",), ("status", "--json"), ("restart", "--no-wait", "Svc"), ("stop",)):
            r = project.cli(*args)
            lines = r.stderr.strip().splitlines()
            assert r.returncode == 1, (args, r.stderr)
            assert len(lines) == 1 and "the node speaks protocol 2, this devnode 1: " in lines[0], (args, lines)
            assert lines[0].startswith("devnode: "), lines
    finally:
        other.close()


# ---------------------------------------------------------------- signals and exit codes

def test_stop_command_waits_for_the_node(project):
    project.write(SLEEPER.format(n=2))
    node = project.up()
    workers = pids_of(node.wait_running("Svc", 2))
    r = node.cli("stop")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(rf"node {node.pid} stopped 3 instances of 2 services in \d+\.\d s\n", r.stdout), r.stdout
    # `stop` returns once the node is gone: no waiting needed here.
    assert not pid_alive(node.pid) or node.proc.poll() is not None
    assert node.wait_exit(5) == 0
    assert not any(pid_alive(p) for p in workers)
    texts = [x["text"] for x in node.node_lines()]
    assert f"node {node.pid} {texts[-1]}\n" == r.stdout, "the summary is the node's last line"
    assert marked_pids(project.marker) == []
    assert not (project.run_dir / "node.sock").exists(), "the control socket is left behind"
    r = project.cli("stop")
    assert r.returncode == 1 and "no node running" in r.stderr


def test_stop_force_kills_at_once(project):
    project.write("""\
instances:
    Stubborn:
        command: trap '' TERM; while :; do sleep 0.1; done
        stop_timeout: 60
""")
    node = project.up()
    node.wait_running("Stubborn", 1)
    t0 = time.monotonic()
    r = node.cli("stop", "--force")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 10
    node.wait_exit(10)
    assert "Stubborn.0 stopped (killed by SIGKILL (signal 9))" in [x["text"] for x in node.node_lines()]


# SIGHUP reloads (test_reload.py), unless the terminal is gone
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_signal_to_node_stops_cleanly_with_exit_0(project, sig):
    project.write(SLEEPER.format(n=2))
    node = project.up()
    workers = pids_of(node.wait_running("Svc", 2))
    os.kill(node.pid, sig)
    assert node.wait_exit(15) == 0, node.describe()
    assert not any(pid_alive(p) for p in workers)
    texts = [x["text"] for x in node.node_lines()]
    assert "Svc.0 stopped (killed by SIGTERM (signal 15))" in texts, texts
    assert re.fullmatch(r"stopped 3 instances of 2 services in \d+\.\d s", texts[-1]), texts[-1]
    assert marked_pids(project.marker) == []
    assert not (project.run_dir / "node.sock").exists() and not (project.run_dir / "endpoint").exists()


def test_second_sigint_forces_kill(project):
    project.write("""\
instances:
    Stubborn:
        command: trap '' TERM INT; while :; do sleep 0.1; done
        stop_timeout: 60
""")
    node = project.up()
    node.wait_running("Stubborn", 1)
    os.kill(node.pid, signal.SIGINT)
    first = node.wait_node_line(r"stopping all instances")
    assert node.status()["node"]["stopping"] is True
    assert node.service("Stubborn")["instances"][0]["state"] == "stopping"
    t0 = time.monotonic()
    os.kill(node.pid, signal.SIGINT)
    code = node.wait_exit(10)
    assert time.monotonic() - t0 < 5, "the second Ctrl-C must not wait for stop_timeout"
    node.wait_node_line(r"^Stubborn\.0 stopped \(killed by SIGKILL \(signal 9\)\)$", after_seq=first["seq"])
    assert code == 0, node.describe()


def test_cli_exit_codes_without_a_node(project):
    project.write(SLEEPER.format(n=1))
    r = project.cli("status")
    assert r.returncode == 1
    assert r.stderr.strip() == f"devnode: no node running in {project.dir}"
    r = project.cli("status", "--json")
    assert r.returncode == 1 and r.stdout == ""
    r = project.cli("restart", "Svc")
    assert r.returncode == 1
    r = project.cli("scale", "Svc", "2")
    assert r.returncode == 1
    r = subprocess.run([str(DEVNODE), "frobnicate"], capture_output=True, text=True, timeout=10, env=base_env())
    assert r.returncode == 2 and "unknown command 'frobnicate'" in r.stderr
    r = subprocess.run([str(DEVNODE)], capture_output=True, text=True, timeout=10, env=base_env())
    assert r.returncode == 2
    r = subprocess.run([str(DEVNODE), "up", "--color=bogus"], cwd=project.dir, capture_output=True,
                       text=True, timeout=10, env=project.node_env())
    assert r.returncode == 2 and "--color" in r.stderr
    assert marked_pids(project.marker) == []


def test_restart_escalates_to_kill_after_stop_timeout(project):
    project.write("""\
instances:
    Stubborn:
        command: trap '' TERM; echo up; while :; do sleep 0.1; done
        stop_timeout: 1
""")
    node = project.up()
    (before,) = node.wait_running("Stubborn", 1)
    node.wait_log(lambda r: r["service"] == "Stubborn" and r["text"] == "up")
    t0 = time.monotonic()
    r = node.cli("restart", "Stubborn.0")
    assert r.returncode == 0, r.stderr

    def replaced():
        i = node.service("Stubborn")["instances"][0]
        return i if i["state"] == "running" and i["pid"] != before["pid"] and pid_alive(i["pid"]) else None
    after = wait_for(replaced, 10, "Stubborn.0 to be replaced")
    assert 0.9 <= time.monotonic() - t0 < 6
    assert after["restarts"] == 1
    assert not pid_alive(before["pid"])
    node.wait_node_line(r"^Stubborn\.0 did not stop within 1\.0s after TERM; sending KILL$")
    node.stop()


def test_requests_while_stopping_are_refused(project):
    project.write("""\
instances:
    Stubborn:
        command: trap '' TERM; while :; do sleep 0.1; done
        stop_timeout: 2
""")
    node = project.up()
    node.wait_running("Stubborn", 1)
    stopper = subprocess.Popen([str(DEVNODE), "stop", "-c", str(project.config_path)], env=base_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: node.status()["node"]["stopping"], 5, "the node to be stopping")
        r = node.cli("scale", "Stubborn", "3")
        assert r.returncode == 1 and "stopping" in r.stderr, (r.stdout, r.stderr)
        r = node.cli("restart", "Stubborn")
        assert r.returncode == 1 and "stopping" in r.stderr, (r.stdout, r.stderr)
        out, err = stopper.communicate(timeout=20)
    finally:
        if stopper.poll() is None:
            stopper.kill()
            stopper.wait()
    assert stopper.returncode == 0, err
    assert re.fullmatch(rf"node {node.pid} stopped \d+ instances? of 1 service in \d+\.\d s.*\n", out), out
    assert node.wait_exit(5) == 0


def test_restart_runs_an_exited_service_and_skips_the_backoff(project):
    project.write("""\
instances:
    Crash:
        command: exit 1
    Once:
        command: echo once; exit 0
        restart: never
""")
    node = project.up()
    node.wait_node_line(r"^Once\.0 exited with status 0 ")
    waiting = node.wait_node_line(r"^Crash\.0 exited with status 1 after \d+\.\ds; restarting in 1600 ms$",
                                  timeout=10)
    r = node.cli("restart", "Crash", "Once")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"restarted Crash: 1 instance ready in \d+\.\d s\nrestarted Once: 1 instance ready in \d+\.\d s\n",
                        r.stdout), r.stdout
    started = node.wait_node_line(r"^Crash\.0 started ", after_seq=waiting["seq"], timeout=5)
    gap = (iso_time(started["time"]) - iso_time(waiting["time"])).total_seconds()
    assert gap < 1.3, f"restart must not wait out the 1600 ms backoff (started {gap:.2f}s later)"
    node.wait_log(lambda r: r["service"] == "Once" and r["text"] == "once", after_seq=waiting["seq"])
    # The ladder starts over after a manual restart.
    node.wait_node_line(r"^Crash\.0 exited with status 1 after \d+\.\ds; restarting in 100 ms$",
                        after_seq=waiting["seq"])
    once = node.service("Once")["instances"][0]
    wait_for(lambda: node.service("Once")["instances"][0]["state"] == "completed", 5, "Once to exit again")
    assert once["restarts"] == 1
    node.stop()


def test_guardian_tracks_restarted_and_scaled_instances(project):
    project.write("""\
instances:
    Tree:
        command: sleep 1000 & sleep 1000 & wait
        numprocesses: 2
""")
    node = project.up()
    first = pids_of(node.wait_running("Tree", 2))
    assert node.cli("restart", "Tree").returncode == 0
    wait_for(lambda: not set(pids_of(node.wait_running("Tree", 2))) & set(first), 10, "new Tree pids")
    assert node.cli("scale", "Tree", "4").returncode == 0
    node.wait_running("Tree", 4)
    assert node.cli("scale", "Tree", "3").returncode == 0
    node.wait_running("Tree", 3)
    assert node.cli("restart", "Tree.0").returncode == 0
    wait_for(lambda: node.service("Tree")["instances"][0]["restarts"] == 2
             and node.service("Tree")["running"] == 3, 10, "Tree.0 restarted")
    wait_for(lambda: len([p for p in marked_pids(project.marker) if proc_cmdline(p) == "sleep 1000"]) == 6,
             10, "six grandchildren")
    os.kill(node.pid, signal.SIGKILL)
    node.wait_exit(10)
    wait_for(lambda: not marked_pids(project.marker), 10,
             lambda: f"everything to die with the node; left: {describe_pids(marked_pids(project.marker))}")


def test_control_stays_responsive_under_a_log_flood(project):
    project.write("""\
instances:
    Flood:
        command: exec yes 'flood line trace_id=abc'
        numprocesses: 2
    Svc:
        command: exec sleep 1000
logs: {file_max_mb: 2, keep_files: 1}
""")
    node = project.up(stdout_path=os.devnull)
    node.wait_running("Flood", 2)
    node.wait_log(lambda r: r["service"] == "Flood")
    worst = 0.0
    for _ in range(10):
        t0 = time.monotonic()
        st = node.status()
        worst = max(worst, time.monotonic() - t0)
        assert node.service("Flood", st)["running"] == 2
    assert worst < 2.0, f"status took {worst:.2f}s during a log flood"
    r = node.cli("scale", "Svc", "3")
    assert r.returncode == 0
    node.wait_running("Svc", 3)
    t0 = time.monotonic()
    node.stop()
    assert time.monotonic() - t0 < 10


@pytest.mark.parametrize("mode", ["--lossy", "--lossless"])
def test_node_exits_even_when_its_stdout_is_blocked(project, mode):
    project.write(f"""\
instances:
    Burst:
        command: exec {BURST} 100000 x
        restart: never
    Svc:
        command: exec sleep 1000
""")
    read_end, write_end = os.pipe()
    try:
        proc = subprocess.Popen([str(DEVNODE), "up", mode], cwd=project.dir, env=project.node_env(),
                                stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end,
                                start_new_session=True)
        os.close(write_end)
        write_end = None
        node = Node(project, proc, Path(os.devnull), project.marker)
        project.nodes.append(node)
        node.wait_ready()
        if mode == "--lossy":
            node.wait_node_line(r"^Burst\.0 exited with status 0 ")
            # The terminal is stuck (nobody reads the pipe); the log file still has everything.
            assert sum(1 for r in node.records() if r["service"] == "Burst") == 100000
        else:
            # Nobody reads the pipe: the worker is held back, blocked writing its own pipe.
            pid = node.wait_running("Burst", 1)[0]["pid"]
            wait_for(lambda: "pipe_write" in Path(f"/proc/{pid}/wchan").read_text(), 15, "Burst to block")
        r = node.cli("stop", "--timeout", "15", timeout=25)
        assert r.returncode == 0, r.stderr
        assert node.wait_exit(5) == 0
        if mode == "--lossless":
            assert node.node_lines(r"^\d+ lines did not reach stdout: nobody read it for 5s after the stop")
    finally:
        if write_end is not None:
            os.close(write_end)
        os.close(read_end)  # unblocks a stuck node (EPIPE) so teardown is quick


def test_long_project_path_moves_the_endpoint(project):
    deep = project.dir / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    project.dir, project.config_path, project.run_dir = deep, deep / ".lymph.yml", deep / ".devnode"
    project.write(SLEEPER.format(n=1))
    node = project.up()
    (inst,) = node.wait_running("Svc", 1)
    endpoint = (project.run_dir / "endpoint").read_text().strip()
    assert endpoint.startswith("ipc://") and len(endpoint) - len("ipc://") <= 107, endpoint
    assert not endpoint.startswith(f"ipc://{deep}"), "the socket path would not fit"
    st = node.status()
    assert st["node"]["endpoint"] == endpoint
    assert proc_environ(inst["pid"])["DEVNODE_ENDPOINT"] == endpoint
    assert proc_environ(inst["pid"])["DEVNODE_RUN_DIR"] == str(project.run_dir)
    node.stop()
    sock = endpoint[len("ipc://"):]
    assert not os.path.exists(sock), f"{sock} left behind after stop"


def test_concurrent_ups_elect_exactly_one_node(project):
    project.write(SLEEPER.format(n=1))
    nodes = [project.up(wait=False, marker=f"{project.marker}-{i}") for i in range(4)]
    wait_for(lambda: sum(1 for n in nodes if not n.alive()) == 3, 20,
             lambda: f"three of four `up`s to give way; alive: {[n.pid for n in nodes if n.alive()]}")
    (winner,) = [n for n in nodes if n.alive()]
    winner.wait_ready()
    assert winner.status()["node"]["pid"] == winner.pid
    for loser in nodes:
        if loser is winner:
            continue
        assert loser.wait_exit(5) == 1, loser.describe()
        # Either the winner had written its pid, or it was still starting: both are said plainly.
        assert re.fullmatch(r"devnode: (node already running \(pid [1-9]\d*\)|another node is starting in \S+)\n",
                            loser.output()), loser.output()
        assert marked_pids(loser.marker) == [], "a losing node started something"
    winner.wait_running("Svc", 1)
    winner.stop()


def test_up_waits_out_a_command_looking_at_the_lock(project):
    """`devnode status`, `tail` and friends take a shared lock on node.lock for a moment to see
    whether a node runs. A node starting just then waits for it instead of giving up with
    "another node is starting" (seen once in CI when `status` polled while `up` started)."""
    project.write(SLEEPER.format(n=1))
    project.run_dir.mkdir(mode=0o700)
    with open(project.run_dir / "node.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)  # what rundir_find_node holds for a moment
        node = project.up(wait=False)

        def waiting():
            assert node.alive(), f"the node gave up on a shared lock: {node.describe()}"
            with open(f"/proc/{node.pid}/wchan") as f:
                return f.read() in ("hrtimer_nanosleep", "do_nanosleep")
        wait_for(waiting, 10, "the node to try the lock and wait")
    node.wait_ready()
    node.wait_running("Svc", 1)
    assert (project.run_dir / "node.lock").read_text().strip() == str(node.pid)
    node.stop()


def test_up_refused_while_another_node_is_starting_names_no_pid_0(project):
    project.write(SLEEPER.format(n=1))
    project.run_dir.mkdir(mode=0o700)
    with open(project.run_dir / "node.lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a node that is starting: lock held, no pid yet
        r = subprocess.run([str(DEVNODE), "up"], cwd=project.dir, env=project.node_env(), timeout=20,
                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert r.stderr.startswith("devnode: ") and ("already running" in r.stderr or "starting" in r.stderr)
    assert "pid 0" not in r.stderr, r.stderr
    assert marked_pids(project.marker) == []


def test_cli_finds_the_node_from_a_subdirectory(project):
    project.write(SLEEPER.format(n=1))
    node = project.up()
    sub = project.dir / "a" / "b"
    sub.mkdir(parents=True)
    r = subprocess.run([str(DEVNODE), "status", "--json"], cwd=sub, env=base_env(), capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["node"]["pid"] == node.pid
    r = subprocess.run([str(DEVNODE), "status"], cwd=sub, env=base_env(LYMPH_CONFIG=str(project.config_path)),
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0 and f"node {node.pid}" in r.stdout
    node.stop()


# ---------------------------------------------------------------- restart and scale wait for the outcome

def restart_cli(project, *args):
    """A `devnode restart`/`scale` running in the background (to watch the node meanwhile)."""
    return subprocess.Popen([str(DEVNODE), args[0], "-c", str(project.config_path), *map(str, args[1:])],
                            env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)


def finish(proc, timeout=30):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


READY_AFTER_1S = """\
instances:
    Web:
        command: {command}
        numprocesses: {n}
        ready: {{delay: 1s}}
        stop_timeout: 5
{extra}"""

SOCKET_EXTRA = """\
        sockets: [Api]
sockets:
    Api: {port: 0}
"""


@pytest.mark.parametrize("sockets", [False, True], ids=["stop-start", "zero-downtime"])
def test_restart_waits_until_every_new_process_is_ready(project, sockets):
    project.write(READY_AFTER_1S.format(command="exec sleep 1000", n=2, extra=SOCKET_EXTRA if sockets else ""))
    node = project.up()
    before = pids_of(node.wait_running("Web", 2))
    wait_for(lambda: all(i["ready"] for i in node.service("Web")["instances"]), 10, "Web to be ready")

    t0 = time.monotonic()
    proc = restart_cli(project, "restart", "Web")
    # The node keeps answering while it rolls: status comes back at once, mid-roll.
    wait_for(lambda: any(i["pid"] not in before for i in node.service("Web")["instances"]), 10,
             "the roll to start")
    assert proc.poll() is None, "restart must wait for the roll"
    t1 = time.monotonic()
    assert node.status()["node"]["pid"] == node.pid
    assert time.monotonic() - t1 < 1.0, "status must answer at once during a roll"
    code, out, err = finish(proc)
    took = time.monotonic() - t0
    assert code == 0, err
    assert re.fullmatch(r"restarted Web: 2 instances ready in (\d+\.\d) s\n", out), out
    assert float(out.split(" in ")[1].split()[0]) >= 2.0 and took >= 2.0, (out, took)
    # When it returns, every instance runs a new, ready process and no old one is left.
    insts = node.service("Web")["instances"]
    assert [i["state"] for i in insts] == ["running", "running"], insts
    assert all(i["ready"] and i["restarts"] == 1 and pid_alive(i["pid"]) for i in insts), insts
    assert not set(pids_of(insts)) & set(before)
    assert not any(pid_alive(p) for p in before), "old processes are gone once restart returns"
    # The roll is over: the next restart is accepted (here: one instance).
    r = node.cli("restart", "Web.1")
    assert r.returncode == 0 and re.fullmatch(r"restarted Web\.1: 1 instance ready in \d+\.\d s\n", r.stdout), r
    node.stop()


FAILS_WITHOUT_OK = 'test "$DEVNODE_INSTANCE" = 0 || test -e ok || exit 3; exec sleep 1000'


@pytest.mark.parametrize("sockets,left", [
    (False, "Web.0 restarted, Web.1 will be restarted after a backoff"),
    (True, "Web.0 restarted, Web.1 still runs its old process"),
], ids=["stop-start", "zero-downtime"])
def test_restart_that_fails_before_ready_exits_1_and_says_what_is_left(project, sockets, left):
    project.write(READY_AFTER_1S.format(command=FAILS_WITHOUT_OK, n=2, extra=SOCKET_EXTRA if sockets else ""),
                  files={"ok": ""})
    node = project.up()
    before = pids_of(node.wait_running("Web", 2))
    wait_for(lambda: all(i["ready"] for i in node.service("Web")["instances"]), 10, "Web to be ready")
    (project.dir / "ok").unlink()

    r = node.cli("restart", "Web")
    assert (r.returncode, r.stdout) == (1, ""), r
    assert r.stderr == f"devnode: restart Web: Web.1 exited with status 3 before it was ready; {left}\n"
    web = node.service("Web")["instances"]
    assert web[0]["pid"] not in before and web[0]["ready"]
    if sockets:
        assert web[1]["pid"] == before[1] and pid_alive(before[1])
    # The roll stopped there, so a new restart is not refused as "in progress".
    (project.dir / "ok").write_text("")
    r = node.cli("restart", "Web")
    assert r.returncode == 0, r.stderr
    node.stop()


def test_restart_that_misses_its_ready_timeout_exits_1(project):
    project.write("""\
instances:
    Web:
        command: if test -e ok; then echo up; fi; exec sleep 1000
        numprocesses: 2
        ready: {log: '^up$', timeout: 1s}
""", files={"ok": ""})
    node = project.up()
    before = pids_of(node.wait_running("Web", 2))
    (project.dir / "ok").unlink()
    t0 = time.monotonic()
    r = node.cli("restart", "Web")
    assert 1.0 <= time.monotonic() - t0 < 8
    assert (r.returncode, r.stdout) == (1, ""), r
    assert r.stderr == ("devnode: restart Web: Web.0 was not ready (log) within 1.0s; "
                        "Web.0 is still starting, Web.1 still runs its old process\n")
    node.wait_node_line(r"^rolling restart of Web stopped at Web\.0: it was not ready \(log\) within 1\.0s$")
    insts = node.service("Web")["instances"]
    assert insts[1]["pid"] == before[1] and insts[0]["state"] == "starting"
    node.stop()


def test_restart_no_wait_returns_at_once_and_a_second_restart_is_refused(project):
    project.write(READY_AFTER_1S.format(command="exec sleep 1000", n=2, extra=""))
    node = project.up()
    node.wait_running("Web", 2)
    t0 = time.monotonic()
    r = node.cli("restart", "--no-wait", "Web")
    assert time.monotonic() - t0 < 1.0
    assert (r.returncode, r.stdout) == (0, "restarting Web (2 instances)\n"), r.stderr
    r = node.cli("restart", "Web")
    assert (r.returncode, r.stdout) == (1, ""), r
    assert r.stderr == "devnode: restart Web: a rolling restart of Web is in progress (at Web.0)\n"
    node.wait_node_line("^rolling restart of Web done$")
    node.stop()


def test_ctrl_c_stops_waiting_and_the_restart_goes_on(project):
    project.write(READY_AFTER_1S.format(command="exec sleep 1000", n=2, extra=""))
    node = project.up()
    before = pids_of(node.wait_running("Web", 2))
    proc = restart_cli(project, "restart", "Web")
    wait_for(lambda: node.service("Web")["instances"][0]["pid"] not in before, 10, "the roll to start")
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc, 10)
    assert (code, out) == (130, ""), (code, out, err)
    assert err == ("devnode: restart Web: stopped waiting; it goes on in the node "
                   "(`devnode status` shows where it is)\n")
    node.wait_node_line("^rolling restart of Web done$")
    insts = node.wait_running("Web", 2)
    assert not set(pids_of(insts)) & set(before)
    node.stop()


def test_scale_waits_for_new_instances_ready_and_removed_ones_gone(project):
    project.write(READY_AFTER_1S.format(
        command="trap 'sleep 0.5; exit 0' TERM; while :; do sleep 0.1; done", n=1, extra=""))
    node = project.up()
    node.wait_running("Web", 1)
    t0 = time.monotonic()
    r = node.cli("scale", "Web", "3")
    assert time.monotonic() - t0 >= 1.0
    assert r.returncode == 0 and re.fullmatch(r"scaled Web to 3: 2 instances ready in \d+\.\d s\n", r.stdout), r
    insts = node.service("Web")["instances"]
    assert len(insts) == 3 and all(i["ready"] and i["state"] == "running" for i in insts), insts

    r = node.cli("scale", "Web", "1")
    assert r.returncode == 0 and re.fullmatch(r"scaled Web to 1: 2 instances stopped in \d+\.\d s\n", r.stdout), r
    assert not any(pid_alive(i["pid"]) for i in insts[1:]), "removed instances are gone once scale returns"
    assert len(node.service("Web")["instances"]) == 1

    r = node.cli("scale", "Web", "1")
    assert (r.returncode, r.stdout) == (0, "scaled Web to 1: no instance to start or stop\n"), r
    t0 = time.monotonic()
    r = node.cli("scale", "--no-wait", "Web", "2")
    assert time.monotonic() - t0 < 1.0
    assert (r.returncode, r.stdout) == (0, "scaling Web to 2\n"), r
    node.wait_running("Web", 2)
    node.stop()


def test_scale_up_that_fails_exits_1(project):
    project.write(READY_AFTER_1S.format(command=FAILS_WITHOUT_OK, n=1, extra=""))
    node = project.up()
    node.wait_running("Web", 1)
    r = node.cli("scale", "Web", "2")
    assert (r.returncode, r.stdout) == (1, ""), r
    assert r.stderr == ("devnode: scale Web: Web.1 exited with status 3 before it was ready; "
                        "Web.1 will be restarted after a backoff\n")
    node.stop()


def test_scale_down_undone_before_it_stopped_exits_1(project):
    project.write(READY_AFTER_1S.format(
        command="trap 'sleep 2; exit 0' TERM; while :; do sleep 0.1; done", n=3, extra=""))
    node = project.up()
    node.wait_running("Web", 3)
    down = restart_cli(project, "scale", "Web", "1")
    wait_for(lambda: node.service("Web")["instances"][1]["state"] == "stopping", 10, "Web.1 to be stopping")
    r = node.cli("scale", "--no-wait", "Web", "3")
    assert (r.returncode, r.stdout) == (0, "scaling Web to 3\n"), r
    code, out, err = finish(down)
    assert (code, out) == (1, ""), (code, out, err)
    assert err == ("devnode: scale Web: Web.1 was scaled up again before it had stopped; "
                   "Web.1 and Web.2 are stopping\n")
    node.wait_running("Web", 3)
    node.stop()


def test_waiting_gives_up_after_timeout_and_the_restart_goes_on(project):
    project.write(READY_AFTER_1S.format(command="exec sleep 1000", n=2, extra=""))
    node = project.up()
    before = pids_of(node.wait_running("Web", 2))
    t0 = time.monotonic()
    r = node.cli("restart", "--timeout", "0.5", "Web")
    assert 0.5 <= time.monotonic() - t0 < 1.5
    assert (r.returncode, r.stdout) == (1, ""), r
    assert r.stderr == ("devnode: restart Web: no outcome within 0.5 s; it goes on in the node "
                        "(`devnode status` shows where it is)\n")
    node.wait_node_line("^rolling restart of Web done$")
    assert not set(pids_of(node.wait_running("Web", 2))) & set(before)
    r = node.cli("restart", "--timeout", "soon", "Web")
    assert (r.returncode, r.stderr) == (2, "devnode: restart: --timeout takes a number of seconds, not 'soon'\n")
    node.stop()
