"""The lymph-style CLI around the registry, the event bus and RPC: discover, request,
inspect, emit and subscribe, driven against a real node running Python fake services
(tests/e2e/fakeservice.py) that speak docs/protocol.md."""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from clihelpers import (Background, discover_json, fake_config, instance_status, node_request,
                        wait_registered, wait_subscribers)
from conftest import DEVNODE, base_env, pid_alive, wait_for


@pytest.fixture
def background(project):
    started = []

    def start(*args):
        bg = Background(project, *args)
        started.append(bg)
        return bg
    yield start
    for bg in started:
        bg.kill()


def pids_of(insts):
    return sorted(i["pid"] for i in insts)


# ---------------------------------------------------------------- discover

def test_discover_plain_verbose_json_and_filter(project):
    project.write(fake_config({"Listen": 2, "Greeting": 3}))
    node = project.up()
    greeting = wait_registered(project, "Greeting", 3)
    wait_registered(project, "Listen", 2)
    supervised = {i["pid"]: i["index"] for i in node.service("Greeting")["instances"]}
    assert pids_of(greeting) == sorted(supervised)

    r = project.cli("discover")
    assert (r.returncode, r.stdout, r.stderr) == (0, "Greeting [3]\nListen [2]\n", "")

    r = project.cli("discover", "-v")
    assert r.returncode == 0, r.stderr
    blocks = r.stdout.split("\n\n")
    assert blocks[0].splitlines()[0] == "Greeting [3]" and blocks[1].splitlines()[0] == "Listen [2]"
    rows = blocks[0].splitlines()[1:]
    assert len(rows) == 3
    for row, inst in zip(rows, greeting):
        m = re.fullmatch(r"  \[([0-9a-f]{10})\]  (Greeting\.\d)  pid (\d+)\s+(ipc://\S+)", row)
        assert m, row
        assert m.group(1) == inst["identity"][:10]
        assert m.group(2) == f"Greeting.{supervised[int(m.group(3))]}"
        assert m.group(4) == inst["endpoint"]

    data = discover_json(project)
    assert sorted(data) == ["Greeting", "Listen"]
    assert [i["instance"] for i in data["Greeting"]] == [0, 1, 2]
    for inst in data["Greeting"]:
        assert re.fullmatch(r"[0-9a-f]{32}", inst["identity"])
        assert {"greet", "echo"} <= {m["name"] for m in inst["methods"]}
        assert {"pid", "endpoint", "registered_ms"} <= set(inst)

    # Naming a service filters, and shows its instances as lymph did.
    r = project.cli("discover", "Listen")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "Listen [2]" and "Greeting" not in r.stdout
    assert len(r.stdout.strip().splitlines()) == 3
    r = project.cli("discover", "--json", "Listen")
    assert sorted(json.loads(r.stdout)) == ["Listen"]
    # A name nobody registered is an error naming the ones there are (and a script waiting for
    # a service to register can loop on the exit status).
    for args in (("Nope",), ("--json", "Nope")):
        r = project.cli("discover", *args)
        assert (r.returncode, r.stdout, r.stderr) == (
            2, "", "devnode: discover: no service 'Nope' in the registry (known: Greeting, Listen)\n"), r
    r = project.cli("discover", "a", "b")
    assert r.returncode == 2
    node.stop()


