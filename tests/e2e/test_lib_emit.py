"""libdevnode's no-wait emits against the real node (issue 17): coalesced into quiet emits,
never dropped once accepted, kept in order with waited emits, sent by a caller's own loop when
devnode_timeout_ms says, and a refusal by the node named per event.

The emitters and the counting subscriber are tests/libhelpers/libemit.c (the normal build of
the library). Each event's body is {"n": i}; the counter says when it has seen as many as it
expects, how many came out of order (a duplicate is one too) and the sum of n, which names a
missing event."""
import re
import subprocess

import zmq

from conftest import DEVNODE, ROOT, wait_for
from demohelpers import wait_group_members

LIBEMIT = ROOT / "build" / "libhelpers" / "libemit"


def counter_config(expected, pattern="audit.#", streams="", stream=""):
    return f"""
instances:
    Counter:
        command: {LIBEMIT} count '{pattern}' {expected} {stream}
{streams}"""


def endpoint_of(project):
    return (project.run_dir / "endpoint").read_text().strip()


def publish(project, *args, timeout=60):
    env = project.node_env(DEVNODE_ENDPOINT=endpoint_of(project))
    return subprocess.run([str(LIBEMIT), "publish", *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def wait_counted(node, expected, timeout=30):
    pattern = rf"counted {expected} events, (\d+) out of order, sum (\d+)"

    def find():
        for r in node.records():
            m = r.get("service") == "Counter" and re.search(pattern, r["text"])
            if m:
                return int(m.group(1)), int(m.group(2))
        return None
    return wait_for(find, timeout, f"the counter to see {expected} events")


def start_counter(project, client, expected, **kw):
    project.write(counter_config(expected, **kw))
    node = project.up()
    c = client()
    wait_group_members(c, "Counter." + ("counter" if kw.get("stream") else kw.get("pattern", "audit.#")), 1)
    return node, c


def test_400000_nowait_emits_then_close_are_all_delivered_in_order(project, client):
    """Read through a retained stream: a group of new events holds 10,000 queued events and
    drops past that (docs/protocol.md), which one member cannot drain at the rate a plain loop
    emits; the stream keeps them all for it."""
    n = 400_000
    node, _ = start_counter(project, client, n, stream="audit.#",
                            streams="streams:\n    audit.#: {retain_events: 1000000}\n")
    r = publish(project, n)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == f"accepted {n} failed 0 close 0", r.stdout + r.stderr
    assert r.stderr == ""
    disorder, total = wait_counted(node, n)
    assert (disorder, total) == (0, n * (n - 1) // 2), "each event once, in the order emitted"


def test_queued_nowait_emits_go_before_a_waited_one(project, client):
    n = 1000
    node, _ = start_counter(project, client, n)
    # A linger of 1 s: the 999 no-wait events are still queued when the waited one is sent.
    r = publish(project, n, "--linger", 1_000_000, "--then-wait")
    assert r.stdout.strip() == f"accepted {n} failed 0 close 0", r.stdout + r.stderr
    assert wait_counted(node, n) == (0, n * (n - 1) // 2), "the waited event came last"


def test_an_emitter_with_its_own_loop_delivers_without_closing(project, client):
    n = 40
    node, _ = start_counter(project, client, n)
    env = project.node_env(DEVNODE_ENDPOINT=endpoint_of(project))
    proc = subprocess.Popen([str(LIBEMIT), "ownloop", str(n), "5"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        # It never closes and wakes only for its fds and devnode_timeout_ms: the last event
        # arrives only because the library asked to run within its linger.
        assert wait_counted(node, n) == (0, n * (n - 1) // 2)
        assert proc.poll() is None
    finally:
        proc.kill()
        out, err = proc.communicate(timeout=10)
    assert out == f"emitted {n}\n" and err == "", out + err


def node_names_refusals(project):
    """Whether the node answers a quiet emit with emit_refused (issue 17) or, as before, refuses
    the whole batch with an error."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        import msgpack
        sock.connect(endpoint_of(project))
        sock.send_multipart([b"1", b"emit", msgpack.packb({"id": 7, "source": "probe", "quiet": True,
                                                          "events": [{"type": "probe.*"}]})])
        assert sock.poll(5000), "no answer to a quiet emit of a bad event"
        _, rtype, _ = sock.recv_multipart()
        assert rtype in (b"emit_refused", b"error"), rtype
        return rtype == b"emit_refused"
    finally:
        sock.close()


def test_an_event_the_node_refuses_is_named_and_the_others_of_its_batch_delivered(project, client):
    """A retained stream on a nearly full disk (RLIMIT_FSIZE on the node): the 300 kB event
    does not fit in its journal, the small ones of the same coalesced batch do."""
    n, big = 10, 4
    project.write(counter_config(n - 1, pattern="audit.n", streams="streams:\n    audit.#: {}\n"))
    out = project.dir / "node-out.txt"
    with open(out, "wb") as f:
        proc = subprocess.Popen(["prlimit", "--fsize=200000", str(DEVNODE), "up", "--no-tui"], cwd=project.dir,
                                env=project.node_env(), stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: (project.run_dir / "endpoint").exists() and endpoint_of(project), 15, "the node's endpoint")
        c = client()
        wait_group_members(c, "Counter.audit.n", 1)
        per_event = node_names_refusals(project)
        r = publish(project, n, "--big", big, "--linger", 1_000_000)  # one batch of the ten
        warnings = [line for line in r.stderr.splitlines() if line.startswith("WARNING devnode:")]
        assert len(warnings) == 1, r.stderr
        assert re.search(r"(emit: )?cannot keep the event in stream audit\.#: (File too large|No space left on device)",
                         warnings[0]), warnings
        if per_event:
            assert warnings[0].startswith(f"WARNING devnode: the node refused event {big + 1} of {n} emitted "
                                          "without waiting (audit.big): "), warnings
            assert r.stdout.strip() == f"accepted {n} failed 0 close 1", r.stdout
            log = project.run_dir / "logs" / "devnode.jsonl"
            wait_for(lambda: f"counted {n - 1} events, 0 out of order, sum {n * (n - 1) // 2 - big}" in log.read_text(),
                     15, "the other nine events of the batch")
        else:
            # A node from before issue 17 refuses the batch at its bad event: all ten count.
            assert warnings[0].startswith(f"WARNING devnode: the node refused {n} event(s) emitted without "
                                          "waiting: "), warnings
            assert r.stdout.strip() == f"accepted {n} failed 0 close {n}", r.stdout
        assert r.returncode == 1
        assert proc.poll() is None
    finally:
        proc.send_signal(15)
        assert proc.wait(20) == 0
