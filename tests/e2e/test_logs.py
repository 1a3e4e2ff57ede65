"""The log path through real pipes: the JSON-lines file (framing, bursts, trace ids, rotation)
and the plain/coloured terminal output."""
import json
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from conftest import BURST, DEVNODE, Node, wait_for
from tailhelpers import Pty

TIME_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
SGR_RE = re.compile(r"\x1b\[[0-9;]*m")


def check_record_shape(rec):
    assert TIME_RE.match(rec["time"]), rec
    assert isinstance(rec["seq"], int) and rec["seq"] > 0
    assert isinstance(rec["service"], str) and isinstance(rec["instance"], int)
    assert isinstance(rec["pid"], int) and rec["pid"] > 0
    assert rec["stream"] in ("stdout", "stderr", "node")
    assert isinstance(rec["text"], str)
    for flag in ("split", "unterminated"):
        assert rec.get(flag, True) is True, f"{flag} is only ever present as true: {rec}"


# ---------------------------------------------------------------- burst

BURST_LINE = re.compile(
    rb'^\{"time":"[^"]+","seq":(\d+),"service":"Burst","instance":(\d+),"pid":(\d+),'
    rb'"stream":"stdout","text":"burst (\d+) (\d+) (p*)"\}$')


def test_burst_of_1_6_million_lines_arrives_complete_and_in_order(project):
    n_inst, n_lines = 8, 200000
    project.write(f"""\
instances:
    Burst:
        command: exec {BURST} {n_lines} $DEVNODE_INSTANCE
        numprocesses: {n_inst}
        restart: never
logs: {{file_max_mb: 4000}}
""")
    node = project.up(stdout_path=os.devnull, wait=False)
    path = project.run_dir / "logs" / "devnode.jsonl"

    expected_k = [0] * n_inst
    pids = [None] * n_inst
    state = {"offset": 0, "partial": b"", "burst": 0, "last_seq": 0, "other": 0}
    errors = []

    def consume(line):
        m = BURST_LINE.match(line)
        if m:
            seq, inst, pid, tag, k = (int(g) for g in m.group(1, 2, 3, 4, 5))
            text_len = len(f"burst {tag} {k} ") + len(m.group(6))
        else:
            # Slow path: same facts through a real JSON parser (key order is not a contract).
            rec = json.loads(line)
            seq = rec["seq"]
            if rec.get("service") != "Burst" or rec.get("stream") != "stdout":
                state["other"] += 1
                return seq
            parts = rec["text"].split(" ")
            if len(parts) != 4 or parts[0] != "burst" or set(parts[3]) - {"p"} or "split" in rec \
                    or "unterminated" in rec:
                errors.append(f"torn or malformed burst line: {line[:200]!r}")
                return seq
            inst, pid, tag, k, text_len = rec["instance"], rec["pid"], int(parts[1]), int(parts[2]), len(rec["text"])
        if tag != inst or not 0 <= inst < n_inst:
            errors.append(f"line of instance {tag} logged as instance {inst}")
            return seq
        if pids[inst] is None:
            pids[inst] = pid
        elif pids[inst] != pid:
            errors.append(f"instance {inst} changed pid {pids[inst]} -> {pid}")
        if k != expected_k[inst]:
            errors.append(f"instance {inst}: got k={k}, expected {expected_k[inst]} (lost, duplicated or reordered)")
        expected_k[inst] = k + 1
        if text_len != 64:
            errors.append(f"instance {inst} k={k}: text is {text_len} bytes, expected 64")
        state["burst"] += 1
        return seq

    def read_more():
        try:
            with open(path, "rb") as f:
                f.seek(state["offset"])
                data = f.read(64 << 20)
        except FileNotFoundError:
            return False
        state["offset"] += len(data)
        lines = (state["partial"] + data).split(b"\n")
        state["partial"] = lines.pop()
        for line in lines:
            seq = consume(line)
            if seq != state["last_seq"] + 1:
                errors.append(f"seq jumped from {state['last_seq']} to {seq}: the file skipped lines")
            state["last_seq"] = seq
            if len(errors) > 20:
                raise AssertionError("\n".join(errors))
        return state["burst"] == n_inst * n_lines

    wait_for(read_more, 60, lambda: f"all {n_inst * n_lines} burst lines in the log (have {state['burst']}, "
             f"per instance {expected_k}); {node.describe()}", interval=0.05)
    assert not errors, "\n".join(errors[:20])
    assert expected_k == [n_lines] * n_inst
    assert len(set(pids)) == n_inst
    # Nothing more from Burst arrives afterwards (no duplicates at the tail).
    node.wait_log(lambda r: r["stream"] == "node" and r["text"].startswith(f"Burst.{n_inst - 1} exited"),
                  timeout=30)
    _, code = node.stop()
    assert code == 0
    read_more()
    assert not errors, "\n".join(errors[:20])
    assert state["burst"] == n_inst * n_lines


