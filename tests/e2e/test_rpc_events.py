"""libdevnode end to end (issue 6): C services built on the library (examples/greeting,
examples/listen) run by the real node; their RPC spoken raw from Python (the service side), the
`call` example driving the library's caller side (discover, round robin, timeouts, deferred
calls, error replies), and events through the node's bus (once per service, broadcast,
patterns, redelivery when the handling process dies before its ack)."""
import array
import fcntl
import os
import re
import signal
import termios
import time

import msgpack

from conftest import pid_alive, wait_for
from demohelpers import (GREETING, LISTEN, NodeClient, RawRPC, broadcast_of, call, examples_config, group_named,
                         lines_of, socket_files, wait_broadcast_members, wait_group_members, wait_lines,
                         wait_registered, wait_settled)


def start(project, services):
    project.write(examples_config(services))
    node = project.up()
    for name, spec in services.items():
        node.wait_running(name, spec[1])
    return node


# ---------------------------------------------------------------- registering and serving

def test_services_register_methods_and_answer_the_builtins(project, client):
    node = start(project, {"Greeting": (GREETING, 3), "Listen": (LISTEN, 2)})
    c = client()
    insts = wait_registered(c, "Greeting", 3)
    wait_registered(c, "Listen", 2)
    supervised = {i["index"]: i["pid"] for i in node.service("Greeting")["instances"]}
    assert {i["instance"]: i["pid"] for i in insts} == supervised
    for inst in insts:
        assert inst["methods"] == [{"name": "greet", "params": ["name"],
                                    "help": "Returns a greeting for name and emits `greeted`"}]
        assert inst["endpoint"] == (f"ipc://{project.run_dir}/rpc/Greeting.{inst['instance']}."
                                    f"{inst['pid']}.sock")
        rpc = RawRPC(inst["endpoint"])
        try:
            rtype, _, status = rpc.request("lymph.status")
            assert rtype == "REP"
            assert (status["service"], status["instance"], status["pid"]) == ("Greeting", inst["instance"],
                                                                               inst["pid"])
            assert status["endpoint"] == inst["endpoint"]
            assert status["identity"] == inst["identity"]
            rtype, _, inspect = rpc.request("lymph.inspect")
            assert [m["name"] for m in inspect["methods"]] == ["greet", "lymph.ping", "lymph.status",
                                                               "lymph.inspect"]
            assert rpc.request("lymph.ping", {"payload": {"a": [1, 2]}})[2] == {"a": [1, 2]}
        finally:
            rpc.close()
    assert len(socket_files(project)) == 5


def test_replies_rep_error_and_nack_and_survives_malformed_frames(project, client):
    start(project, {"Greeting": (GREETING, 1)})
    c = client()
    (inst,) = wait_registered(c, "Greeting", 1)
    rpc = RawRPC(inst["endpoint"])
    try:
        rtype, headers, body = rpc.request("Greeting.greet", {"name": "joe"}, trace_id="raw-trace-1")
        assert (rtype, headers["trace_id"], body) == ("REP", "raw-trace-1", "Hi, joe!")

        rtype, headers, body = rpc.request("Greeting.greet", {"name": "ann"})
        assert rtype == "REP" and re.fullmatch(r"[0-9a-f]{32}", headers["trace_id"]), headers

        assert rpc.request("Greeting.nope")[0::2] == ("NACK", {"type": "UnknownMethod",
                                                               "message": "Greeting has no method 'nope'"})
        rtype, _, body = rpc.request("Other.greet", {"name": "x"})
        assert (rtype, body["type"]) == ("NACK", "UnknownMethod")
        rtype, _, body = rpc.request("Greeting.greet", [1, 2])
        assert (rtype, body["type"]) == ("NACK", "BadRequest")
        rtype, _, body = rpc.request("Greeting.greet", {})
        assert (rtype, body["type"]) == ("ERROR", "BadArguments")
        assert "missing the argument 'name'" in body["message"]
        rtype, _, body = rpc.request("Greeting.greet", {"name": "x", "shout": True})
        assert (rtype, body["type"]) == ("ERROR", "BadArguments")
        assert "unexpected argument 'shout'" in body["message"]
        rtype, _, body = rpc.request("Greeting.greet", {"name": ""})
        assert (rtype, body) == ("ERROR", {"type": "ValueError", "message": "name must not be empty"})
        rtype, _, body = rpc.request("Greeting.greet", {"name": 7})
        assert (rtype, body["type"]) == ("ERROR", "ValueError")

        # Malformed messages get no reply and change nothing.
        rpc.send_frames([b"id-only"])
        rpc.send_frames([b"x", b"REQ", b"Greeting.greet", b"\xc1", b"\x80"])
        rpc.send_frames([b"x", b"HELLO", b"Greeting.greet", b"\x80", b"\x80"])
        rpc.send_frames([b"x", b"REQ", b"Greeting.greet", b"\x80", b"\x80", b"extra"])
        assert rpc.request("Greeting.greet", {"name": "still"})[2] == "Hi, still!"
        assert pid_alive(inst["pid"])
    finally:
        rpc.close()


