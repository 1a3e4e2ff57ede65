"""The bus at the protocol level for coalescing clients (issue 17): quiet emits (no `ok`, each
event on its own, refusals named by index in one `emit_refused`), emits of one wake-up leaving
together."""
import os
import signal
import time

import msgpack
import zmq

from conftest import wait_for
from demohelpers import NodeClient, group_named, wait_settled

CONFIG = "instances:\n    Idle:\n        command: sleep 1000\n"
TYPE_ERROR = "the type must be dot-separated words (no * or #)"


def up(project):
    project.write(CONFIG)
    return project.up()


def subscriber(project, group, batch, prefetch=1000):
    sub = NodeClient(project)
    rtype, reply = sub.request("subscribe", {"subscription": "s1", "patterns": ["q.#"], "group": group,
                                             "broadcast": False, "pid": os.getpid(), "prefetch": prefetch,
                                             "batch": batch})
    assert rtype == "ok", reply
    return sub


def deliveries(sub, want, timeout=10.0, ack=True):
    """Reads delivery messages until `want` events came; returns the list of messages, each a
    list of events, acking each message (unless told not to)."""
    messages, got = [], 0
    deadline = time.monotonic() + timeout
    while got < want:
        assert sub.sock.poll(max(1, int((deadline - time.monotonic()) * 1000))), f"only {got} of {want} events came"
        _, rtype, body = sub.sock.recv_multipart()
        msg = msgpack.unpackb(body, raw=False)
        events = msg["events"] if rtype == b"events" else [msg]
        assert rtype in (b"event", b"events"), rtype
        messages.append(events)
        got += len(events)
        if ack:
            sub.sock.send_multipart([b"1", b"ack", msgpack.packb({"deliveries": [e["delivery"] for e in events]})])
    return messages


def replies_until_ping(c):
    """Sends a ping and returns every message that came before its reply: the node handles a
    connection's messages in order, so nothing about earlier requests can come after it."""
    rid = 10_000 + c.next_id
    c.next_id += 1
    c.sock.send_multipart([b"1", b"ping", msgpack.packb({"id": rid})])
    before = []
    while True:
        assert c.sock.poll(5000), "the node did not answer ping"
        _, rtype, body = c.sock.recv_multipart()
        msg = msgpack.unpackb(body, raw=False)
        if rtype == b"ok" and msg.get("id") == rid:
            return before
        before.append((rtype.decode(), msg))


def send(sock, type_, body):
    sock.send_multipart([b"1", type_.encode(), msgpack.packb(body)])


def test_a_quiet_batch_emits_every_good_event_and_names_each_refused_one(project, client):
    up(project)
    c = client()
    sub = subscriber(project, "Q.batch", batch=10)
    try:
        events = [{"type": "q.evt", "body": {"n": i}, "headers": {"trace_id": f"t{i}"}} for i in range(8)]
        events[2] = {"type": "q.*", "body": {"n": 2}}
        events[5] = {"type": "q.evt", "body": {"n": 5}, "headers": [1]}
        send(c.sock, "emit", {"id": 7, "source": "test", "quiet": True, "events": events})
        before = replies_until_ping(c)
        assert before == [("emit_refused", {"id": 7, "events": 8, "refused": [
            {"index": 2, "type": "q.*", "message": TYPE_ERROR},
            {"index": 5, "type": "q.evt", "message": "headers must be a map"}]})], "no ok, one emit_refused"
        got = [e for m in deliveries(sub, 6) for e in m]
        assert [e["body"]["n"] for e in got] == [0, 1, 3, 4, 6, 7], "the others, in order"
        assert [e["headers"]["trace_id"] for e in got[:2]] == ["t0", "t1"]
        assert {e["source"] for e in got} == {"test"}
        assert wait_settled(c, group_named("Q.batch")) == 6
    finally:
        sub.close()


def test_a_quiet_emit_of_good_events_gets_no_reply_at_all(project, client):
    up(project)
    c = client()
    sub = subscriber(project, "Q.single", batch=1)
    try:
        send(c.sock, "emit", {"id": 3, "type": "q.one", "body": "x", "source": "test", "quiet": True})
        send(c.sock, "emit", {"id": 4, "source": "test", "quiet": True, "events": [{"type": "q.two", "body": "y"}]})
        assert replies_until_ping(c) == [], "a quiet emit without refusals is answered by nothing"
        got = [e for m in deliveries(sub, 2) for e in m]
        assert [(e["type"], e["body"]) for e in got] == [("q.one", "x"), ("q.two", "y")]
        send(c.sock, "emit", {"id": 5, "type": 42, "quiet": True})
        assert replies_until_ping(c) == [("emit_refused", {"id": 5, "events": 1, "refused": [
            {"index": 0, "type": None, "message": TYPE_ERROR}]})]
        send(c.sock, "emit", {"id": 6, "quiet": True, "events": []})
        assert replies_until_ping(c) == [("error", {"id": 6, "message": "emit: events must be a list of 1 to 1000 "
                                                                        "events"})], "malformed as a whole: error"
    finally:
        sub.close()


def test_an_emit_that_is_not_quiet_is_answered_as_before(project, client):
    up(project)
    c = client()
    emitted = c.request("bus_status")[1]["emitted"]
    rtype, reply = c.request("emit", {"quiet": False, "events": [{"type": "q.a"}, {"type": "q.*"}]})
    assert (rtype, reply["message"]) == ("error", "emit: event 2 of 2: " + TYPE_ERROR)
    assert c.request("bus_status")[1]["emitted"] == emitted, "checked whole, nothing emitted"
    rtype, reply = c.request("emit", {"events": [{"type": "q.a"}, {"type": "q.b"}]})
    assert (rtype, reply["events"], reply["groups"], reply["offset"]) == ("ok", 2, 0, None)
    rtype, reply = c.request("emit", {"type": "q.a"})
    assert (rtype, reply) == ("ok", {"id": reply["id"], "groups": 0, "offset": None})


