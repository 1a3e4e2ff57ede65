"""RPC: registry entries, the lymph.* built-ins, results and errors (remote type and message),
timeouts, a call cycle and a handler waiting beside a fast one, for each client as callee and
as caller, in every pairing (C -> C, C -> Python, Python -> C, Python -> Python)."""
import re
import threading

import pytest

from harness import CAPABILITIES, LANGS, NAME, PAIRS, REGISTRY_BACKENDS, Gate, new_trace, svc

# the registry and RPC hold on every registry back end: the node's, and ZooKeeper
BACKENDS = REGISTRY_BACKENDS

# One service per language, two instances each: a caller's round robin meets both.
SERVICES = {NAME[lang]: svc(lang, 2) for lang in LANGS}
ADAPTER_METHODS = ["call", "echo", "emit", "fail", "hold", "sleep", "whoami"]


@pytest.mark.parametrize("lang", LANGS)
def test_registers_each_instance_with_its_methods(cluster, lang):
    name = NAME[lang]
    insts = cluster.wait_registered(name, 2)
    status = cluster.node.service(name)
    assert [i["instance"] for i in insts] == [0, 1]
    assert sorted(i["pid"] for i in insts) == sorted(i["pid"] for i in status["instances"])
    for inst in insts:
        assert re.fullmatch(r"[0-9a-f]{32}", inst["identity"]), inst
        assert inst["endpoint"].startswith(cluster.endpoint_prefix), inst
        if cluster.registry is not None:  # lymph's description, devnode's wire, the same as the node's
            assert inst["wire"] == "devnode/1" and inst["ip"] == "127.0.0.1", inst
            assert inst["node_endpoint"] == inst["endpoint"], inst
        methods = {m["name"]: m for m in inst["methods"]}
        assert set(ADAPTER_METHODS) <= set(methods), methods
        assert methods["echo"]["params"] == ["value"]
        assert methods["fail"]["params"] == ["type", "message"]
        assert methods["echo"]["help"] == "Returns value"
        # lymph.status, asked of this very instance, agrees with the registry
        st = cluster.rpc(f"{name}.lymph.status", {}, endpoint=inst["endpoint"])
        assert st["service"] == name and st["instance"] == inst["instance"] and st["pid"] == inst["pid"], st
        assert st["identity"] == inst["identity"] and st["endpoint"] == inst["endpoint"], st
        assert st["uptime_ms"] >= 0 and st["served"] >= 0, st


@pytest.mark.parametrize("lang", LANGS)
def test_builtins_ping_status_inspect(cluster, lang):
    name = NAME[lang]
    payload = {"a": [1, "two", None, 3.5, True], "b": {"c": "d"}}
    assert cluster.rpc(f"{name}.lymph.ping", {"payload": payload}) == payload
    served = [cluster.rpc(f"{name}.lymph.status", {}, instance=0)["served"] for _ in range(2)]
    assert served[1] > served[0], served  # counts requests, built-ins included
    inspect = cluster.rpc(f"{name}.lymph.inspect", {})
    methods = {m["name"]: m for m in inspect["methods"]}
    assert set(ADAPTER_METHODS) <= set(methods)
    assert {"lymph.ping", "lymph.status", "lymph.inspect"} <= set(methods), methods
    assert methods["lymph.ping"]["params"] == ["payload"], methods["lymph.ping"]