# ---------------------------------------------------------------- the caller side

def test_calls_go_round_robin_over_the_instances(project, client):
    node = start(project, {"Greeting": (GREETING, 3)})
    wait_registered(client(), "Greeting", 3)
    replies, rc = call(project, "Greeting.lymph.status", {}, "-n", 9)
    assert rc == 0, replies
    pids = [r["result"]["pid"] for r in replies]
    supervised = {i["pid"] for i in node.service("Greeting")["instances"]}
    assert set(pids[:3]) == supervised, pids
    assert pids[3:6] == pids[:3] and pids[6:9] == pids[:3], pids

    replies, rc = call(project, "Greeting.greet", {"name": "joe"}, "-n", 3)
    assert rc == 0 and [r["result"] for r in replies] == ["Hi, joe!"] * 3


def test_call_reports_the_errors_of_the_callee(project, client):
    start(project, {"Greeting": (GREETING, 2)})
    wait_registered(client(), "Greeting", 2)
    (r,), rc = call(project, "Greeting.nope", {})
    assert (rc, r["ok"], r["code"], r["type"]) == (1, False, -2, "UnknownMethod")
    (r,), rc = call(project, "Greeting.greet", {})
    assert (rc, r["code"], r["type"]) == (1, -1, "BadArguments")
    (r,), rc = call(project, "Greeting.greet", {"name": ""})
    assert (r["code"], r["type"], r["message"]) == (-1, "ValueError", "name must not be empty")
    (r,), rc = call(project, "Nobody.greet", {"name": "x"})
    assert (rc, r["code"], r["type"]) == (1, -4, "NotFound")


def test_call_times_out_and_the_callee_keeps_serving(project, client):
    start(project, {"Slow": (GREETING, 1, "--delay-ms 1500")})
    wait_registered(client(), "Slow", 1)
    t0 = time.monotonic()
    (r,), rc = call(project, "Slow.greet", {"name": "x"}, "-t", 300)
    elapsed = time.monotonic() - t0
    assert (rc, r["code"], r["type"]) == (1, -3, "Timeout"), r
    assert elapsed < 1.4, f"a 300 ms timeout took {elapsed:.2f}s"
    (r,), rc = call(project, "Slow.greet", {"name": "y"}, "-t", 5000)
    assert (rc, r["result"]) == (0, "Hi, y!")


def test_deferred_calls_all_come_back(project, client):
    start(project, {"Greeting": (GREETING, 3)})
    wait_registered(client(), "Greeting", 3)
    replies, rc = call(project, "Greeting.greet", {"name": "later"}, "-a", "-n", 30)
    assert rc == 0 and len(replies) == 30
    assert all(r["result"] == "Hi, later!" for r in replies)


