"""Events: each event handled once per subscribing service and by every instance of a
broadcast subscription, waited and no-wait emits, delay, and the trace id carried from an RPC
handler's emit to the handlers and on through an event handler's own emit. Every emitter is
heard by both clients' subscribers (C -> C, C -> Python, Python -> C, Python -> Python)."""
import time
import uuid

import pytest

from harness import LANGS, NAME, NAMES, new_trace, svc, with_tag

# Events stay on the node's bus with a ZooKeeper registry too (docs/backends.md): the scenarios
# run there as well (cheap), so a registry change cannot quietly break them. On `rabbitmq` the
# events go through the broker (a vhost per cluster) and the waits read the broker's queues.
BACKENDS = ["embedded", "zookeeper", "rabbitmq"]

SUBS = "group:grp:conf.ev.# broadcast:all:conf.ev.# group:relayed:conf.relayed"
SERVICES = {NAME[lang]: svc(lang, 2, SUBS) for lang in LANGS}
CONSUMERS = NAMES
N = len(CONSUMERS)


def conf_groups(g):
    return g["name"] in [f"{n}.{sub}" for n in CONSUMERS for sub in ("grp", "relayed")] or \
        (g.get("broadcast") and "conf.ev.#" in g["patterns"])


@pytest.fixture(scope="module", autouse=True)
def subscribed(cluster):
    for name in CONSUMERS:
        cluster.wait_subscribed(name, "grp", 2)
        cluster.wait_subscribed(name, "relayed", 2)
        if cluster.events is not None:
            cluster.wait_subscribed(name, "all", 2, broadcast=True)
    if cluster.events is None:
        cluster.wait_members(lambda g: g.get("broadcast") and "conf.ev.#" in g["patterns"], 2 * N,
                             what="broadcast members")


def settled_reports(cluster, tag, expected):
    """The event reports of `tag` once `expected` of them are in the log and the bus has
    nothing queued or in flight, or the broker's queues are empty (so no redelivery can still
    add one)."""
    cluster.wait_reports(expected, kind="event", match=with_tag(tag))
    cluster.wait_drained(conf_groups)
    return cluster.reports(kind="event", match=with_tag(tag))


@pytest.mark.parametrize("wait", [False, True], ids=["nowait", "waited"])
@pytest.mark.parametrize("emitter", LANGS)
def test_once_per_service_and_broadcast_to_every_instance(cluster, emitter, wait):
    tag = uuid.uuid4().hex
    sent = cluster.rpc(f"{NAME[emitter]}.emit", {"type": "conf.ev.once", "body": {"tag": tag}, "count": 5,
                                                  "wait": wait})
    trace = sent["trace_id"]
    assert len(trace) >= 1 and sent["offsets"] == [None] * 5, sent  # no stream keeps conf.ev.*
    # 5 events x (a group per service + a broadcast member per instance)
    got = settled_reports(cluster, tag, 5 * 3 * N)
    assert len(got) == 5 * 3 * N, [r["text"] for r in got]
    for name in CONSUMERS:
        grp = sorted(r["body"]["i"] for r in got if r["service"] == name and r["sub"] == "grp")
        assert grp == [0, 1, 2, 3, 4], (name, grp)  # once per service, spread over its instances
        for inst in (0, 1):
            each = sorted(r["body"]["i"] for r in got if r["service"] == name and r["sub"] == "all"
                          and r["instance"] == inst)
            assert each == [0, 1, 2, 3, 4], (name, inst, each)  # broadcast: every instance
    for r in got:
        assert r["type"] == "conf.ev.once" and r["source"] == NAME[emitter], r
        assert r["event_trace_id"] == trace and r["headers"]["trace_id"] == trace, r
        assert r["trace_id"] == trace and r["log_trace_id"] == trace, r  # current in the handler
        assert r["redelivered"] is False and r["offset"] == -1, r
        assert r["body"]["body"] == {"tag": tag}


@pytest.mark.parametrize("wait", [False, True], ids=["nowait", "waited"])
@pytest.mark.parametrize("emitter", LANGS)
def test_a_delayed_event_comes_after_its_delay(cluster, emitter, wait):
    tag = uuid.uuid4().hex
    before_ns = time.time_ns()
    cluster.rpc(f"{NAME[emitter]}.emit", {"type": "conf.ev.later", "body": {"tag": tag}, "delay_ms": 800,
                                          "wait": wait})
    got = settled_reports(cluster, tag, 3 * N)
    assert len(got) == 3 * N, [r["text"] for r in got]
    for r in got:
        # the node got the emit after before_ns, so no handler can see it before the delay ran
        # (less the node's clock granularity: its timers count whole milliseconds)
        assert r["wall_ns"] >= before_ns + 800_000_000 - 2_000_000, (r["wall_ns"] - before_ns) / 1e6