def test_single_emits_of_one_wake_up_leave_in_one_delivery_per_member(project, client):
    """500 single emits reach the node while it is stopped, so it reads them in a few wake-ups:
    a subscriber taking batches of 100 gets them in far fewer messages than events (before,
    every emit left on its own)."""
    node = up(project)
    c = client()
    sub = subscriber(project, "Q.burst", batch=100)
    ctx = zmq.Context()
    burst = ctx.socket(zmq.DEALER)
    try:
        burst.setsockopt(zmq.LINGER, 10000)
        burst.connect((project.run_dir / "endpoint").read_text().strip())
        burst.send_multipart([b"1", b"ping", msgpack.packb({"id": 1})])
        assert burst.poll(5000) and burst.recv_multipart()[1] == b"ok", "connected before the node stops"
        os.kill(node.pid, signal.SIGSTOP)
        try:
            for i in range(500):
                burst.send_multipart([b"1", b"emit", msgpack.packb({"id": i, "type": "q.burst", "body": i})])
        finally:
            os.kill(node.pid, signal.SIGCONT)
        # The burst stays open until everything came: with the node stopped, its small writes
        # can fill the socket's kernel buffer before all 500 are in, and closing then would
        # drop the rest at the linger (what made this test fail now and then under load).
        messages = deliveries(sub, 500)
        assert [e["body"] for m in messages for e in m] == list(range(500))
        assert len(messages) <= 50, f"{len(messages)} delivery messages for 500 events"
        assert wait_settled(c, group_named("Q.burst")) == 500
    finally:
        if not burst.closed:
            burst.close()
            ctx.term()
        sub.close()


def test_a_full_queue_slows_its_emitter_instead_of_dropping(project, client):
    """20 quiet emits of 1000 events into a group whose only member takes one at a time: the
    queue fills (10,000), the node pauses the emitter (its ping waits behind its emits) rather
    than drop, and once a second member drains the queue every event arrives, none dropped
    (before, everything past the queue's bound was dropped)."""
    up(project)
    c = client()
    slow = subscriber(project, "Q.full", batch=1, prefetch=1)
    fast = None
    try:
        for k in range(20):
            send(c.sock, "emit", {"id": k, "source": "test", "quiet": True,
                                  "events": [{"type": "q.full", "body": k * 1000 + i} for i in range(1000)]})
        send(c.sock, "ping", {"id": "after"})
        first = deliveries(slow, 1, ack=False)[0]
        watcher = client()

        def held_or_all_emitted():
            status = watcher.request("bus_status")[1]
            group = [g for g in status["groups"] if g["name"] == "Q.full"][0]
            return group.get("paused") or status["emitted"] == 20000
        wait_for(held_or_all_emitted, 30, "the node to pause the emitter or to take every event")
        fast = subscriber(project, "Q.full", batch=1000, prefetch=100000)
        rest = [e["body"] for m in deliveries(fast, 19999, timeout=60) for e in m]
        assert [e["body"] for e in first] + rest == list(range(20000)), "all of them, in order"
        slow.sock.send_multipart([b"1", b"ack", msgpack.packb({"delivery": first[0]["delivery"]})])
        assert c.sock.poll(10000), "the emitter's ping is answered once the queue has room"
        _, rtype, body = c.sock.recv_multipart()
        assert (rtype, msgpack.unpackb(body, raw=False)) == (b"ok", {"id": "after"}), "no reply to a quiet emit"
        assert wait_settled(c, group_named("Q.full")) == 20000
        status = c.request("bus_status")[1]
        assert (status["dropped"], [g["dropped"] for g in status["groups"] if g["name"] == "Q.full"]) == (0, [0])
    finally:
        slow.close()
        if fast:
            fast.close()


def test_a_member_holding_a_full_message_of_events_is_sent_full_messages_not_a_trickle(project, client):
    """Silly-window avoidance: a member that holds more than a full message's worth of unacked
    events (min(batch, prefetch / 2) = 4 here) is sent only full messages; one holding fewer
    gets what is queued at once. Before, single emits to a busy member with room each left as a
    message of their own, and a member whose prefetch filled that way kept getting one event
    per message."""
    up(project)
    c = client()
    sub = subscriber(project, "Q.trickle", batch=4, prefetch=8)
    held = []

    def emit(*bodies):
        for b in bodies:
            rtype, reply = c.request("emit", {"type": "q.t", "body": b})
            assert rtype == "ok", reply

    def next_messages(events):
        """The bodies of each delivery message, until `events` events came (held, not acked)."""
        messages = deliveries(sub, events, ack=False)
        held.extend(e["delivery"] for m in messages for e in m)
        return [[e["body"] for e in m] for m in messages]

    try:
        assert c.request("emit", {"events": [{"type": "q.t", "body": b} for b in range(4)]})[0] == "ok"
        assert next_messages(4) == [[0, 1, 2, 3]]
        emit(4)
        assert next_messages(1) == [[4]], "holding no more than a full message, it gets a lone event at once"
        emit(5, 6, 7, 8)
        # It holds five: the four wait for its ack (its room was 3), then leave as one message.
        send(sub.sock, "ack", {"deliveries": held[:4]})
        assert next_messages(4) == [[5, 6, 7, 8]]
        send(sub.sock, "ack", {"deliveries": held[4:]})
        assert wait_settled(c, group_named("Q.trickle")) == 9
    finally:
        sub.close()
