"""An instance's life as the node sees it: registered while it runs, gone from discover when it
exits (stopped or killed) and there again under its new pid once restarted; and an event whose
consumer is SIGKILLed before it acked is delivered again, marked redelivered, to a live one."""
import os
import signal
import socket
import uuid

import pytest

from harness import LANGS, REGISTRY_BACKENDS, other, pid_alive, svc, wait_for, with_tag


def _listens(endpoint):
    """Whether something accepts connections on a tcp://host:port endpoint."""
    host, _, port = endpoint[len("tcp://"):].rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.backends(*REGISTRY_BACKENDS)
@pytest.mark.parametrize("lang", LANGS)
def test_deregistered_when_stopped_or_killed_and_back_when_restarted(make_cluster, lang):
    """Also through the other client's discovery (its cache, with ZooKeeper): a Caller of the
    other language reaches both instances, then only what is left, then the restarted one."""
    c = make_cluster({"S": svc(lang, 2), "Caller": svc(other(lang), 1)})
    insts = c.wait_registered("S", 2)
    old = {i["instance"]: i for i in insts}

    def caller_reaches(n=4):
        """The pids n calls of Caller -> S.whoami reach (None for a failed call)."""
        got = [c.rpc("Caller.call", {"subject": "S.whoami", "timeout_ms": 2000}) for _ in range(n)]
        return {g.get("result", {}).get("pid") for g in got}
    assert caller_reaches() == {old[0]["pid"], old[1]["pid"]}

    r = c.project.cli("scale", "S", "1")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: [i["instance"] for i in c.instances("S")] == [0], 15, "S.1 gone from discover")
    assert not pid_alive(old[1]["pid"])
    if old[1]["endpoint"].startswith("ipc://"):  # a graceful stop leaves no RPC socket file behind
        sock_file = old[1]["endpoint"][len("ipc://"):]
        wait_for(lambda: not os.path.exists(sock_file), 10, f"{sock_file} removed")
    else:  # nor a listening port
        wait_for(lambda: not _listens(old[1]["endpoint"]), 10, f"{old[1]['endpoint']} closed")
    wait_for(lambda: caller_reaches() == {old[0]["pid"]}, 15, "the caller to reach S.0 alone")

    os.kill(old[0]["pid"], signal.SIGKILL)
    wait_for(lambda: all(i["pid"] != old[0]["pid"] for i in c.instances("S")), 15, "the killed S.0 gone from discover")
    (new,) = c.wait_registered("S", 1)
    assert new["instance"] == 0 and new["pid"] != old[0]["pid"] and new["identity"] != old[0]["identity"], new
    assert c.rpc("S.whoami", {})["pid"] == new["pid"]
    wait_for(lambda: caller_reaches() == {new["pid"]}, 15, "the caller to reach the restarted S.0")


@pytest.mark.backends("zookeeper")
@pytest.mark.parametrize("lang", LANGS)
def test_registered_again_after_its_session_expired(make_cluster, lang):
    """A process stalled past its ZooKeeper session (SIGSTOP here; a long GC pause or a
    suspended laptop elsewhere) loses its znode with the session; once it runs again it opens
    a new session and registers again, and a caller of the other client finds it again."""
    c = make_cluster({"S": svc(lang, 1), "Caller": svc(other(lang), 1)})
    (inst,) = c.wait_registered("S", 1)
    assert c.rpc("Caller.call", {"subject": "S.whoami"})["result"]["pid"] == inst["pid"]
    os.kill(inst["pid"], signal.SIGSTOP)
    try:
        wait_for(lambda: not c.registry.instances("S"), 15, "S's znode to go with its expired session")
    finally:
        os.kill(inst["pid"], signal.SIGCONT)
    (back,) = c.wait_registered("S", 1)
    assert back["pid"] == inst["pid"] and back["endpoint"] == inst["endpoint"], (back, inst)

    def reached():
        r = c.rpc("Caller.call", {"subject": "S.whoami", "timeout_ms": 2000})
        return r.get("result", {}).get("pid") == inst["pid"]
    wait_for(reached, 15, "the caller to reach S again")


@pytest.mark.backends("embedded", "rabbitmq")
@pytest.mark.parametrize("lang", LANGS)
def test_an_event_unacked_by_a_killed_consumer_is_redelivered(make_cluster, lang):
    """On RabbitMQ the broker gives the unacked delivery to the queue's other consumer."""
    c = make_cluster({"W": svc(lang, 2, "group:work:conf.work")})
    c.wait_subscribed("W", "work", 2)
    tag = uuid.uuid4().hex
    trace = uuid.uuid4().hex
    c.emit("conf.work", {"tag": tag, "hold": True}, trace_id=trace)
    (first,) = c.wait_reports(1, kind="event", match=with_tag(tag))
    assert first["redelivered"] is False and first["sub"] == "work"
    os.kill(first["pid"], signal.SIGKILL)  # it holds the event: no ack went out
    got = c.wait_reports(2, kind="event", match=with_tag(tag))
    again = got[1]
    assert again["redelivered"] is True and again["pid"] != first["pid"], again
    assert again["body"] == {"tag": tag, "hold": True} and again["event_trace_id"] == trace, again
    c.wait_drained(lambda g: g["name"] == "W.work")
    assert len(c.reports(kind="event", match=with_tag(tag))) == 2


@pytest.mark.backends("embedded", "rabbitmq")
@pytest.mark.parametrize("lang", LANGS)
def test_no_wait_events_are_all_sent_before_a_stop(make_cluster, lang):
    """Events emitted without waiting are never dropped: a service stopped right after it
    emitted 2000 of them has sent every one (it flushes and waits for the node's word)."""
    c = make_cluster({"E": svc(lang, 1), "Sink": svc(lang, 1, "group:sink:conf.flush")})
    c.wait_subscribed("Sink", "sink", 1)
    tag = uuid.uuid4().hex
    c.rpc("E.emit", {"type": "conf.flush", "body": {"tag": tag}, "count": 2000})
    r = c.project.cli("scale", "E", "0")
    assert r.returncode == 0, r.stderr
    c.wait_drained(lambda g: g["name"] == "Sink.sink")
    got = c.wait_reports(2000, kind="event", service="Sink", match=with_tag(tag))
    assert sorted(r["body"]["i"] for r in got) == list(range(2000))