def test_trace_id_travels_through_call_emit_and_event(project, client):
    node = start(project, {"Greeting": (GREETING, 2), "Listen": (LISTEN, 2)})
    c = client()
    wait_registered(c, "Greeting", 2)
    wait_group_members(c, "Listen.greeted", 2)
    (r,), rc = call(project, "Greeting.greet", {"name": "tracy"}, "-T", "trace-e2e-1")
    assert rc == 0, r
    (g,) = wait_lines(node, 1, service="Greeting", trace_id="trace-e2e-1")
    assert g["text"] == "INFO Saying hi to tracy trace_id=trace-e2e-1" and g["level"] == "info"
    (l,) = wait_lines(node, 1, service="Listen", trace_id="trace-e2e-1")
    assert l["text"].startswith("INFO Somebody greeted tracy (delivery=")


def test_stopping_instances_unregister_and_remove_their_socket(project, client):
    node = start(project, {"Greeting": (GREETING, 3)})
    c = client()
    wait_registered(c, "Greeting", 3)
    assert len(socket_files(project)) == 3
    r = node.cli("scale", "Greeting", "1")
    assert r.returncode == 0, r.stderr
    wait_registered(c, "Greeting", 1, timeout=5)
    wait_for(lambda: len(socket_files(project)) == 1, 5, "the stopped instances' socket files to go")
    wait_lines(node, 2, service="Greeting", pattern=r"^INFO Greeting\.[12] stopping on SIGTERM")


def test_a_callee_restarted_is_found_again(project, client):
    node = start(project, {"Greeting": (GREETING, 2)})
    c = client()
    before = {i["pid"] for i in wait_registered(c, "Greeting", 2)}
    assert node.cli("restart", "Greeting").returncode == 0
    wait_for(lambda: {i["pid"] for i in c.discover("Greeting").get("Greeting", [])}.isdisjoint(before)
             and len(c.discover("Greeting").get("Greeting", [])) == 2, 15, "new Greeting instances registered")
    replies, rc = call(project, "Greeting.greet", {"name": "again"}, "-n", 4)
    assert rc == 0, replies


# ---------------------------------------------------------------- events

def test_each_event_is_handled_once_per_service(project, client):
    node = start(project, {"Listen": (LISTEN, 4), "Other": (LISTEN, 2)})
    c = client()
    wait_group_members(c, "Listen.greeted", 4)
    wait_group_members(c, "Other.greeted", 2)
    names = [f"n{i}" for i in range(24)]
    for name in names:
        c.emit("greeted", {"name": name})
    for service in ("Listen", "Other"):
        wait_lines(node, len(names), service=service, pattern=r"Somebody greeted n\d+ ")
    for group in ("Listen.greeted", "Other.greeted"):
        assert wait_settled(c, group_named(group)) == len(names), f"{group}: each event exactly once"
    for service, count in (("Listen", 4), ("Other", 2)):
        recs = lines_of(node, service=service, pattern=r"Somebody greeted n\d+ ")
        seen = sorted(re.search(r"greeted (n\d+) ", r["text"]).group(1) for r in recs)
        assert seen == sorted(names), f"{service} handled {seen}"
        assert len({r["pid"] for r in recs}) == count, "events spread over every instance"
        assert not any("redelivered" in r["text"] for r in recs)


def test_broadcast_reaches_every_instance(project, client):
    node = start(project, {"Watch": (LISTEN, 3, "--broadcast"), "Listen": (LISTEN, 2)})
    c = client()
    wait_broadcast_members(c, "greeted", 3)
    wait_group_members(c, "Listen.greeted", 2)
    c.emit("greeted", {"name": "everyone"}, trace_id="bcast-1")
    recs = wait_lines(node, 3, service="Watch", trace_id="bcast-1")
    assert len({r["instance"] for r in recs}) == 3
    wait_lines(node, 1, service="Listen", trace_id="bcast-1")
    assert wait_settled(c, broadcast_of("greeted")) == 3, "one delivery per broadcast member"
    assert wait_settled(c, group_named("Listen.greeted")) == 1
    assert len(lines_of(node, service="Watch", trace_id="bcast-1")) == 3
    assert len(lines_of(node, service="Listen", trace_id="bcast-1")) == 1