@pytest.mark.parametrize("lang", LANGS)
def test_callee_replies_rep_error_nack(cluster, lang):
    """The callee's side alone, asked in raw frames: REP, ERROR {type, message}, NACK."""
    name = NAME[lang]
    rtype, headers, body = cluster.rpc_raw(f"{name}.echo", {"value": [1, {"x": "y"}]}, trace_id="t-raw-1")
    assert (rtype, body) == ("REP", [1, {"x": "y"}])
    assert headers["trace_id"] == "t-raw-1", headers  # replies say the trace they were handled in
    rtype, _, body = cluster.rpc_raw(f"{name}.fail", {"type": "ValueError", "message": "no such book"})
    assert (rtype, body) == ("ERROR", {"type": "ValueError", "message": "no such book"})
    rtype, _, body = cluster.rpc_raw(f"{name}.fail", {"type": "InsufficientFunds", "message": "42 short"})
    assert (rtype, body) == ("ERROR", {"type": "InsufficientFunds", "message": "42 short"})
    rtype, _, body = cluster.rpc_raw(f"{name}.echo", {"valeu": 1})
    assert rtype == "ERROR" and body["type"] == "BadArguments", body
    rtype, _, body = cluster.rpc_raw(f"{name}.echo", {})
    assert rtype == "ERROR" and body["type"] == "BadArguments", body
    rtype, _, body = cluster.rpc_raw(f"{name}.nope", {})
    assert rtype == "NACK" and body["type"] == "UnknownMethod", body
    rtype, _, body = cluster.rpc_raw("Elsewhere.echo", {"value": 1}, endpoint=cluster.endpoint_of(name))
    assert rtype == "NACK" and body["type"] == "UnknownMethod", body
    rtype, _, body = cluster.rpc_raw(f"{name}.echo", [1, 2])
    assert rtype == "NACK" and body["type"] == "BadRequest", body
    rtype, headers, _ = cluster.rpc_raw(f"{name}.nope", {}, trace_id="t-raw-2")
    assert (rtype, headers["trace_id"]) == ("NACK", "t-raw-2")
    # no trace id: the callee makes one up; characters the node cannot index become '_'
    rtype, headers, body = cluster.rpc_raw(f"{name}.whoami", {})
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", headers["trace_id"]) and body["trace_id"] == headers["trace_id"]
    rtype, headers, body = cluster.rpc_raw(f"{name}.whoami", {}, trace_id="order 17/b")
    assert headers["trace_id"] == body["trace_id"] == "order_17_b", (headers, body)
    rtype, headers, body = cluster.rpc_raw(f"{name}.whoami", {}, trace_id="t" * 80)
    assert headers["trace_id"] == body["trace_id"] == "t" * 64, (headers, body)  # cut, not replaced
    # still serving after all that
    assert cluster.rpc(f"{name}.echo", {"value": "after"}) == "after"


@pytest.mark.parametrize("caller,callee", PAIRS)
def test_call_results_and_remote_errors(cluster, caller, callee):
    a, b = NAME[caller], NAME[callee]

    def call(subject, args=None, timeout_ms=None):
        return cluster.rpc(f"{a}.call", {"subject": subject, "args": args, "timeout_ms": timeout_ms})

    assert call(f"{b}.echo", {"value": {"n": 1, "s": "é"}}) == {"result": {"n": 1, "s": "é"}}
    assert call(f"{b}.echo", {"value": None}) == {"result": None}
    assert call(f"{b}.fail", {"type": "ValueError", "message": "bad name"}) == \
        {"error": {"kind": "remote", "type": "ValueError", "message": "bad name"}}
    assert call(f"{b}.fail", {"type": "KeyError", "message": "k"})["error"]["type"] == "KeyError"
    r = call(f"{b}.echo", {"wrong": 1})["error"]
    assert (r["kind"], r["type"]) == ("remote", "BadArguments"), r
    r = call(f"{b}.nope", {})["error"]
    assert (r["kind"], r["type"]) == ("nack", "UnknownMethod"), r
    r = call("Nobody.echo", {"value": 1})["error"]
    assert (r["kind"], r["type"]) == ("not_found", "NotFound"), r
    assert call(f"{b}.lymph.ping", {"payload": "p"}) == {"result": "p"}
    # the round robin reaches both instances of the callee
    seen = {call(f"{b}.whoami")["result"]["instance"] for _ in range(4)}
    assert seen == {0, 1}, seen


@pytest.mark.parametrize("caller", LANGS)
def test_call_timeout_and_the_late_reply_dropped(cluster, caller):
    """The callee (the test's Gate) answers only after the caller's timeout: the caller says
    Timeout, and the late reply, arriving while it makes new calls, is dropped by its id."""
    a = NAME[caller]
    gate = Gate(cluster, "Late" + a)
    try:
        r = cluster.rpc(f"{a}.call", {"subject": gate.name + ".wait", "args": {}, "timeout_ms": 300}, instance=0)
        assert (r["error"]["kind"], r["error"]["type"]) == ("timeout", "Timeout"), r
        gate.release()  # the late REP goes out now
        for i in range(4):
            got = cluster.rpc(f"{a}.call", {"subject": gate.name + ".wait", "args": {}, "timeout_ms": 5000},
                              instance=0)
            assert got == {"result": "released"}, got
            got = cluster.rpc(f"{a}.call", {"subject": f"{a}.echo", "args": {"value": i}}, instance=0)
            assert got == {"result": i}, got
    finally:
        gate.close()


@pytest.mark.parametrize("a,b", PAIRS)
def test_a_call_cycle_completes(cluster, a, b):
    """A.call -> B.call -> A.echo: A serves echo while its own call waits (a cycle)."""
    A, B = NAME[a], NAME[b]
    inner = {"subject": f"{A}.echo", "args": {"value": "round trip"}, "timeout_ms": 5000}
    middle = {"subject": f"{B}.call", "args": inner, "timeout_ms": 8000}
    got = cluster.rpc(f"{A}.call", middle, instance=0) if a == b else cluster.rpc(f"{A}.call", middle)
    assert got == {"result": {"result": "round trip"}}, got
    # deeper: A -> B -> A -> B -> A
    deep = {"subject": f"{B}.call", "args": {"subject": f"{A}.call", "args": middle, "timeout_ms": 9000},
            "timeout_ms": 10000}
    got = cluster.rpc(f"{A}.call", deep)
    assert got == {"result": {"result": {"result": {"result": "round trip"}}}}, got


