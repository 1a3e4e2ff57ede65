"""Retained streams and the bookshelf example (issue 8), end to end: the journal survives node
restarts (clean and SIGKILL) with every acknowledged event kept once; a corrupt or torn tail is
cut back to the last whole record and reported; a named group resumes at its committed offset
after its consumer is SIGKILLed (and after the node is); and examples/bookshelf (Shelf x2,
LastRead x2 on a shared socket) runs as its README says: commands through `devnode request`,
the view over HTTP, trace ids from the edge into the view, and a restart that rebuilds the view
exactly from the journal without ever answering from half of it."""
import json
import os
import re
import signal
import struct
import threading
import uuid

import pytest

from bookhelpers import (CONSUMER_GROUP, StreamReader, bookshelf_config, bus_group, consumer_log,
                         consumer_service, events_json, offsets_file, request, segments, stream_config)
from conftest import pid_alive, wait_for
from demohelpers import RawRPC, free_port, http_get, wait_lines, wait_registered


def emit_books(client, first, count):
    """Emits book.added {n} for n in first..first+count-1; returns the offsets the node gave."""
    return [client.emit("book.added", {"n": n, "title": f"t{n}"}, trace_id=f"tr-{n}")["offset"]
            for n in range(first, first + count)]


def assert_journal(events, count):
    """Exactly `count` events, offsets 0..count-1, each the book.added {n: offset} emitted."""
    assert [e["offset"] for e in events] == list(range(count))
    assert [e["body"]["n"] for e in events] == list(range(count))
    assert all(e["type"] == "book.added" and e["headers"]["trace_id"] == f"tr-{e['offset']}" for e in events)


# ---------------------------------------------------------------- the journal

def test_journal_survives_node_restarts_with_nothing_lost_or_doubled(project, client):
    project.write(stream_config())
    node = project.up()
    c = client()
    assert emit_books(c, 0, 200) == list(range(200))  # an emit is acked once the journal has it
    assert c.emit("other.event", {})["offset"] is None  # not retained: no offset
    c.close()
    node.stop()

    # Read from the files with no node running, then replayed by a fresh node.
    assert_journal(events_json(project), 200)
    node = project.up()
    node.wait_node_line(r"stream book\.#: events 0\.\.200 retained")
    reader = StreamReader(project, "beginning")
    assert_journal(reader.read(200), 200)
    reader.close()

    # SIGKILL right after acknowledged emits: write(2) happened before each ack, so all stay.
    c = client()
    assert emit_books(c, 200, 50) == list(range(200, 250))
    os.killpg(node.pid, signal.SIGKILL)
    node.wait_exit()
    node = project.up()
    reader = StreamReader(project, "beginning")
    assert_journal(reader.read(250), 250)
    reader.close()
    c = client()
    assert emit_books(c, 250, 1) == [250]  # offsets go on, never reused
    tail = events_json(project, "--from", "240")
    assert [e["offset"] for e in tail] == list(range(240, 251))
    assert not node.node_lines("torn or corrupt")


@pytest.mark.parametrize("damage", ["torn_record", "flipped_byte"])
def test_a_corrupt_journal_tail_is_cut_to_the_last_whole_record(project, client, damage):
    project.write(stream_config())
    node = project.up()
    c = client()
    assert emit_books(c, 0, 30) == list(range(30))
    c.close()
    node.stop()
    seg = segments(project)[-1]
    size = seg.stat().st_size
    if damage == "torn_record":
        # What a node killed in the middle of a write leaves: a header and part of its payload.
        torn = struct.pack("<IIQ", 100, 0xDEADBEEF, 30) + b"\x93" * 40
        with open(seg, "ab") as f:
            f.write(torn)
        cut, kept = len(torn), 30
    else:
        # A byte of the last record's payload rots: its CRC no longer holds, so it goes.
        with open(seg, "r+b") as f:
            f.seek(size - 3)
            byte = f.read(1)
            f.seek(size - 3)
            f.write(bytes([byte[0] ^ 0xFF]))
        last = events_json(project)  # read-only: sees the damage, cuts nothing
        assert [e["offset"] for e in last] == list(range(29))
        kept = 29

    node = project.up()
    line = node.wait_node_line(r"stream book\.#: journal had a torn or corrupt tail")
    m = re.search(r"cut (\d+) bytes; (\d+) events kept", line["text"])
    assert m, line["text"]
    assert int(m.group(2)) == kept and line["level"] == "warning", line
    if damage == "torn_record":
        assert int(m.group(1)) == cut and seg.stat().st_size == size  # back to the whole records
    else:
        assert 16 < int(m.group(1)) < 200 and seg.stat().st_size == size - int(m.group(1))  # the last record

    # It serves: status answers, whole records are all there, new events get the next offsets.
    assert node.status()["node"]["pid"] == node.pid
    c = client()
    assert emit_books(c, kept, 2) == [kept, kept + 1]
    assert_journal(events_json(project), kept + 2)
    reader = StreamReader(project, "beginning")
    assert_journal(reader.read(kept + 2), kept + 2)
    reader.close()


