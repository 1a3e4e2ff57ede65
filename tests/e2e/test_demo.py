"""The seed demo end to end (issue 6): the root .lymph.yml (Web x2, Greeting x3, Listen x4, the
Web socket shared) run by the real node in a copy of the project; `curl localhost:PORT/greet?
name=joe` answers "Hi, joe!" with an X-Trace-Id whose lines from Web, Greeting and Listen are in
the node's log and in `devnode tail --trace`. Also the pylm-style pipeline of examples/pipeline."""
import re
import subprocess

import pytest

from conftest import ROOT, wait_for
from demohelpers import (EXAMPLES, STAGE, NodeClient, call, free_port, group_named, http_get, lines_of,
                         wait_group_members, wait_lines, wait_registered, wait_settled)


def demo_project(project, port):
    """The root config, with the binaries' absolute paths and a free port instead of 4080."""
    text = (ROOT / ".lymph.yml").read_text()
    assert "port: 4080" in text and "build/examples/" in text
    text = text.replace("port: 4080", f"port: {port}").replace("build/examples/", f"{EXAMPLES}/")
    project.write(text)


@pytest.fixture
def demo(project):
    port = free_port()
    demo_project(project, port)
    node = project.up()
    for name, count in (("Web", 2), ("Greeting", 3), ("Listen", 4)):
        node.wait_running(name, count)
    client = NodeClient(project)
    wait_registered(client, "Web", 2)
    wait_registered(client, "Greeting", 3)
    wait_group_members(client, "Listen.greeted", 4)
    yield node, port, client
    client.close()


def test_greet_answers_and_one_trace_covers_web_greeting_and_listen(demo, project):
    node, port, client = demo
    status, body, headers = http_get(port, "/greet?name=joe")
    assert (status, body) == (200, "Hi, joe!")
    assert headers["content-type"] == "text/plain; charset=utf-8"
    trace = headers["x-trace-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", trace), trace

    web = wait_lines(node, 2, service="Web", trace_id=trace)
    assert [r["text"] for r in web] == [f"INFO About to greet joe trace_id={trace}",
                                        f"INFO GET /greet 200 Hi, joe! trace_id={trace}"]
    (greeting,) = wait_lines(node, 1, service="Greeting", trace_id=trace)
    assert greeting["text"] == f"INFO Saying hi to joe trace_id={trace}"
    (listen,) = wait_lines(node, 1, service="Listen", trace_id=trace)
    assert listen["text"].startswith("INFO Somebody greeted joe (delivery=")

    # The CLI shows the same request's lines, from the three services, in order.
    r = project.cli("tail", "--trace", trace, timeout=30)
    assert r.returncode == 0, r.stderr
    services = [m.group(1) for m in re.finditer(r"\b(Web|Greeting|Listen)\.\d+\s", r.stdout)]
    assert services[0] == "Web" and {"Greeting", "Listen"} <= set(services), r.stdout
    assert r.stdout.count(trace) == 4, r.stdout


def test_the_clients_trace_id_is_kept(demo):
    node, port, _ = demo
    status, body, headers = http_get(port, "/greet?name=Ann+Lee", {"X-Trace-Id": "client-trace-7"})
    assert (status, body, headers["x-trace-id"]) == (200, "Hi, Ann Lee!", "client-trace-7")
    for service in ("Web", "Greeting", "Listen"):
        wait_lines(node, 1, service=service, trace_id="client-trace-7")


def test_requests_spread_over_greeting_and_each_greeting_is_heard_once(demo):
    node, port, client = demo
    before = wait_settled(client, group_named("Listen.greeted"))
    traces = []
    for i in range(12):
        status, body, headers = http_get(port, f"/greet?name=p{i}")
        assert (status, body) == (200, f"Hi, p{i}!")
        traces.append(headers["x-trace-id"])
    assert len(set(traces)) == 12
    greeting_pids = {node_rec["pid"] for t in traces for node_rec in wait_lines(node, 1, service="Greeting",
                                                                               trace_id=t)}
    assert len(greeting_pids) == 3, "each Web cycles round robin over the three Greeting instances"
    for t in traces:
        wait_lines(node, 1, service="Listen", trace_id=t)
    assert wait_settled(client, group_named("Listen.greeted")) - before == 12, "each greeting delivered once"
    for t in traces:
        assert len(lines_of(node, service="Listen", trace_id=t)) == 1, "one Listen instance per event"