@pytest.mark.parametrize("lang", LANGS)
def test_a_handler_waiting_on_a_call_leaves_its_instance_serving(cluster, lang):
    """The slow handler waits on a call the test holds (Gate.wait); the same instance answers a
    fast request meanwhile, then the slow one completes with its own result."""
    name = NAME[lang]
    endpoint = cluster.endpoint_of(name, 0)
    gate = Gate(cluster, "Gate" + name)
    try:
        slow = {}
        t = threading.Thread(target=lambda: slow.update(r=new_dealer_rpc(
            cluster, endpoint, f"{name}.call", {"subject": gate.name + ".wait", "args": {}, "timeout_ms": 30000})))
        t.start()
        gate.wait_arrived(1)
        fast = new_dealer_rpc(cluster, endpoint, f"{name}.echo", {"value": "fast"})
        assert fast == ("REP", "fast")
        assert t.is_alive()  # the slow one still waits
        gate.release()
        t.join(30)
        assert slow["r"] == ("REP", {"result": "released"})
    finally:
        gate.close()


@pytest.mark.parametrize("lang", LANGS)
def test_a_busy_handler_leaves_its_instance_serving(cluster, lang, tmp_path):
    """A handler busy in its own code (not in a call): only a client with concurrent handlers
    (threads, gevent) serves beside it; libdevnode's single loop does not (client.md)."""
    if not CAPABILITIES["busy_handler_beside_fast"][lang]:
        pytest.skip(f"{lang}: handlers run one at a time between calls (README.md, capabilities)")
    name = NAME[lang]
    endpoint = cluster.endpoint_of(name, 0)
    release = tmp_path / "release"
    slow = {}
    t = threading.Thread(target=lambda: slow.update(r=new_dealer_rpc(cluster, endpoint, f"{name}.hold",
                                                                      {"path": str(release)})))
    t.start()
    try:
        cluster.wait_reports(1, kind="rpc", match=lambda r: r["method"] == "hold" and r["args"]["path"] == str(release))
        assert new_dealer_rpc(cluster, endpoint, f"{name}.echo", {"value": "fast"}) == ("REP", "fast")
        assert t.is_alive()
    finally:
        release.write_text("go")
        t.join(30)
    assert slow["r"] == ("REP", "held")


def new_dealer_rpc(cluster, endpoint, subject, args):
    """One call on a DEALER of its own (usable from any thread): (reply type, body)."""
    import uuid
    import msgpack
    import zmq
    sock = cluster.ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        mid = uuid.uuid4().hex[:16].encode()
        sock.send_multipart([mid, b"REQ", subject.encode(), msgpack.packb({}), msgpack.packb(args)])
        assert sock.poll(40000), f"no reply to {subject}"
        frames = sock.recv_multipart()
        return frames[1].decode(), msgpack.unpackb(frames[4], raw=False)
    finally:
        sock.close()


@pytest.mark.parametrize("caller,callee", PAIRS)
def test_a_call_carries_the_handlers_trace_id(cluster, caller, callee):
    """A request with trace T: the call its handler makes carries T, the callee's handler has T
    current (its lines say so), and `devnode tail --trace T` shows both sides' lines."""
    a, b = NAME[caller], NAME[callee]
    trace = new_trace()
    got = cluster.rpc(f"{a}.call", {"subject": f"{b}.whoami"}, trace_id=trace)
    assert got["result"]["trace_id"] == trace, got
    (outer,) = cluster.wait_reports(1, kind="rpc", service=a, match=lambda r: r["method"] == "call" and r["trace_id"] == trace)
    (inner,) = cluster.wait_reports(1, kind="rpc", service=b, match=lambda r: r["method"] == "whoami" and r["trace_id"] == trace)
    assert outer["log_trace_id"] == inner["log_trace_id"] == trace
    out, services = cluster.tail_trace(trace)
    assert services == {a, b} and out.count("conformance rpc") == 2, out
    # without a trace id the callee gets one made up by the caller, new for each request
    first = cluster.rpc(f"{a}.call", {"subject": f"{b}.whoami"})["result"]["trace_id"]
    second = cluster.rpc(f"{a}.call", {"subject": f"{b}.whoami"})["result"]["trace_id"]
    assert first and second and first != second and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", first), (first, second)