def test_a_named_group_resumes_at_its_committed_offset_after_crashes(project, client):
    log, ack = project.dir / "consumer.log", project.dir / "ack_below"
    ack.write_text("8\n")
    project.write(stream_config(*consumer_service(log, ack)))
    node = project.up()
    node.wait_running("Audit", 1)
    c = client()
    wait_for(lambda: bus_group(c, CONSUMER_GROUP), 10, "the consumer to subscribe")
    assert emit_books(c, 0, 20) == list(range(20))

    # It acks 0..7 and holds 8..11 (prefetch 4) unacked: the group's committed offset is 8.
    wait_for(lambda: [o for _, o, _ in consumer_log(log)] == list(range(12)), 10,
             lambda: f"the first consumer to get 0..11; log {consumer_log(log)}")
    wait_for(lambda: bus_group(c, CONSUMER_GROUP)["committed_offset"] == 8, 10, "committed offset 8")
    first_pid = consumer_log(log)[0][0]

    # SIGKILL, then the supervisor starts it again: it gets 8.. (8..11 again, as redelivered),
    # never anything before 8.
    ack.write_text("17\n")
    os.kill(first_pid, signal.SIGKILL)
    wait_for(lambda: len({p for p, _, _ in consumer_log(log)}) == 2 and
             [o for p, o, _ in consumer_log(log) if p != first_pid] == list(range(8, 20)), 15,
             lambda: f"the restarted consumer to get 8..19 once each; log {consumer_log(log)}")
    second = [(o, r) for p, o, r in consumer_log(log) if p != first_pid]
    assert all(r for o, r in second if o < 12) and not any(r for o, r in second if o >= 12), second
    wait_for(lambda: bus_group(c, CONSUMER_GROUP)["committed_offset"] == 17, 10, "committed offset 17")
    # Offsets are saved every 200 ms: wait for the file, then kill the node without a goodbye.
    wait_for(lambda: offsets_file(project).get(CONSUMER_GROUP) == 17, 10, "the saved offset 17")
    c.close()
    os.killpg(node.pid, signal.SIGKILL)
    node.wait_exit()
    wait_for(lambda: not any(pid_alive(p) for p, _, _ in consumer_log(log)), 10, "the consumers to die")

    # A new node and a new consumer: the group resumes at 17 from the offsets file.
    ack.write_text("1000\n")
    before = len(consumer_log(log))
    node = project.up()
    c = client()
    wait_for(lambda: [o for _, o, _ in consumer_log(log)[before:]] == [17, 18, 19], 15,
             lambda: f"the consumer to resume at 17; log {consumer_log(log)[before:]}")
    assert emit_books(c, 20, 3) == [20, 21, 22]
    wait_for(lambda: [o for _, o, _ in consumer_log(log)[before:]] == list(range(17, 23)), 10,
             lambda: f"the consumer to go on with 20..22; log {consumer_log(log)[before:]}")
    wait_for(lambda: bus_group(c, CONSUMER_GROUP)["committed_offset"] == 23, 10, "committed offset 23")


# ---------------------------------------------------------------- the bookshelf example

