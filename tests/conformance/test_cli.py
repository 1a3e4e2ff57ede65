"""CLI parity (issue 18 item 4): `devnode request`, `inspect`, `emit` and `subscribe` give the
same results against either client's service: the outputs for the C service and the Python one
are compared with the service's name taken out, and each checked for what it must say."""
import json
import re
import subprocess
import uuid

import pytest

from harness import DEVNODE, LANGS, NAME, NAMES, REGISTRY_BACKENDS, new_trace, svc, with_tag

# request and inspect find the services through the registry; emit and subscribe stay on the
# node's bus (cheap to run again beside them), and go to the broker with RabbitMQ events
BACKENDS = REGISTRY_BACKENDS
EVENT_BACKENDS = REGISTRY_BACKENDS + ["rabbitmq"]

SERVICES = {NAME[lang]: svc(lang, 1, "group:grp:conf.cli.in") for lang in LANGS}


@pytest.fixture(scope="module", autouse=True)
def subscribed(cluster):
    for name in NAMES:
        cluster.wait_subscribed(name, "grp", 1)


def run(cluster, *args):
    r = cluster.project.cli(*args)
    return r.returncode, r.stdout, r.stderr


def neutral(text, name):
    """The text with the service's name (and pids, uptimes) taken out."""
    text = re.sub(rf"\b{name}\b", "SERVICE", text)
    return re.sub(r"\b\d{3,}\b", "N", text)


REQUESTS = [
    ("echo", {"value": {"a": [1, 2.5, None, True, "é"]}}),
    ("fail", {"type": "ValueError", "message": "no such book"}),
    ("fail", {"type": "OutOfStock", "message": "3 left"}),
    ("echo", {"valeu": 1}),
    ("nope", {}),
    ("lymph.ping", {"payload": ["x", 1]}),
    ("sleep", {"ms": 3000}),
]


@pytest.mark.parametrize("method,args", REQUESTS, ids=[f"{m}-{i}" for i, (m, _) in enumerate(REQUESTS)])
def test_request_answers_alike(cluster, method, args):
    extra = ["--timeout", "0.3"] if method == "sleep" else []
    out = {name: run(cluster, "request", *extra, f"{name}.{method}", json.dumps(args)) for name in NAMES}
    for name, (rc, stdout, stderr) in out.items():
        if method in ("echo", "lymph.ping") and "valeu" not in args:
            assert rc == 0 and json.loads(stdout) == (args.get("value", args.get("payload"))), out
        elif method == "fail":
            assert rc == 1 and f"{args['type']}: {args['message']}" in stderr, out
        elif method == "nope":
            assert rc == 1 and f"{name} has no method 'nope'" in stderr, out
        elif method == "sleep":
            assert rc == 1 and "timed out" in stderr, out
        else:
            assert rc == 1 and "BadArguments" in stderr, out
    ref = NAMES[0]
    for name in NAMES[1:]:
        assert out[name][:2] == out[ref][:2], out
        if "valeu" not in args:  # the callee's own wording of a bad argument may differ; its type not
            assert neutral(out[name][2], name) == neutral(out[ref][2], ref), out


def test_request_status_has_the_same_fields(cluster):
    out = {name: run(cluster, "request", f"{name}.lymph.status", "{}") for name in NAMES}
    assert all(rc == 0 for rc, _, _ in out.values()), out
    status = {name: json.loads(o[1]) for name, o in out.items()}
    for name, st in status.items():
        assert set(st) == set(status[NAMES[0]]) >= {"service", "instance", "pid", "endpoint", "identity",
                                                    "uptime_ms", "served"}, status
        assert st["service"] == name, st


def test_request_trace_id_reaches_the_handler(cluster):
    for name in NAMES:
        trace = new_trace()
        rc, stdout, stderr = run(cluster, "request", "--trace-id", trace, f"{name}.whoami", "{}")
        assert rc == 0 and json.loads(stdout)["trace_id"] == trace, stderr
        (rep,) = cluster.wait_reports(1, kind="rpc", service=name, match=lambda r: r["trace_id"] == trace)
        assert rep["log_trace_id"] == trace


def test_inspect_lists_alike(cluster):
    out = {name: run(cluster, "inspect", name) for name in NAMES}
    assert all(rc == 0 for rc, _, _ in out.values()), out
    listing = {name: neutral(o[1], name) for name, o in out.items()}
    for name in NAMES:
        assert listing[name] == listing[NAMES[0]], out
    for line in ("RPC interface of SERVICE", "rpc echo(value)", "rpc fail(type, message)", "Returns value",
                 "rpc lymph.ping(payload)", "rpc lymph.status()", "rpc lymph.inspect()",
                 "rpc call(subject, args, timeout_ms)"):
        assert line in listing[NAMES[0]], listing


@pytest.mark.backends(*EVENT_BACKENDS)
def test_emit_reaches_both_services_handlers(cluster):
    tag = uuid.uuid4().hex
    trace = new_trace()
    rc, _, stderr = run(cluster, "emit", "--trace-id", trace, "conf.cli.in", json.dumps({"tag": tag}))
    assert rc == 0, stderr
    got = cluster.wait_reports(len(NAMES), kind="event", match=with_tag(tag))
    assert sorted(r["service"] for r in got) == sorted(NAMES), got
    for r in got:
        assert (r["type"], r["body"], r["source"]) == ("conf.cli.in", {"tag": tag}, "cli"), r
        assert r["event_trace_id"] == trace and r["trace_id"] == trace and r["log_trace_id"] == trace, r


@pytest.mark.backends(*EVENT_BACKENDS)
def test_subscribe_prints_both_services_events_alike(cluster):
    sub = subprocess.Popen([str(DEVNODE), "subscribe", "-c", str(cluster.project.config_path), "--json", "-n", str(len(NAMES)),
                            "conf.cli.out"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           stdin=subprocess.DEVNULL)
    try:
        if cluster.events is None:
            cluster.wait_members(lambda g: g.get("broadcast") and "conf.cli.out" in g["patterns"], 1,
                                 what="the CLI's subscription")
        else:  # the CLI subscribes as service `cli`, its subscription named after the pattern
            cluster.wait_subscribed("cli", "conf.cli.out", 1, broadcast=True)
        sent = {name: cluster.rpc(f"{name}.emit", {"type": "conf.cli.out", "body": {"from": name}})
                for name in NAMES}
        out, err = sub.communicate(timeout=20)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    assert sub.returncode == 0, err
    events = {e["source"]: e for e in map(json.loads, out.splitlines())}
    assert set(events) == set(NAMES), out
    for name, e in events.items():
        assert e["type"] == "conf.cli.out" and e["body"] == {"from": name}, e
        assert e["headers"]["trace_id"] == sent[name]["trace_id"], (e, sent)
    assert all(set(e) == set(events[NAMES[0]]) for e in events.values()), events