def test_log_file_rotates_by_size_and_keeps_n_files(project):
    project.write(f"""\
instances:
    Burst:
        command: exec {BURST} 60000 r
        restart: never
logs: {{file_max_mb: 1, keep_files: 2}}
""")
    node = project.up(stdout_path=os.devnull)
    logs = project.run_dir / "logs"
    node.wait_node_line(r"^Burst\.0 exited with status 0 ")
    node.stop()
    names = sorted(p.name for p in logs.iterdir())
    assert names == ["devnode.jsonl", "devnode.jsonl.1", "devnode.jsonl.2"], names
    seqs = []
    for name in ("devnode.jsonl.2", "devnode.jsonl.1", "devnode.jsonl"):
        data = (logs / name).read_bytes()
        assert len(data) <= 1 << 20, f"{name} is {len(data)} bytes, over file_max_mb"
        assert data.endswith(b"\n"), f"{name} ends in a torn line"
        seqs += [json.loads(l)["seq"] for l in data.splitlines()]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "rotation lost or duplicated lines"
    assert seqs[0] > 1, "keep_files: 2 should have dropped the oldest lines"
    assert stat_mode(logs) == 0o700


def stat_mode(path):
    return os.stat(path).st_mode & 0o777


# ---------------------------------------------------------------- framing

FRAME_SH = r"""
head -c 200000 /dev/zero | tr '\0' a; echo
printf 'crlf line\r\n'
echo 'logfmt msg=hi trace_id=abc123 user=x'
echo '2024-01-01 12:00:00 INFO greeting: hello - trace_id="q-1_2"'
echo '{"msg": "hi", "trace_id": "JSON9"}'
echo 'trace_id: lymph7'
echo 'trace_id=None'
echo 'no trace here'
printf 'tab\there "quoted" back\\slash \342\234\223 ok\n'
printf 'nul \000 byte\n'
printf 'bad \377 utf8\n'
echo 'err line' >&2
printf 'tail no newline'
"""


