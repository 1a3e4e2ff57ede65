"""When a tail subscription expires: as the registry and the bus judge silence, a `tail_renew`
still on its way into the node (behind the client's own paused emits, or in the socket while
the node itself was stopped) is not late, and any message on the connection shows the client
alive. Before, the node dropped such followers on its own clock (docs/protocol.md, tail_renew)."""
import os
import signal
import time

from conftest import wait_for
from demohelpers import NodeClient
from tailhelpers import RawClient

BETA_SH = 'for i in 1 2 3; do echo "beta line $i"; done; exec sleep 1000\n'
CONFIG = """\
instances:
    Beta:
        command: sh beta.sh
"""
EXPIRY_S = 5.0  # PROTO_TAIL_EXPIRY_MS


def follow_beta(project, node, sub_id):
    node.wait_log(lambda r: r["text"] == "beta line 3")
    client = RawClient(project)
    client.send("tail", {"id": sub_id, "backlog": 0, "follow": True, "services": ["Beta"]})
    type_, first = client.recv()
    assert (type_, first) == ("lines", {"id": sub_id, "lines": [], "skipped": 0}), "subscribed"
    return client


def replies_until_ping(client, ping_id, timeout=30.0):
    """Every message the node sent this client before it answered a ping sent now: the node
    handles a connection's messages in order, so it has handled all that came before."""
    client.send("ping", {"id": ping_id})
    got = []
    deadline = time.monotonic() + timeout
    while True:
        type_, body = client.recv(max(0.01, deadline - time.monotonic()))
        if type_ == "ok" and body.get("id") == ping_id:
            return got
        got.append((type_, body))


def assert_still_following(project, node, client, sub_id, received):
    """The subscription answers renews without an error and still gets Beta's new lines."""
    client.send("tail_renew", {"id": sub_id, "received": received})
    errors = [m for m in replies_until_ping(client, 9999) if m[0] == "error"]
    assert errors == [], "the follower was dropped while it kept renewing"
    assert node.cli("restart", "Beta").returncode == 0
    texts = []

    def more_lines():
        type_, body = client.recv(10)
        assert type_ == "lines" and body["id"] == sub_id, (type_, body)
        texts.extend(line["text"] for line in body["lines"])
        return "beta line 3" in texts
    wait_for(more_lines, 20, "Beta's lines after its restart")
    assert texts == ["beta line 1", "beta line 2", "beta line 3"]


def test_a_follower_is_kept_when_the_node_was_stopped_longer_than_the_expiry(project):
    """The node is stopped (SIGSTOP) longer than the expiry while the follower renews every half
    second. When it runs again its expiry timer fires before its socket has the renews queued
    meanwhile: the node's own late loop must not count as the client's silence."""
    project.write(CONFIG, {"beta.sh": BETA_SH})
    node = project.up()
    client = follow_beta(project, node, 1)
    try:
        assert replies_until_ping(client, 1) == []
        os.kill(node.pid, signal.SIGSTOP)
        try:
            stopped = time.monotonic()
            renews = 0
            # The fault itself: the node stays stopped this long; the client renews meanwhile.
            while time.monotonic() - stopped < EXPIRY_S + 1.5:
                client.send("tail_renew", {"id": 1, "received": 1})
                renews += 1
                time.sleep(0.5)
        finally:
            os.kill(node.pid, signal.SIGCONT)
        errors = [m for m in replies_until_ping(client, 2) if m[0] == "error"]
        assert errors == [], f"{len(errors)} of the {renews} renews sent while the node was stopped were refused"
        assert_still_following(project, node, client, 1, 1)
    finally:
        client.close()


def test_a_follower_whose_renews_wait_behind_its_own_paused_emits_is_kept(project):
    """The follower's connection also emits into a full queue, so the node pauses it and keeps
    its later messages, renews included, unhandled for the 5 s the bus holds an emitter. The
    renews reached the node in time: the subscription must not expire meanwhile."""
    project.write(CONFIG, {"beta.sh": BETA_SH})
    node = project.up()
    slow = NodeClient(project)
    rtype, reply = slow.request("subscribe", {"subscription": "s1", "patterns": ["q.#"], "group": "Q.full",
                                              "broadcast": False, "pid": os.getpid(), "prefetch": 1, "batch": 1})
    assert rtype == "ok", reply
    client = follow_beta(project, node, 1)
    watcher = NodeClient(project)
    try:
        assert replies_until_ping(client, 1) == []
        # The fault: the subscription's last handled renew is 1.5 s old when the emitter is
        # paused, so on the node's clock it would lapse before the bus lets the emitter go.
        time.sleep(1.5)
        for k in range(15):
            client.send("emit", {"id": 100 + k, "source": "test", "quiet": True,
                                 "events": [{"type": "q.full", "body": k * 1000 + i} for i in range(1000)]})

        def paused():
            status = watcher.request("bus_status")[1]
            return [g for g in status["groups"] if g["name"] == "Q.full"][0].get("paused")
        wait_for(paused, 30, "the node to pause the follower's connection on the full queue")
        held = time.monotonic()
        while time.monotonic() - held < EXPIRY_S + 1.5:
            client.send("tail_renew", {"id": 1, "received": 1})
            time.sleep(0.5)
        errors = [m for m in replies_until_ping(client, 2) if m[0] == "error"]
        assert errors == [], f"{len(errors)} renews refused: the subscription expired while they waited"
        assert_still_following(project, node, client, 1, 1)
    finally:
        client.close()
        watcher.close()
        slow.close()