def test_bad_requests_and_other_routes(demo):
    node, port, _ = demo
    status, body, headers = http_get(port, "/greet")
    assert status == 400 and "name is required" in body and headers["x-trace-id"]
    assert http_get(port, "/nope")[0] == 404
    assert http_get(port, "/health")[:2] == (200, "ok\n")


def test_web_survives_a_greeting_restart(demo):
    node, port, client = demo
    assert http_get(port, "/greet?name=before")[0] == 200
    old = {i["pid"] for i in client.discover("Greeting")["Greeting"]}
    assert node.cli("restart", "Greeting").returncode == 0
    wait_for(lambda: (lambda insts: len(insts) == 3 and not {i["pid"] for i in insts} & old)(
        client.discover("Greeting").get("Greeting", [])), 15, "three new Greeting instances registered")
    for i in range(6):
        status, body, _ = http_get(port, f"/greet?name=after{i}")
        assert (status, body) == (200, f"Hi, after{i}!")


def test_pipeline_streams_jobs_through_three_stages_found_in_the_registry(project):
    text = (ROOT / "examples" / "pipeline" / ".lymph.yml").read_text()
    text = text.replace("../../build/examples/", f"{EXAMPLES}/")
    config_lines = [x for x in text.splitlines() if not x.lstrip().startswith("#")]
    assert not any(re.search(r"\b(port|sockets|tcp|ipc)\b", x) for x in config_lines), \
        "the pipeline configures no addresses: stages find each other by name"
    project.write(text)
    node = project.up()
    done = node.wait_log(lambda r: r.get("service") == "Client" and r["text"].startswith("pipeline: "),
                         timeout=30, what="the pipeline client's summary")
    assert re.match(r"pipeline: 40 jobs, 0 failed, ", done["text"]), done["text"]
    results = lines_of(node, service="Client", pattern=r"^job result ")
    assert len(results) == 40
    # value v goes through double, inc, square: (2v + 1)^2; each job crossed all three stages.
    for rec in results:
        m = re.match(r'job result \{"id":(\d+),"value":(\d+),"path":\["Step1\.\d","Step2\.\d","Last\.\d"\]\}',
                     rec["text"])
        assert m, rec["text"]
        assert int(m.group(2)) == (2 * int(m.group(1)) + 1) ** 2
    stages = {r["service"] for r in node.records() if re.match(r"INFO (foo|bar|baz): job ", r["text"])}
    assert stages == {"Step1", "Step2", "Last"}


def test_a_call_cycle_between_two_single_instance_services_is_answered(project):
    """Ping.foo calls Pong.bar, which calls Ping.foo again while the first Ping.foo still waits
    for Pong: the one Ping instance serves the nested request inside its own call (as lymph's
    gevent would) instead of both sides waiting for their timeouts."""
    project.write(f"""instances:
  Ping:
    command: {STAGE} --method foo --next Pong.bar --op double --until 100
    ready: notify
  Pong:
    command: {STAGE} --method bar --next Ping.foo --op inc --until 100
    ready: notify
""")
    node = project.up()
    client = NodeClient(project)
    try:
        wait_registered(client, "Ping", 1)
        wait_registered(client, "Pong", 1)
    finally:
        client.close()
    # 1 -> 2 (Ping) -> 3 (Pong) -> 6 -> 7 -> 14 -> 15 -> 30 -> 31 -> 62 -> 63 -> 126 (Ping stops)
    (reply,), rc = call(project, "Ping.foo", {"job": {"id": 1, "value": 1, "path": []}}, "-t", 4000)
    assert rc == 0, reply
    assert reply["result"]["value"] == 126, reply
    assert reply["result"]["path"] == ["Ping.0", "Pong.0"] * 5 + ["Ping.0"], reply
    node.stop()


def test_pipeline_stage_refuses_a_bad_until():
    for bad in ("x", "-3", "12abc"):
        r = subprocess.run([str(STAGE), "--method", "foo", "--until", bad], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip() == f"pipeline_stage: --until takes a whole number, not '{bad}'", r.stderr