@pytest.fixture
def shelf(project, client):
    port = free_port()
    project.write(bookshelf_config(port))
    node = project.up()
    node.wait_running("Shelf", 2)
    node.wait_running("LastRead", 2)
    c = client()
    wait_registered(c, "Shelf", 2)
    wait_registered(c, "LastRead", 2)
    return node, port, c


def last_read(port, trace_id=None):
    status, body, headers = http_get(port, "/last-read", {"X-Trace-Id": trace_id} if trace_id else None)
    assert status == 200, (status, body)
    assert headers["content-type"] == "application/json"
    return json.loads(body), headers


def test_bookshelf_commands_view_and_one_trace_from_request_to_view(shelf, project):
    node, port, _ = shelf
    assert last_read(port)[0] == []
    books = [("Dune", "Frank Herbert"), ("Emma", "Jane Austen"), ("Ulysses", "James Joyce"),
             ("Walden", "Henry David Thoreau"), ("Beloved", "Toni Morrison"), ("Middlemarch", "George Eliot")]
    for i, (title, author) in enumerate(books):
        assert request(project, "Shelf.add_book", {"title": title, "author": author}) == \
            (0, {"title": title, "author": author, "offset": i})

    # Commands that do not fit are refused before anything is emitted.
    refused = [({"title": "", "author": "x"}, "ValueError: title must not be empty"),
               ({"title": "x" * 201, "author": "x"}, "ValueError: title must be at most 200 bytes"),
               ({"title": "A\nB", "author": "x"}, "ValueError: title must not hold control characters"),
               ({"title": "Dune", "author": 7}, "ValueError: author must be a string"),
               ({"title": "Dune"}, "BadArguments")]
    for args, why in refused:
        rc, err = request(project, "Shelf.add_book", args)
        assert rc == 1 and why in err, (args, err)
    rc, err = request(project, "Shelf.read_book", {"title": "Nope"})
    assert (rc, err) == (1, "devnode: Shelf.read_book failed: ValueError: no book titled 'Nope' on the shelf")
    assert len(events_json(project)) == len(books)

    # Reading: each read is a book.read the view puts first; a book read again moves up.
    for title in ["Dune", "Emma", "Ulysses", "Walden", "Beloved", "Middlemarch", "Emma"]:
        rc, reply = request(project, "Shelf.read_book", {"title": title}, "--trace-id", f"read-{title}")
        assert rc == 0 and reply["title"] == title and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z",
                                                                    reply["read_at"]), reply
    end = len(books) + 7
    # Both LastRead instances keep the view; the shared socket may hand us either.
    for _ in range(4):
        view, headers = wait_for(lambda: (lambda v: v if v[1]["x-stream-offset"] == str(end - 1) else None)(
            last_read(port)), 10, "the view to have every event")
        assert [(b["title"], b["author"]) for b in view] == [
            ("Emma", "Jane Austen"), ("Middlemarch", "George Eliot"), ("Beloved", "Toni Morrison"),
            ("Walden", "Henry David Thoreau"), ("Ulysses", "James Joyce")]
    read_at = {e["body"]["title"]: e["body"]["read_at"] for e in events_json(project, "book.read")}
    assert all(b["read_at"] == read_at[b["title"]] for b in view)

    # One trace from `devnode request --trace-id` through Shelf and the event into the view.
    (shelf_line,) = wait_lines(node, 1, service="Shelf", trace_id="read-Beloved")
    assert shelf_line["text"] == "INFO Read 'Beloved' by Toni Morrison at offset 10 trace_id=read-Beloved"
    views = wait_lines(node, 2, service="LastRead", trace_id="read-Beloved")
    assert {r["instance"] for r in views} == {0, 1}
    assert all(r["text"].startswith("INFO book.read 'Beloved' by Toni Morrison at offset 10") for r in views)
    r = project.cli("tail", "--trace", "read-Beloved")
    assert r.returncode == 0 and "Shelf." in r.stdout and r.stdout.count("LastRead.") == 2, r.stdout

    # ... and from the HTTP edge: the client's X-Trace-Id is answered and logged.
    view, headers = last_read(port, "edge-trace-1")
    assert headers["x-trace-id"] == "edge-trace-1"
    (edge,) = wait_lines(node, 1, service="LastRead", trace_id="edge-trace-1")
    assert edge["text"] == f"INFO GET /last-read 200: 5 books as of offset {end - 1} trace_id=edge-trace-1"
    assert http_get(port, "/nope")[0] == 404