def test_discover_none_and_no_node(project):
    project.write("instances:\n    Quiet:\n        command: exec sleep 1000\n")
    node = project.up()
    node.wait_running("Quiet", 1)
    r = project.cli("discover")
    assert (r.returncode, r.stdout) == (0, "No registered services found\n"), r.stderr
    r = project.cli("discover", "--json")
    assert (r.returncode, json.loads(r.stdout)) == (0, {})
    node.stop()
    for args in (("discover",), ("request", "Greeting.greet", "{}"), ("emit", "greeted"),
                 ("subscribe", "greeted"), ("inspect", "Greeting")):
        r = project.cli(*args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "no node running in" in r.stderr and r.stderr.count("\n") == 1, (args, r.stderr)


# ---------------------------------------------------------------- request

def test_request_round_trip_errors_and_headers(project):
    project.write(fake_config({"Greeting": 2}))
    node = project.up()
    insts = wait_registered(project, "Greeting", 2)

    r = project.cli("request", "Greeting.greet", '{"name": "joe"}')
    assert (r.returncode, r.stdout, r.stderr) == (0, '"Hello, joe!"\n', "")

    r = project.cli("request", "Greeting.whoami")  # PARAMS defaults to {}
    assert r.returncode == 0 and json.loads(r.stdout)["pid"] in pids_of(insts), r.stderr
    assert r.stdout.startswith('{\n  "service": "Greeting",\n'), "pretty JSON, indent 2, service's key order"

    r = project.cli("request", "Greeting.fail", '{"message": "no greeting today"}')
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == "devnode: Greeting.fail failed: ValueError: no greeting today\n"

    r = project.cli("request", "Greeting.greet", '{"nom": "joe"}')
    assert r.returncode == 1 and r.stderr.startswith("devnode: Greeting.greet failed: BadArguments: "), r.stderr

    r = project.cli("request", "Greeting.nope", "{}")
    assert (r.returncode, r.stderr) == (1, "devnode: Greeting has no method 'nope'\n")

    r = project.cli("request", "Nobody.greet", "{}")
    assert (r.returncode, r.stderr) == (1, "devnode: The specified service name could not be found: Nobody\n")

    start = time.monotonic()
    r = project.cli("request", "--timeout", "0.3", "Greeting.hang", "{}")
    elapsed = time.monotonic() - start
    assert r.returncode == 1
    assert r.stderr == ("devnode: the request timed out after 0.3s. "
                        "Either the service is not available or busy.\n")
    assert 0.3 <= elapsed < 2.0, elapsed

    # The trace id reaches the service (it echoes its headers) and comes back in the reply.
    r = project.cli("request", "-D", "--trace-id", "trace-abc-123", "Greeting.echo", '{"a": [1, 2.5, null]}')
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.partition("\n\n")
    assert "trace_id: trace-abc-123" in head.splitlines()
    echoed = json.loads(body)
    assert echoed["headers"]["trace_id"] == "trace-abc-123"
    assert echoed["params"] == {"a": [1, 2.5, None]}
    # Without --trace-id the CLI mints one, as lymph's did.
    r = project.cli("request", "Greeting.echo", "{}")
    assert re.fullmatch(r"[0-9a-f]{32}", json.loads(r.stdout)["headers"]["trace_id"])

    # Direct addressing bypasses the registry: any endpoint, even with no project at all.
    r = project.cli("request", "--address", insts[1]["endpoint"], "Greeting.whoami", "{}")
    assert r.returncode == 0 and json.loads(r.stdout)["pid"] == insts[1]["pid"], r.stderr
    status = instance_status(insts[0]["endpoint"])
    assert (status["pid"], status["service"], status["identity"]) == (insts[0]["pid"], "Greeting",
                                                                       insts[0]["identity"])
    r = project.cli("request", "--address", insts[0]["endpoint"], "lymph.ping", '{"payload": "x"}')
    assert r.stdout == '"x"\n'
    # Through the registry a built-in is Service.lymph.*; the REQ carries lymph.ping.
    r = project.cli("request", "Greeting.lymph.ping", '{"payload": "y"}')
    assert (r.returncode, r.stdout) == (0, '"y"\n'), r.stderr

    # PARAMS from stdin with "-".
    r = subprocess.run([str(DEVNODE), "request", "-c", str(project.config_path), "Greeting.greet", "-"],
                       input='{"name": "stdin"}', capture_output=True, text=True, timeout=10, env=base_env())
    assert (r.returncode, r.stdout) == (0, '"Hello, stdin!"\n'), r.stderr

    # Usage errors exit 2 and say what is wrong in one line.
    for args in (("Greeting.greet", "[1]"), ("Greeting.greet", "{bad"), ("greet", "{}"),
                 ("--timeout", "soon", "Greeting.greet", "{}"), ("-N", "0", "Greeting.greet", "{}")):
        r = project.cli("request", *args)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, (args, r.stderr)
    node.stop()


def test_round_robin_and_benchmark_output(project):
    project.write(fake_config({"Greeting": 3}))
    node = project.up()
    insts = wait_registered(project, "Greeting", 3)
    before = {i["pid"]: instance_status(i["endpoint"])["served"] for i in insts}

    r = project.cli("request", "-N", "30", "-C", "1", "Greeting.whoami", "{}")
    assert r.returncode == 0, r.stderr
    after = {i["pid"]: instance_status(i["endpoint"])["served"] for i in insts}
    # Each status call is counted after it answers: hence the -1. One warm-up request.
    shares = sorted(after[p] - before[p] - 1 for p in before)
    assert shares == [10, 10, 11], (before, after)

    lines = r.stdout.splitlines()
    assert lines[0] == "sending 30 requests, concurrency 1"
    assert re.fullmatch(r"Requests per second: +[\d.]+ Hz  \(#req=30\)", lines[1]), lines[1]
    assert re.fullmatch(r"Mean time per request: +[\d.]+ ms  \(stddev=[\d.]+\)", lines[2]), lines[2]
    assert re.fullmatch(r"Timeout rate: +0\.00 %   \(#req=0\)", lines[3]), lines[3]
    assert re.fullmatch(r"Error rate: +0\.00 %   \(#req=0\)", lines[4]), lines[4]
    assert re.fullmatch(r"Total time: +[\d.]+ s", lines[5]), lines[5]
    assert lines[6] == "" and lines[7] == "Percentage of the requests served within a certain time (ms)"
    pcts = [re.fullmatch(r" +(\d+)%  +([\d.]+)( \(longest request\))?", x) for x in lines[8:]]
    assert all(pcts) and [int(m.group(1)) for m in pcts] == [50, 66, 75, 80, 90, 95, 98, 99, 100], lines
    values = [float(m.group(2)) for m in pcts]
    assert values == sorted(values)

    # Concurrency keeps several requests in flight; timeouts are counted, not fatal.
    r = project.cli("request", "-N", "200", "-C", "8", "Greeting.greet", '{"name": "x"}')
    assert r.returncode == 0 and "(#req=200)" in r.stdout.splitlines()[1], r.stdout + r.stderr
    node.stop()


# ---------------------------------------------------------------- inspect

def test_inspect(project):
    project.write(fake_config({"Greeting": 1}))
    node = project.up()
    insts = wait_registered(project, "Greeting", 1)
    r = project.cli("inspect", "Greeting")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("RPC interface of Greeting\n\n"
                               "rpc echo()\n\t Returns the params and headers it received.\n\n"
                               "rpc emit(type, body)\n"), r.stdout
    names = re.findall(r"^rpc ([\w.]+)\(", r.stdout, re.M)
    assert names == sorted(names) and {"greet", "lymph.ping", "lymph.inspect"} <= set(names)
    assert "rpc greet(name)\n\t Returns a greeting for name.\n\n" in r.stdout
    assert "\033[" not in r.stdout, "no colour when stdout is not a terminal"

    r = project.cli("inspect", "--color=always", insts[0]["endpoint"])
    assert r.stdout.startswith(f"RPC interface of \033[1m{insts[0]['endpoint']}\033[0m\n\n")
    assert "rpc \033[31mgreet\033[0m(\033[33mname\033[0m)" in r.stdout
    r = project.cli("inspect", "Nobody")
    assert (r.returncode, r.stderr) == (1, "devnode: The specified service name could not be found: Nobody\n")
    node.stop()


# ---------------------------------------------------------------- emit and subscribe

def test_emit_reaches_subscriber_and_service_with_trace_id(project, background):
    project.write(fake_config({"Listen": (2, "--subscribe greeted")}))
    node = project.up()
    wait_registered(project, "Listen", 2)
    sub = background("subscribe", "-n", "1", "greeted")
    wait_subscribers(project, "greeted")

    r = project.cli("emit", "greeted", '{"name": "joe"}', "--trace-id", "t-emit-1")
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert sub.read_lines(1) == ['greeted: {"name": "joe"}  trace_id=t-emit-1 source=cli']
    assert sub.wait() == 0

    # The service's group got it once, on one of its two instances, trace id carried on.
    def listen_got(trace):
        return [x for x in node.records()
                if x.get("service") == "Listen" and f"event greeted trace_id={trace}" in x.get("text", "")]
    first = wait_for(lambda: listen_got("t-emit-1"), 10, "Listen to log the event")
    assert first[0]["trace_id"] == "t-emit-1"
    project.cli("emit", "greeted", '{"name": "ann"}', "--trace-id", "t-emit-2", check=True)
    wait_for(lambda: listen_got("t-emit-2"), 10, "Listen to log the second event")
    assert len(listen_got("t-emit-1")) == 1

    # Usage errors.
    assert project.cli("emit", "greeted", "{bad").returncode == 2
    assert project.cli("emit", "greeted", "--delay", "-5").returncode == 2
    assert project.cli("emit").returncode == 2
    node.stop()


def test_subscribe_patterns_json_and_delay(project, background):
    project.write("instances:\n    Quiet:\n        command: exec sleep 1000\n")
    node = project.up()
    sub = background("subscribe", "--json", "-n", "3", "order.*", "greeted")
    wait_subscribers(project, "order.*")

    project.cli("emit", "order.created", '{"n": 1}', "--trace-id", "o1", check=True)
    project.cli("emit", "unrelated", "{}", check=True)
    project.cli("emit", "order.created.late", "{}", check=True)  # '*' is exactly one word
    project.cli("emit", "greeted", '"joe"', check=True)
    first_two = [json.loads(x) for x in sub.read_lines(2)]
    assert first_two[0] == {"type": "order.created", "headers": {"trace_id": "o1"}, "body": {"n": 1},
                            "source": "cli"}
    assert (first_two[1]["type"], first_two[1]["body"]) == ("greeted", "joe")

    start = time.monotonic()
    r = project.cli("emit", "order.delayed", "[1, 2]", "--delay", "400")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - start < 0.35, "emit returns once the event is scheduled"
    last = json.loads(sub.read_lines(3)[2])
    elapsed = time.monotonic() - start
    assert (last["type"], last["body"]) == ("order.delayed", [1, 2])
    assert elapsed >= 0.39, elapsed
    assert sub.wait() == 0
    node.stop()


def test_subscribe_ends_quietly_on_ctrl_c_and_closed_pipe(project, background):
    project.write("instances:\n    Quiet:\n        command: exec sleep 1000\n")
    node = project.up()
    sub = background("subscribe", "greeted")
    wait_subscribers(project, "greeted")
    project.cli("emit", "greeted", "{}", check=True)
    sub.read_lines(1)
    sub.proc.send_signal(signal.SIGINT)
    assert sub.wait() == 0
    assert sub.proc.stderr.read() == b""
    # Its broadcast group leaves with it.
    wait_for(lambda: not any(g["broadcast"] for g in node_request(project, "bus_status", {})[1]["groups"]),
             5, "the subscription to be gone")

    # A reader that goes away: the next event ends it with exit 0 and no message.
    sub = background("subscribe", "greeted")
    wait_subscribers(project, "greeted")
    sub.proc.stdout.close()
    project.cli("emit", "greeted", "{}", check=True)
    assert sub.proc.wait(10) == 0
    assert sub.proc.stderr.read() == b""
    node.stop()


# ---------------------------------------------------------------- registry lifecycle

def test_registry_drops_killed_and_scaled_away_instances(project):
    project.write(fake_config({"Greeting": 3}, restart="never"))
    node = project.up()
    insts = wait_registered(project, "Greeting", 3)
    victim = insts[1]["pid"]
    os.kill(victim, signal.SIGKILL)
    killed_at = time.monotonic()
    wait_for(lambda: victim not in pids_of(discover_json(project).get("Greeting", [])), 1.0,
             "the killed instance to leave the registry")
    assert time.monotonic() - killed_at < 1.0
    r = project.cli("discover")
    assert r.stdout == "Greeting [2]\n"
    # Requests now go only to the living.
    r = project.cli("request", "-N", "10", "--timeout", "2", "Greeting.whoami", "{}")
    assert "Timeout rate:              0.00 %" in r.stdout, r.stdout

    r = project.cli("scale", "Greeting", "1")
    assert r.returncode == 0, r.stderr
    left = wait_registered(project, "Greeting", 1, timeout=10)
    assert left[0]["pid"] == insts[0]["pid"]
    wait_for(lambda: not pid_alive(insts[2]["pid"]), 10, "Greeting.2 to be gone")
    r = project.cli("scale", "Greeting", "0")
    wait_for(lambda: project.cli("discover").stdout == "No registered services found\n", 10,
             "the registry to be empty")
    node.stop()
