"""Retained streams: a reader from the beginning gets every kept event in offset order, one
from an offset gets those from it on, and a named group that resumes gets what came while it
was gone and nothing it had acked. The writer is the other client (waited emits give offsets)."""
import pytest

from harness import LANGS, other, svc

STREAM = "conf.book.#"


def offsets_of(reports, pid=None):
    return [r["offset"] for r in reports if pid is None or r["pid"] == pid]


@pytest.mark.parametrize("lang", LANGS)
def test_read_from_the_beginning_an_offset_and_resume(make_cluster, lang):
    c = make_cluster({
        "Writer": svc(other(lang), 1),
        "Beg": svc(lang, 0, f"stream:beg:{STREAM}:beginning:broadcast"),
        "Off": svc(lang, 0, f"stream:off:{STREAM}:2"),
        "Res": svc(lang, 0, f"stream:res:{STREAM}:resume"),
    }, streams={STREAM: 1000})

    def write(n, start):
        sent = c.rpc("Writer.emit", {"type": "conf.book.added", "body": {"n": start}, "count": n, "wait": True})
        assert sent["offsets"] == list(range(start, start + n)), sent  # waited emits say their offsets
        return sent["trace_id"]

    def scale(service, count):
        r = c.project.cli("scale", service, str(count))
        assert r.returncode == 0, r.stderr

    def events(service, count):
        return c.wait_reports(count, kind="event", service=service)

    trace = write(5, 0)
    scale("Beg", 1)
    got = events("Beg", 5)
    assert offsets_of(got) == [0, 1, 2, 3, 4], [r["text"] for r in got]
    assert [r["body"]["i"] for r in got] == [0, 1, 2, 3, 4]
    assert all(r["type"] == "conf.book.added" and r["source"] == "Writer" and r["event_trace_id"] == trace
               and r["trace_id"] == trace for r in got), got

    scale("Off", 1)
    assert offsets_of(events("Off", 3)) == [2, 3, 4]

    # resume with nothing committed starts at the end; what comes then is read and acked
    scale("Res", 1)
    c.wait_members(lambda g: g["name"] == "Res.res", 1)
    write(2, 5)
    first = events("Res", 2)
    assert offsets_of(first) == [5, 6], [r["text"] for r in first]
    c.wait_settled(lambda g: g["name"] == "Res.res")
    assert [g["committed_offset"] for g in c.client.groups(lambda g: g["name"] == "Res.res")] == [7]
    scale("Res", 0)
    write(2, 7)  # while no member reads
    scale("Res", 1)
    got = events("Res", 4)
    assert offsets_of(got) == [5, 6, 7, 8], [r["text"] for r in got]
    assert got[2]["pid"] != first[0]["pid"]  # a new process took up where the group had acked

    # the readers still running keep reading new events in order
    assert offsets_of(events("Beg", 9)) == list(range(9))
    assert offsets_of(events("Off", 7)) == list(range(2, 9))

    # one connection's events reach the node in order, waited or not: three no-wait emits, then
    # a waited one, which the journal must hold after them
    nowait = c.rpc("Writer.emit", {"type": "conf.book.added", "body": "nowait", "count": 3})
    assert nowait["offsets"] == [None, None, None]
    waited = c.rpc("Writer.emit", {"type": "conf.book.added", "body": "waited", "wait": True})
    assert waited["offsets"] == [12], waited
    got = events("Beg", 13)[9:]
    assert [(r["offset"], r["body"]) for r in got] == [
        (9, {"i": 0, "body": "nowait"}), (10, {"i": 1, "body": "nowait"}), (11, {"i": 2, "body": "nowait"}),
        (12, "waited")], [r["text"] for r in got]