def test_patterns_follow_amqp_topic_rules(project, client):
    node = start(project, {"Orders": (LISTEN, 1, "--pattern 'order.*'"),
                           "Audit": (LISTEN, 1, "--pattern 'order.#' --pattern audit")})
    c = client()
    wait_group_members(c, "Orders.order.*", 1)
    wait_group_members(c, "Audit.order.#", 1)
    for t in ("order.created", "order.item.added", "other", "audit", "order", "orders.created"):
        c.emit(t, {"t": t}, trace_id="pat-" + t.replace(".", "-"))
    wait_lines(node, 4, service="Audit", pattern=r"^INFO event ")
    wait_lines(node, 1, service="Orders", pattern=r"^INFO event ")
    assert wait_settled(c, group_named("Orders.order.*")) == 1
    assert wait_settled(c, lambda g: g["name"] in ("Audit.order.#", "Audit.audit")) == 4
    got = {s: sorted(re.search(r"event (\S+) ", r["text"]).group(1)
                     for r in lines_of(node, service=s, pattern=r"^INFO event "))
           for s in ("Orders", "Audit")}
    assert got == {"Orders": ["order.created"],
                   "Audit": ["audit", "order", "order.created", "order.item.added"]}


def test_an_event_is_redelivered_when_its_handler_dies_before_the_ack(project, client):
    node = start(project, {"SlowListen": (LISTEN, 2, "--sleep-ms 60000", {"stop_timeout": 1})})
    c = client()
    wait_group_members(c, "SlowListen.greeted", 2)
    c.emit("greeted", {"name": "dies"}, trace_id="redeliver-1")
    (first,) = wait_lines(node, 1, service="SlowListen", trace_id="redeliver-1", pattern=r"^INFO handling ")
    assert "redelivered" not in first["text"]
    victim = first["pid"]
    os.kill(victim, signal.SIGKILL)
    recs = wait_lines(node, 2, service="SlowListen", trace_id="redeliver-1", pattern=r"^INFO handling ")
    second = recs[1]
    assert second["pid"] != victim
    assert second["text"].endswith(" redelivered trace_id=redeliver-1"), second["text"]
    assert not pid_alive(victim)


def test_a_handler_longer_than_the_heartbeat_timeout_keeps_the_instance_registered(project, client):
    node = start(project, {"Slow": (GREETING, 1, "--delay-ms 4500")})
    c = client()
    wait_registered(c, "Slow", 1)
    (r,), rc = call(project, "Slow.greet", {"name": "patience"}, "-t", 9000)
    assert (rc, r.get("result")) == (0, "Hi, patience!"), r
    # The registry dropped it during the stall (no heartbeat for 3 s); it registered again.
    wait_lines(node, 1, service="Slow", pattern=r"no heartbeat for \d\.\ds .*registering again")
    wait_registered(c, "Slow", 1, timeout=3)
    (r,), rc = call(project, "Slow.lymph.ping", {"payload": 1}, "-t", 3000)
    assert (rc, r["result"]) == (0, 1)


# ---------------------------------------------------------------- batches (protocol and library)

def raw_subscriber(project, subscription, group, prefetch, batch):
    """A DEALER subscribed to bench.# in `group`, taking `events` messages of up to `batch`."""
    sub = NodeClient(project)
    rtype, reply = sub.request("subscribe", {"subscription": subscription, "patterns": ["bench.#"], "group": group,
                                             "broadcast": False, "pid": os.getpid(), "prefetch": prefetch,
                                             "batch": batch})
    assert rtype == "ok", reply
    return sub


def next_batch(sub, timeout=5.0):
    assert sub.sock.poll(int(timeout * 1000)), "no delivery came"
    _, rtype, body = sub.sock.recv_multipart()
    assert rtype == b"events", rtype
    msg = msgpack.unpackb(body, raw=False)
    assert msg["subscription"] == "s1"
    return msg["events"]


