"""Unit tests of the Python client's pure parts (no node): what a print() line becomes, the
checks made before anything is sent, and how refusals and remote errors read. The behaviour
against the node is tested end to end in tests/e2e/test_python*.py.
Run: /usr/bin/python3 -m pytest -q clients/python/tests"""
import io
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import devnode  # noqa: E402
from devnode import trace  # noqa: E402
from devnode.core import Core, Method, valid_event_type, valid_pattern  # noqa: E402
from devnode.interface import _method_of  # noqa: E402


def test_print_lines_carry_the_current_trace_id_and_threads_do_not_mix():
    raw = io.StringIO()
    out = trace.TraceStdout(raw)
    with trace.traced("abc"):
        out.write("Saying hi")
        out.write(" to joe\nsecond line\npartial")
    out.write("no trace\n")  # this thread's partial line is still pending: its own buffer
    assert raw.getvalue() == "Saying hi to joe trace_id=abc\nsecond line trace_id=abc\npartialno trace\n"

    raw = io.StringIO()
    out = trace.TraceStdout(raw)

    def worker(tid):
        with trace.traced(tid):
            for i in range(200):
                out.write("line %d of " % i)
                out.write(tid + "\n")

    threads = [threading.Thread(target=worker, args=(t,)) for t in ("t1", "t2", "t3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = raw.getvalue().splitlines()
    assert len(lines) == 600
    for line in lines:
        tid = line.rsplit("trace_id=", 1)[1]
        assert line.startswith("line ") and line.endswith("of %s trace_id=%s" % (tid, tid)), line


def test_a_line_that_names_a_trace_is_left_alone():
    raw = io.StringIO()
    out = trace.TraceStdout(raw)
    with trace.traced("abc"):
        out.write("INFO x: y trace_id=abc\n")
    assert raw.getvalue() == "INFO x: y trace_id=abc\n"


def test_trace_ids_are_sanitized_as_the_node_indexes_them():
    assert trace.sanitize("ab c/d") == "ab_c_d"
    assert trace.sanitize("None") == ""
    assert trace.sanitize(None) == ""
    assert len(trace.sanitize("x" * 100)) == 64
    assert len(trace.new_trace_id()) == 32


def test_event_types_and_patterns():
    assert valid_event_type("greeted") and valid_event_type("order.created")
    for bad in ("", "a..b", "a.*", "a.#", "a.b*", "x" * 201, "é" * 101, ".a", "a.", None, 3):
        assert not valid_event_type(bad), bad
    assert valid_pattern("order.*") and valid_pattern("#") and not valid_pattern("a..b")
    # the node's words are anything but '.': C services and the CLI emit these
    for good in ("bestellung.größe", "user signed-up", "x" * 200):
        assert valid_event_type(good) and valid_pattern(good), good
    assert not valid_pattern("a.b*") and valid_pattern("bestellung.*")


def test_method_arguments_follow_the_signature():
    class G(devnode.Interface):
        @devnode.rpc()
        def greet(self, name, greeting="Hi"):
            """Returns a greeting.

            More text."""

    m = _method_of("greet", G().greet, None)
    assert (m.params, m.optional, m.help) == (["name", "greeting"], {"greeting"}, "Returns a greeting.")
    assert m.check({"name": "x"}) is None
    assert m.check({}) == "greet() is missing the argument 'name'"
    assert m.check({"name": "x", "nom": 1}) == "greet() got an unexpected argument 'nom'"
    assert Method("any", None, [], any_kwargs=True).check({"a": 1}) is None


def test_remote_errors_keep_the_callee_type():
    e = devnode.RemoteError.of("ValueError")("bad name", "ValueError")
    assert isinstance(e, devnode.RemoteError.ValueError) and (e.type, e.message) == ("ValueError", "bad name")
    assert str(e) == "ValueError: bad name"
    assert not isinstance(e, devnode.RemoteError.KeyError)


def test_emit_is_refused_before_queueing(tmp_path):
    core = Core("ipc://%s/nobody.sock" % tmp_path, "Svc", serve=False)  # never sent: nothing listens
    try:
        for bad in ("a.*", ""):
            try:
                core.emit_nowait(bad, {})
            except devnode.InvalidArgument:
                pass
            else:
                raise AssertionError(bad)
        try:
            core.emit_nowait("ok", object())
        except devnode.InvalidArgument as e:
            assert "cannot be encoded" in str(e)
        try:
            core.emit_nowait("ok", {}, delay_ms=-1)
        except devnode.InvalidArgument as e:
            assert "delay" in str(e)
    finally:
        core.close()


def test_a_refusal_is_one_line_naming_the_event():
    core = Core(None, "Svc", serve=False)
    said = []
    core.on_warning = said.append
    try:
        core._quiet[7] = ["book.added", "book.lent"]
        core._on_refused({"id": 7, "events": 2, "refused": [{"index": 1, "type": None, "message": "journal full"}]})
        assert said == ["the node refused the event book.lent emitted without waiting (2 of 2 in one emit): "
                        "journal full"]
        core._quiet[8] = ["a", "b"]
        core._on_reply("error", {"id": 8, "message": "emit: event 1 of 2: headers must be a map"})
        assert said[-1].startswith("the node refused 2 event(s) emitted without waiting (a, b): emit: event 1")
        core._on_reply("ok", {"id": 9, "events": 3})  # a node without quiet emits answers ok: nothing to say
        assert len(said) == 2
    finally:
        core.close()


def test_a_stream_offset_goes_as_an_integer():
    """The node takes `from` as an integer offset or a word; "2" (a string) it refuses."""
    from devnode.core import Subscription
    req = Subscription("s1", ["book.#"], "Shelf.on_book", None, stream="book.#", start="2").request(1)
    assert req["from"] == 2 and isinstance(req["from"], int)
    for word in ("beginning", "now", "resume"):
        assert Subscription("s1", ["book.#"], "g", None, stream="book.#", start=word).request(1)["from"] == word