def test_framing_through_a_real_pipe(project):
    project.write("""\
instances:
    Frame:
        command: /bin/sh frame.sh
        restart: never
""", {"frame.sh": FRAME_SH})
    node = project.up()
    started = node.wait_node_line(r"^Frame\.0 started \(pid \d+\)$")
    worker_pid = int(re.search(r"pid (\d+)", started["text"]).group(1))
    node.wait_node_line(r"^Frame\.0 exited with status 0 ")
    node.wait_log(lambda r: r["service"] == "Frame" and r["stream"] == "stderr")
    node.wait_log(lambda r: r["service"] == "Frame" and r.get("unterminated"))
    node.stop()

    raw = (project.run_dir / "logs" / "devnode.jsonl").read_bytes()
    recs = [json.loads(l) for l in raw.splitlines()]  # every line is valid JSON (also the bad UTF-8)
    assert [r["seq"] for r in recs] == list(range(1, len(recs) + 1))
    for r in recs:
        check_record_shape(r)

    mine = [r for r in recs if r["service"] == "Frame"]
    for r in mine:
        assert r["instance"] == 0 and r["pid"] == worker_pid, r
    out = [r for r in mine if r["stream"] == "stdout"]

    long = out[:4]
    assert [len(r["text"]) for r in long] == [65536, 65536, 65536, 3392]
    assert all(set(r["text"]) == {"a"} for r in long)
    assert [r.get("split", False) for r in long] == [True, True, True, False]
    assert all("split" not in r for r in mine[4:])

    texts = [r["text"] for r in out[4:]]
    assert texts == [
        "crlf line",
        "logfmt msg=hi trace_id=abc123 user=x",
        '2024-01-01 12:00:00 INFO greeting: hello - trace_id="q-1_2"',
        '{"msg": "hi", "trace_id": "JSON9"}',
        "trace_id: lymph7",
        "trace_id=None",
        "no trace here",
        'tab\there "quoted" back\\slash \u2713 ok',
        "nul \x00 byte",
        "bad \ufffd utf8",
        "tail no newline",
    ], texts
    traces = [r.get("trace_id") for r in out[4:]]
    assert traces == [None, "abc123", "q-1_2", "JSON9", "lymph7", None, None, None, None, None, None]
    assert [r.get("unterminated", False) for r in out] == [False] * (len(out) - 1) + [True]

    err = [r for r in mine if r["stream"] == "stderr"]
    assert [r["text"] for r in err] == ["err line"]

    node_recs = [r for r in recs if r["stream"] == "node"]
    assert node_recs and all(r["service"] == "devnode" for r in node_recs)
    assert all(r["stream"] == "node" for r in recs if r["service"] == "devnode")
    # How long it ran is the machine's business; what matters is the exit and the policy.
    assert any(re.fullmatch(r"Frame\.0 exited with status 0 after \d+\.\ds; not restarting \(restart: never\)",
                            r["text"]) for r in node_recs), [r["text"] for r in node_recs]
    assert re.fullmatch(r"stopped 0 instances of 0 services in \d+\.\d s", node_recs[-1]["text"]), node_recs[-1]


# ---------------------------------------------------------------- terminal output

ESCAPES_SH = r"""
printf 'plain line\n'
printf '\033[2Jclear \033[31mred\033[0m after\n'
printf '\033[H\033[10;5Hmoved\033[?1049h alt\033]0;title\007 osc\n'
printf '\033[1;31mopen bold red\n'
echo 'to stderr' >&2
"""


def plain_line_re(width):
    return re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) (.{%d}) \| (.*)$" % width)


def local_time(iso):
    t = datetime.fromisoformat(iso.replace("Z", "+00:00")).astimezone()
    return t


def test_plain_output_format(project):
    project.write("""\
instances:
    Greeting:
        command: echo "hello from $DEVNODE_INSTANCE"; exec sleep 1000
        numprocesses: 3
    Web:
        command: echo 'web up' >&2; exec sleep 1000
""")
    node = project.up()
    node.wait_running("Greeting", 3)
    node.wait_log(lambda r: r["service"] == "Web" and r["text"] == "web up")
    for i in range(3):
        node.wait_log(lambda r, i=i: r["service"] == "Greeting" and r["text"] == f"hello from {i}")
    node.stop()
    out = node.output()
    assert "\x1b" not in out, "stdout is not a tty: no colour"
    lines = out.splitlines()
    rx = plain_line_re(10)  # "Greeting.0" is the longest name
    parsed = []
    for line in lines:
        m = rx.match(line)
        assert m, f"not in `HH:MM:SS.mmm NAME | text` form: {line!r}"
        parsed.append(m.groups())
    names = {p[1] for p in parsed}
    assert names == {"devnode   ", "Greeting.0", "Greeting.1", "Greeting.2", "Web.0     "}, names
    # The terminal shows exactly what the log file holds, in the same order.
    recs = node.records()
    assert len(parsed) == len(recs), (len(parsed), len(recs))
    for (clock, name, text), rec in zip(parsed, recs):
        want = "devnode" if rec["stream"] == "node" else f"{rec['service']}.{rec['instance']}"
        assert name.rstrip() == want and text == rec["text"], (name, text, rec)
        t = local_time(rec["time"])
        shown = datetime.strptime(clock, "%H:%M:%S.%f").replace(year=t.year, month=t.month, day=t.day,
                                                                 tzinfo=t.tzinfo)
        assert abs((shown - t).total_seconds()) < 0.002, (clock, rec["time"])
    assert parsed[-1][1] == "devnode   " and re.fullmatch(r"stopped \d+ instances? of \d+ services? in \d+\.\d s",
                                                         parsed[-1][2]), parsed[-1]