@pytest.mark.parametrize("emitter", LANGS)
def test_the_trace_id_rides_an_emit_and_an_event_handlers_emit(cluster, emitter):
    """A request with trace T: the emit its handler makes carries T, the handlers of that event
    have T current, and the events they emit in turn (relay) carry T too; tail --trace T shows
    every one of those lines."""
    tag = uuid.uuid4().hex
    trace = new_trace()
    sent = cluster.rpc(f"{NAME[emitter]}.emit", {"type": "conf.ev.relay",
                                                  "body": {"tag": tag, "relay": "conf.relayed"}}, trace_id=trace)
    assert sent["trace_id"] == trace
    # 3N handlings of conf.ev.relay (N groups + 2N broadcast members), each relaying one
    # conf.relayed, each of those handled once by every service's `relayed` group
    got = settled_reports(cluster, tag, 3 * N + 3 * N * N)
    assert len(got) == 3 * N + 3 * N * N, [r["text"] for r in got]
    relayed = [r for r in got if r["type"] == "conf.relayed"]
    assert len(relayed) == 3 * N * N and {r["sub"] for r in relayed} == {"relayed"}
    assert {r["source"] for r in relayed} == set(CONSUMERS)
    for r in got:
        assert (r["event_trace_id"], r["trace_id"], r["log_trace_id"]) == (trace, trace, trace), r
    out, services = cluster.tail_trace(trace)
    assert services == set(CONSUMERS), out
    assert out.count("conformance event") == len(got) and "conformance rpc" in out, out


@pytest.mark.parametrize("emitter", LANGS)
def test_an_emit_the_node_would_refuse_is_refused_at_the_call(cluster, emitter):
    """A client checks what the node checks (a type of dot-separated words, 1-200 bytes, no * or
    #; a delay of at most a week) and refuses it at the call, waited or not (the error's type is
    the adapter's: the client's own word for a bad argument)."""
    for wait in (False, True):
        for bad in ("order.*", "order.#", "a.b*", "a..b", ".a", "x" * 201, ""):
            rtype, _, body = cluster.rpc_raw(f"{NAME[emitter]}.emit", {"type": bad, "body": 1, "wait": wait})
            assert rtype == "ERROR" and "BadArguments" != body["type"], (bad, wait, body)
        rtype, _, body = cluster.rpc_raw(f"{NAME[emitter]}.emit", {"type": "conf.x", "delay_ms": 8 * 86400 * 1000,
                                                                    "wait": wait})
        assert rtype == "ERROR", body


@pytest.mark.parametrize("emitter", LANGS)
def test_any_type_the_node_takes_is_emitted_and_handled(cluster, emitter):
    """The node's words are anything but '.': a type with a space or non-ASCII letters goes
    through either client, both ways."""
    tag = uuid.uuid4().hex
    for wait in (False, True):
        cluster.rpc(f"{NAME[emitter]}.emit", {"type": "conf.ev.größe wert", "body": {"tag": tag}, "wait": wait})
    got = settled_reports(cluster, tag, 2 * 3 * N)
    assert len(got) == 2 * 3 * N and {r["type"] for r in got} == {"conf.ev.größe wert"}, [r["text"] for r in got]


def test_an_events_trace_id_is_folded_and_cut_as_a_requests(cluster):
    for sent, current in (("order 17/b", "order_17_b"), ("t" * 80, "t" * 64)):
        tag = uuid.uuid4().hex
        cluster.emit("conf.ev.traced", {"tag": tag}, trace_id=sent)
        got = settled_reports(cluster, tag, 3 * N)
        assert {(r["event_trace_id"], r["trace_id"], r["log_trace_id"]) for r in got} == {(current,) * 3}, got


@pytest.mark.parametrize("emitter", LANGS)
def test_an_event_given_back_comes_again_redelivered(cluster, emitter):
    tag = uuid.uuid4().hex
    cluster.rpc(f"{NAME[emitter]}.emit", {"type": "conf.ev.back", "body": {"tag": tag, "nack": True}})
    got = settled_reports(cluster, tag, 2 * 3 * N)
    assert len(got) == 2 * 3 * N, [r["text"] for r in got]
    for name in CONSUMERS:
        for sub, members in (("grp", [None]), ("all", [0, 1])):
            for inst in members:
                mine = [r["redelivered"] for r in got if r["service"] == name and r["sub"] == sub
                        and (inst is None or r["instance"] == inst)]
                assert mine == [False, True], (name, sub, inst, mine)