def settle(sub, kind, events):
    sub.sock.send_multipart([b"1", kind.encode(), msgpack.packb({"deliveries": [e["delivery"] for e in events]})])


def test_a_batch_of_emits_comes_out_in_batches_that_one_ack_or_nack_settles(project, client):
    start(project, {"Listen": (LISTEN, 1)})
    c = client()
    sub = raw_subscriber(project, "s1", "Raw.batch", prefetch=100, batch=40)
    try:
        rtype, reply = c.request("emit", {"source": "test", "events": [
            {"type": "bench.evt", "body": {"n": i}, "headers": {"trace_id": f"b{i}"}} for i in range(100)]})
        assert (rtype, reply["events"], reply["groups"], reply["offset"]) == ("ok", 100, 100, None)
        batches = [next_batch(sub) for _ in range(2)]
        assert [len(b) for b in batches] == [40, 40], "as many as batch and prefetch allow"
        # Holding 80 with room for 20, it gets the last 20 once it acks a batch (the node sends a
        # member holding more than a full message's worth only full messages).
        settle(sub, "ack", batches[0])
        batches.append(next_batch(sub))
        events = [e for b in batches for e in b]
        assert [e["body"]["n"] for e in events] == list(range(100))
        assert {(e["type"], e["source"], e["redelivered"], e["offset"]) for e in events} == \
            {("bench.evt", "test", False, None)}
        assert [e["headers"]["trace_id"] for e in events[:3]] == ["b0", "b1", "b2"]
        assert len({e["delivery"] for e in events}) == 100
        settle(sub, "nack", batches[1])
        again = next_batch(sub)
        assert [e["body"]["n"] for e in again] == list(range(40, 80)), "a nacked batch comes back in its order"
        assert all(e["redelivered"] for e in again)
        for b in (again, batches[2]):
            settle(sub, "ack", b)
        assert wait_settled(c, group_named("Raw.batch")) == 100
        assert not sub.sock.poll(200), "nothing is delivered twice once acked"
    finally:
        sub.close()


def test_a_batch_in_flight_goes_to_another_member_when_its_member_leaves(project, client):
    start(project, {"Listen": (LISTEN, 1)})
    c = client()
    first = raw_subscriber(project, "s1", "Raw.handover", prefetch=30, batch=50)
    second = None
    try:
        c.request("emit", {"events": [{"type": "bench.evt", "body": {"n": i}} for i in range(30)]})
        taken = next_batch(first)
        assert [e["body"]["n"] for e in taken] == list(range(30))
        second = raw_subscriber(project, "s1", "Raw.handover", prefetch=50, batch=50)
        assert c.request("emit", {"type": "bench.evt", "body": {"n": 30}})[0] == "ok"
        last = next_batch(second)
        assert [e["body"]["n"] for e in last] == [30], "the first member has no room"
        rtype, reply = first.request("unsubscribe", {"subscription": "s1"})
        assert rtype == "ok", reply
        back = next_batch(second)
        assert [e["body"]["n"] for e in back] == list(range(30))
        assert all(e["redelivered"] for e in back)
        settle(second, "ack", back + last)
        assert wait_settled(c, group_named("Raw.handover")) == 31
    finally:
        first.close()
        if second:
            second.close()


def test_a_batch_with_one_bad_event_is_refused_whole(project, client):
    start(project, {"Listen": (LISTEN, 1)})
    c = client()
    emitted = c.request("bus_status")[1]["emitted"]
    rtype, reply = c.request("emit", {"events": [{"type": "bench.ok"}, {"type": "bench.*"}, {"type": "bench.ok"}]})
    assert (rtype, reply["message"]) == ("error", "emit: event 2 of 3: the type must be dot-separated words "
                                                  "(no * or #)")
    rtype, reply = c.request("emit", {"events": [{"type": "bench.ok", "headers": [1]}]})
    assert (rtype, reply["message"]) == ("error", "emit: event 1 of 1: headers must be a map")
    rtype, reply = c.request("emit", {"events": []})
    assert (rtype, reply["message"]) == ("error", "emit: events must be a list of 1 to 1000 events")
    assert c.request("bus_status")[1]["emitted"] == emitted, "nothing of a refused batch is emitted"
    rtype, reply = c.request("subscribe", {"subscription": "s9", "patterns": ["x"], "group": "G", "batch": 0})
    assert (rtype, reply["message"]) == ("error", "subscribe: batch must be a number of events from 1 to 1000")