def test_short_names_pad_to_seven(project):
    project.write("""\
instances:
    A:
        command: echo a-line; exec sleep 1000
""")
    node = project.up()
    node.wait_log(lambda r: r["service"] == "A" and r["text"] == "a-line")
    node.stop()
    lines = node.output().splitlines()
    rx = plain_line_re(7)
    assert all(rx.match(l) for l in lines), lines
    assert any(re.match(r"^\S+ A\.0     \| a-line$", l) for l in lines), lines
    assert any(re.match(r"^\S+ devnode \| A\.0 started \(pid \d+\)$", l) for l in lines), lines


def run_escapes(project, *args, env_extra=None):
    project.write("""\
instances:
    Esc:
        command: /bin/sh escapes.sh
        restart: never
""", {"escapes.sh": ESCAPES_SH})
    node = project.up(*args, env=project.node_env(**(env_extra or {})))
    node.wait_node_line(r"^Esc\.0 exited with status 0 ")
    node.wait_log(lambda r: r["text"] == "to stderr")
    node.stop()
    return node.output()


def assert_no_cursor_control(out):
    leftover = SGR_RE.sub("", out)
    assert "\x1b" not in leftover, f"a non-SGR escape reached stdout: {leftover!r}"
    assert "\x07" not in out and "\x1b[2J" not in out and "\x1b]" not in out


def test_color_always_keeps_sgr_and_drops_cursor_movement(project):
    out = run_escapes(project, "--color=always")
    assert SGR_RE.search(out), "--color=always must colour the output"
    assert_no_cursor_control(out)
    assert "\x1b[31mred" in out, "the child's own SGR colour may pass with --color=always"
    (open_line,) = [l for l in out.splitlines() if "open bold red" in l]
    assert open_line.endswith("\x1b[0m"), f"a child's unclosed colour bleeds into the next line: {open_line!r}"
    stripped = SGR_RE.sub("", out).splitlines()
    rx = plain_line_re(7)
    assert all(rx.match(l) for l in stripped), stripped
    texts = [rx.match(l).group(3) for l in stripped]
    assert "clear red after" in texts and "moved alt osc" in texts and "plain line" in texts


@pytest.mark.parametrize("args,env", [
    ((), {"NO_COLOR": "1"}),
    (("--color=auto",), {"NO_COLOR": "1"}),
    (("--color=never",), {}),
    ((), {}),
])
def test_no_colour_when_not_asked(project, args, env):
    out = run_escapes(project, *args, env_extra=env)
    assert "\x1b" not in out and "\x07" not in out, repr(out)
    assert "clear red after" in out


@pytest.mark.parametrize("env,args,coloured", [
    ({}, (), True),
    ({"NO_COLOR": "1"}, ("--color=auto",), False),
    ({"TERM": "dumb"}, (), False),
    ({}, ("--color=never",), False),
])
def test_colour_auto_on_a_tty(project, env, args, coloured):
    project.write("""\
instances:
    Esc:
        command: /bin/sh escapes.sh
        restart: never
""", {"escapes.sh": ESCAPES_SH})
    pty = Pty()
    full_env = project.node_env(**({"TERM": "xterm"} | env))
    proc = subprocess.Popen([str(DEVNODE), "up", *args], cwd=project.dir, env=full_env, stdin=subprocess.DEVNULL,
                            stdout=pty.slave, stderr=pty.slave, start_new_session=True)
    node = Node(project, proc, Path(os.devnull), project.marker)
    project.nodes.append(node)
    pty.start()
    try:
        node.wait_ready()
        node.wait_node_line(r"^Esc\.0 exited with status 0 ")
        node.stop()
    finally:
        node.terminate()
        out = pty.finish()
    assert "clear red after" in SGR_RE.sub("", out)
    assert_no_cursor_control(out)
    if coloured:
        assert SGR_RE.search(out), repr(out[:500])
    else:
        assert "\x1b" not in out, repr(out[:500])