def test_an_add_on_one_shelf_is_readable_at_once_on_the_other(shelf, project):
    """Read-your-writes across instances: read_book catches up with the stream before it says
    a title is unknown, so an add through Shelf.0 is never refused by Shelf.1 a moment later."""
    node, port, c = shelf
    endpoints = {i["instance"]: i["endpoint"] for i in wait_registered(c, "Shelf", 2)}
    one, other = RawRPC(endpoints[0]), RawRPC(endpoints[1])
    try:
        for i in range(40):
            a, b = (one, other) if i % 2 == 0 else (other, one)
            rtype, _, reply = a.request("Shelf.add_book", {"title": f"Book {i}", "author": "A"})
            assert rtype == "REP", reply
            rtype, _, reply = b.request("Shelf.read_book", {"title": f"Book {i}"})
            assert rtype == "REP" and reply["title"] == f"Book {i}", reply
    finally:
        one.close()
        other.close()


def test_restart_rebuilds_the_view_exactly_and_never_answers_half_built(shelf, project):
    node, port, c = shelf
    for i in range(8):
        assert request(project, "Shelf.add_book", {"title": f"Book {i}", "author": f"Author {i}"})[0] == 0
    # A longer journal (so the replay takes a while): book.read events straight to the node.
    for i in range(3000):
        c.emit("book.read", {"title": f"Book {i % 8}", "author": f"Author {i % 8}",
                             "read_at": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z"})
    rc, reply = request(project, "Shelf.read_book", {"title": "Book 3"})
    assert rc == 0
    end = reply["offset"]
    before, headers = wait_for(lambda: (lambda v: v if v[1]["x-stream-offset"] == str(end) else None)(
        last_read(port)), 10, "the view to have every event")
    assert before[0]["title"] == "Book 3" and len(before) == 5
    old_pids = {i["pid"] for i in node.service("LastRead")["instances"]}

    # Ask all through the rolling restart: every answer is the whole view, never a part of it,
    # and no request fails (the shared socket stays open; each connection is answered).
    answers, failures, stop = [], [], threading.Event()

    def ask():
        while not stop.is_set():
            try:
                answers.append(last_read(port))
            except Exception as exc:  # reported by the test thread, with what failed
                failures.append(repr(exc))
    asker = threading.Thread(target=ask)
    asker.start()
    try:
        r = project.cli("restart", "LastRead")
        assert r.returncode == 0, r.stderr
        wait_for(lambda: (lambda insts: len(insts) == 2 and not {i["pid"] for i in insts} & old_pids and
                          all(i["state"] == "running" for i in insts))(node.service("LastRead")["instances"]),
                 20, "both LastRead instances to be replaced")
        node.wait_node_line(r"rolling restart of LastRead done")
    finally:
        stop.set()
        asker.join(30)
    assert not failures, failures[:3]
    assert answers and all(v == before and h["x-stream-offset"] == str(end) for v, h in answers), \
        [(v[:1], h["x-stream-offset"]) for v, h in answers if v != before][:3]
    rebuilt = wait_lines(node, 2, service="LastRead", pattern=rf"rebuilt from {end + 1} events \(to offset {end}\)")
    assert {r["pid"] for r in rebuilt} & old_pids == set()
    for _ in range(4):  # either new instance
        view, headers = last_read(port)
        assert view == before and headers["x-stream-offset"] == str(end)

    # The shelf rebuilds too: after a restart it still knows every title.
    r = project.cli("restart", "Shelf")
    assert r.returncode == 0, r.stderr
    node.wait_running("Shelf", 2)
    wait_registered(c, "Shelf", 2)
    for i in range(8):
        rc, reply = request(project, "Shelf.read_book", {"title": f"Book {i}"}, "--trace-id", uuid.uuid4().hex)
        assert rc == 0 and reply["author"] == f"Author {i}", reply