def test_the_library_handles_batches_once_each_and_spread(project, client):
    node = start(project, {"Listen": (LISTEN, 2)})
    c = client()
    wait_group_members(c, "Listen.greeted", 2)
    names = [f"m{i}" for i in range(300)]
    rtype, reply = c.request("emit", {"source": "test", "events": [
        {"type": "greeted", "body": {"name": n}, "headers": {"trace_id": f"lib-{n}"}} for n in names]})
    assert (rtype, reply["groups"]) == ("ok", 300), reply
    wait_lines(node, len(names), service="Listen", pattern=r"Somebody greeted m\d+ ")
    assert wait_settled(c, group_named("Listen.greeted")) == len(names), "each event exactly once"
    recs = lines_of(node, service="Listen", pattern=r"Somebody greeted m\d+ ")
    assert sorted(re.search(r"greeted (m\d+) ", r["text"]).group(1) for r in recs) == sorted(names)
    assert len({r["pid"] for r in recs}) == 2, "events spread over both instances"
    for r in recs[:5]:
        name = re.search(r"greeted (m\d+) ", r["text"]).group(1)
        assert r["trace_id"] == f"lib-{name}", "each handler runs with its own event's trace id"


def test_a_stopping_service_answers_the_requests_already_on_their_way(project, client):
    # Callers cache a lookup for a second, so requests keep coming after a service began to
    # stop. Here the node is paused, so Greeting's stop waits on its unregister while B
    # arrives: the stop must still answer B before the endpoint closes.
    node = start(project, {"Greeting": (GREETING, 1)})
    c = client()
    (inst,) = wait_registered(c, "Greeting", 1)
    rpc = RawRPC(inst["endpoint"])
    assert rpc.request("Greeting.greet", {"name": "a"})[2] == "Hi, a!"
    wait_lines(node, 1, service="Greeting", pattern=r"Saying hi to a ")  # its stdout pipe is drained
    # Greeting's stdout, opened through /proc, is the read side of the pipe the paused node
    # would read: bytes waiting there are its "stopping on SIGTERM" line, printed as its stop
    # begins (FIONREAD counts them without taking them).
    stdout_pipe = os.open(f"/proc/{inst['pid']}/fd/1", os.O_RDONLY | os.O_NONBLOCK)
    os.kill(node.proc.pid, signal.SIGSTOP)
    try:
        os.kill(inst["pid"], signal.SIGTERM)

        def stop_began():
            waiting = array.array("i", [0])
            fcntl.ioctl(stdout_pipe, termios.FIONREAD, waiting)
            return waiting[0] > 0
        wait_for(stop_began, 5, "Greeting to begin its stop")
        # (lymph.ping: greet would emit, and wait for the paused node)
        rpc.send_frames([b"bbbbbbbb", b"REQ", b"lymph.ping", msgpack.packb({}), msgpack.packb({"payload": "b"})])
        assert rpc.sock.poll(5000), "the request that came during the stop was dropped"
        f = rpc.sock.recv_multipart()
        assert (f[1], f[2], msgpack.unpackb(f[4], raw=False)) == (b"REP", b"bbbbbbbb", "b")
    finally:
        os.kill(node.proc.pid, signal.SIGCONT)
        os.close(stdout_pipe)
        rpc.close()
    wait_for(lambda: not pid_alive(inst["pid"]), 10, "Greeting to exit once its stop is done")