BOUNDARY_PY = r"""
import sys, time
w = sys.stdout.buffer.write
for n in (65535, 65536, 65537, 131072):
    w(b"a" * n + b"\n")
w(b"b" * 65535 + b"\r\n")
sys.stdout.flush()
w(b"frag"); sys.stdout.flush(); time.sleep(0.2); w(b"ment\n"); sys.stdout.flush()
w(b"cr\r"); sys.stdout.flush(); time.sleep(0.2); w(b"\nnext\n"); sys.stdout.flush()
w(b"d" * 70000)
sys.stdout.flush()
sys.stderr.buffer.write(b"partial err")
"""


def frame_records(project, script):
    project.write("""\
instances:
    F:
        command: exec /usr/bin/python3 frame.py
        restart: never
""", {"frame.py": script})
    node = project.up()
    node.wait_node_line(r"^F\.0 exited with status 0 ")
    node.wait_log(lambda r: r["service"] == "F" and r["stream"] == "stderr")
    node.stop()
    return [r for r in node.records() if r["service"] == "F"]


def test_framing_boundaries(project):
    recs = frame_records(project, BOUNDARY_PY)
    out = [(r["text"][:1], len(r["text"]), r.get("split", False), r.get("unterminated", False))
           for r in recs if r["stream"] == "stdout"]
    assert out == [
        ("a", 65535, False, False),
        ("a", 65536, False, False),   # exactly the limit: one whole line
        ("a", 65536, True, False),
        ("a", 1, False, False),
        ("a", 65536, True, False),
        ("a", 65536, False, False),   # 2 x limit: no empty third record
        ("b", 65535, False, False),   # CRLF stripped, not counted against the limit
        ("f", 8, False, False),       # "frag" + "ment" written 200 ms apart: one line
        ("c", 2, False, False),       # "cr\r" then "\n" in a later read: CR still stripped
        ("n", 4, False, False),
        ("d", 65536, True, False),
        ("d", 70000 - 65536, False, True),
    ], out
    texts = [r["text"] for r in recs if r["stream"] == "stdout"]
    assert texts[7:10] == ["fragment", "cr", "next"]
    err = [r for r in recs if r["stream"] == "stderr"]
    assert [(r["text"], r.get("unterminated")) for r in err] == [("partial err", True)]


def test_crlf_line_of_exactly_the_limit(project):
    recs = frame_records(project, 'import sys\nsys.stdout.buffer.write(b"c" * 65536 + b"\\r\\nafter\\n")\n'
                                  'sys.stderr.buffer.write(b"done\\n")\n')
    out = [(r["text"][:1], len(r["text"]), r.get("split", False)) for r in recs if r["stream"] == "stdout"]
    assert out == [("c", 65536, False), ("a", 5, False)], out


LEVELS_SH = r"""
echo '2024-01-01 12:00:00,123 INFO greeting: hello - trace_id="q-1_2"'
echo '{"level": "warning", "msg": "x"}'
echo 'level=error msg=boom'
echo 'DEBUG: details'
echo '[CRITICAL] meltdown'
echo 'plain text about an error'
echo 'information'
"""


def test_level_recognised_only_when_clear(project):
    project.write("""\
instances:
    Lv:
        command: /bin/sh levels.sh
        restart: never
""", {"levels.sh": LEVELS_SH})
    node = project.up()
    node.wait_node_line(r"^Lv\.0 exited with status 0 ")
    node.wait_log(lambda r: r["service"] == "Lv" and r["text"] == "information")
    node.stop()
    got = [(r.get("level"), r.get("trace_id")) for r in node.records() if r["service"] == "Lv"]
    assert got == [("info", "q-1_2"), ("warning", None), ("error", None), ("debug", None),
                   ("critical", None), (None, None), (None, None)], got
    assert all(r.get("level") == "info" for r in node.node_lines(r" started \(pid "))
