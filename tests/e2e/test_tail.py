"""`devnode tail` and `devnode traces` against a real node and its log files: backlog and
follow across services, every filter online and offline, trace ids in JSON/logfmt/plain lines,
the trace timeline and summaries, followers that die or stop reading, rotation, and the raw
protocol. Every wait polls a condition with a deadline."""
import json
import os
import re
import signal
import subprocess

import pytest

from conftest import BURST, DEVNODE, base_env, wait_for
from tailhelpers import (SKIPPED_RE, Pty, RawClient, file_records, human_lines, log_files, name_of,
                         start_tail, timeline_lines, wait_file_text)

LEVELS = ["debug", "info", "warning", "error", "critical"]


def tail(project, *args, timeout=30):
    return project.cli("tail", *args, timeout=timeout)


def json_out(result):
    assert result.returncode == 0, result.stderr
    return [json.loads(l) for l in result.stdout.splitlines()]


def us(rec):
    """A record's time in whole microseconds since the epoch (the log file's precision)."""
    from datetime import datetime, timezone
    t = datetime.strptime(rec["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(t.timestamp()) * 1000000 + t.microsecond


# ---------------------------------------------------------------- backlog and follow

ALPHA_SH = 'for i in 1 2 3; do echo "alpha $DEVNODE_INSTANCE line $i"; done; exec sleep 1000\n'
BETA_SH = 'for i in 1 2 3; do echo "beta line $i" >&2; done; exec sleep 1000\n'
TWO_SERVICES = """\
instances:
    Alpha:
        command: sh alpha.sh
        numprocesses: 2
    Beta:
        command: sh beta.sh
"""


def test_backlog_and_follow_across_services(project, tmp_path):
    project.write(TWO_SERVICES, {"alpha.sh": ALPHA_SH, "beta.sh": BETA_SH})
    node = project.up()
    for want in ("alpha 0 line 3", "alpha 1 line 3", "beta line 3"):
        node.wait_log(lambda r, w=want: r["text"] == w)
    recs = file_records(project)

    # -n replays the newest lines of every service, in the node's order and format.
    shown = human_lines(tail(project, "-n", "5").stdout)
    assert [(n, t) for _, n, t in shown] == [(name_of(r), r["text"]) for r in recs[-5:]]
    # Colour as `up` does it: asked for, SGR codes; stripped of them, the same lines.
    coloured = tail(project, "-n", "5", "--color=always").stdout
    assert "\x1b[" in coloured
    assert human_lines(re.sub(r"\x1b\[[0-9;]*m", "", coloured)) == shown
    assert "\x1b" not in project.cli("tail", "-n", "5", env=base_env(NO_COLOR="1", TERM="xterm")).stdout
    # --json is exactly the log file's encoding of the same lines.
    r = tail(project, "-n", "1000", "--json")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [l.decode() for l in log_files(project)[-1].read_bytes().splitlines()]

    # -f: the backlog, then new lines of both services as they come; only the services asked for.
    out_path = tmp_path / "follow.txt"
    with open(out_path, "w") as out:
        proc = start_tail(project, "-f", "-n", "2", "Alpha", "Beta", stdout=out)
    try:
        wait_file_text(out_path, lambda t: len(t.splitlines()) >= 2, 10, "the backlog of tail -f")
        before = recs[-1]["seq"]
        assert node.cli("restart", "Alpha.1").returncode == 0
        assert node.cli("restart", "Beta").returncode == 0
        node.wait_log(lambda r: r["text"] == "alpha 1 line 3", after_seq=before)
        node.wait_log(lambda r: r["text"] == "beta line 3", after_seq=before)
        wait_file_text(out_path, lambda t: len(t.splitlines()) >= 8, 15, "lines of restarted instances in tail -f")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    mine = [r for r in file_records(project) if r["service"] in ("Alpha", "Beta")]
    followed = human_lines(out_path.read_text())
    assert [(n, t) for _, n, t in followed] == [(name_of(r), r["text"]) for r in mine[len(mine) - len(followed):]]
    assert len(followed) == 2 + 6
    assert node.alive()


# ---------------------------------------------------------------- filters

WEB_SH = """\
echo "INFO GET /greet?name=joe trace_id=w$DEVNODE_INSTANCE"
echo "level=warning msg=slow trace_id=w$DEVNODE_INSTANCE"
echo "plain web $DEVNODE_INSTANCE"
exec sleep 1000
"""
GREETING_SH = """\
echo '{"level": "error", "msg": "no joe", "trace_id": "w1"}'
echo "DEBUG greeting details"
echo "plain greeting"
exec sleep 1000
"""
FILTER_CONFIG = """\
instances:
    Web:
        command: sh web.sh
        numprocesses: 2
    Greeting:
        command: sh greeting.sh
"""


def reference(recs, services=(), level=None, trace=None, grep=None):
    def target_ok(r):
        if not services:
            return True
        for s in services:
            name, _, idx = s.partition(".")
            if r["service"] == name and (not idx or r["instance"] == int(idx)):
                return True
        return False
    out = []
    for r in recs:
        if not target_ok(r):
            continue
        if level and (r.get("level") not in LEVELS or LEVELS.index(r["level"]) < LEVELS.index(level)):
            continue
        if trace and r.get("trace_id") != trace:
            continue
        if grep and not re.search(grep, r["text"]):
            continue
        out.append(r)
    if trace:
        out.sort(key=lambda r: (us(r), r["seq"]))
    return out


FILTER_CASES = [
    (("Web",), {}),
    (("Web.1",), {}),
    (("Greeting", "Web.0"), {}),
    ((), {"level": "warning"}),
    ((), {"trace": "w1"}),
    ((), {"grep": "joe"}),
    (("Web",), {"level": "info"}),
    ((), {"grep": "^plain (web|greeting)"}),
    (("Greeting",), {"level": "error", "trace": "w1"}),
]


def filter_args(services, opts):
    args = ["-n", "1000", "--json"]
    for k, v in opts.items():
        args += [f"--{k}", v]
    return [*args, *services]


def test_filters_by_service_instance_trace_level_and_pattern_online_and_offline(project):
    project.write(FILTER_CONFIG, {"web.sh": WEB_SH, "greeting.sh": GREETING_SH})
    node = project.up()
    node.wait_log(lambda r: r["text"] == "plain greeting")
    for i in range(2):
        node.wait_log(lambda r, i=i: r["text"] == f"plain web {i}")
    recs = file_records(project)
    expected = {}
    for services, opts in FILTER_CASES:
        want = [r["seq"] for r in reference(recs, services, **opts)]
        assert want, (services, opts)
        got = json_out(tail(project, *filter_args(services, opts)))
        assert [r["seq"] for r in got] == want, (services, opts)
        expected[(services, tuple(opts.items()))] = got
    # A line without a trace id is still tailed by service and instance.
    plain = json_out(tail(project, "-n", "1", "--json", "Web.1"))
    assert plain[0]["text"] == "plain web 1" and "trace_id" not in plain[0]

    node.stop()
    # The same queries answered from the log files give the same lines.
    for services, opts in FILTER_CASES:
        got = json_out(tail(project, *filter_args(services, opts)))
        assert got == expected[(services, tuple(opts.items()))], (services, opts)


# ---------------------------------------------------------------- trace ids and timeline

TRACE_WEB = """\
echo '{"level": "info", "msg": "GET /greet", "trace_id": "req-1"}'
touch step1
while [ ! -e step2 ]; do sleep 0.01; done
echo '{"level": "info", "msg": "200 OK", "trace_id": "req-1"}'
exec sleep 1000
"""
TRACE_GREETING = """\
while [ ! -e step1 ]; do sleep 0.01; done
echo 'level=info msg="Saying hi" trace_id=req-1'
touch step1b
exec sleep 1000
"""
TRACE_LISTEN = """\
while [ ! -e step1b ]; do sleep 0.01; done
echo '2024-01-01 12:00:00,000 [ERROR] listen: joe was greeted - trace_id="req-1"'
echo 'no trace in this one'
touch step2
exec sleep 1000
"""
TRACE_CONFIG = """\
instances:
    Web:
        command: sh web.sh
    Greeting:
        command: sh greeting.sh
    Listen:
        command: sh listen.sh
"""


def test_trace_ids_in_json_logfmt_and_plain_lines_read_as_a_timeline(project):
    project.write(TRACE_CONFIG, {"web.sh": TRACE_WEB, "greeting.sh": TRACE_GREETING, "listen.sh": TRACE_LISTEN})
    node = project.up()
    node.wait_log(lambda r: "200 OK" in r["text"])
    trace = [r for r in file_records(project) if r.get("trace_id") == "req-1"]
    assert [name_of(r) for r in trace] == ["Web.0", "Greeting.0", "Listen.0", "Web.0"]

    r = tail(project, "--trace", "req-1")
    assert r.returncode == 0, r.stderr
    timeline = timeline_lines(r.stdout)
    assert [n for _, n, _ in timeline] == ["Web.0", "Greeting.0", "Listen.0", "Web.0"]
    assert [t for _, _, t in timeline] == [x["text"] for x in trace]
    assert timeline[0][0] == 0.0
    assert [ms for ms, _, _ in timeline] == [round((us(x) - us(trace[0])) / 1000, 3) for x in trace]
    assert r.stdout.splitlines()[0].startswith("+    0.000 ms Web.0      | ")

    rows = json.loads(node.cli("traces", "--json").stdout)
    assert [row["trace_id"] for row in rows] == ["req-1"]
    row = rows[0]
    assert row["services"] == ["Web", "Greeting", "Listen"]
    assert row["lines"] == 4 and row["error"] is True
    assert row["first_ns"] // 1000 == us(trace[0]) and row["last_ns"] // 1000 == us(trace[-1])

    node.stop()
    offline = tail(project, "--trace", "req-1")
    assert (offline.returncode, offline.stdout) == (0, r.stdout)
    missing = tail(project, "--trace", "nope")
    assert missing.returncode == 1 and "no lines with trace_id nope" in missing.stderr


# ---------------------------------------------------------------- traces

ORDER_WEB = """\
for r in r1 r2 r3; do
  echo "GET /greet trace_id=$r"
  touch "asked-$r"
  while [ ! -e "done-$r" ]; do sleep 0.01; done
done
exec sleep 1000
"""
ORDER_GREETING = """\
for r in r1 r2 r3; do
  while [ ! -e "asked-$r" ]; do sleep 0.01; done
  if [ $r = r2 ]; then echo "ERROR greeting failed trace_id=$r"; else echo "hi joe trace_id=$r"; fi
  touch "done-$r"
done
exec sleep 1000
"""
ORDER_CONFIG = """\
instances:
    Web:
        command: sh web.sh
    Greeting:
        command: sh greeting.sh
"""
TABLE_ROW = re.compile(r"^(r\d) +(\d\d:\d\d:\d\d\.\d{3}) +(\d+\.\d{3} ms) +(\d+) +(yes|-) +(.*)$")


def test_traces_newest_first_with_their_fields_and_the_same_offline(project):
    project.write(ORDER_CONFIG, {"web.sh": ORDER_WEB, "greeting.sh": ORDER_GREETING})
    node = project.up()
    node.wait_log(lambda r: r["text"] == "hi joe trace_id=r3")
    recs = file_records(project)

    online = json.loads(node.cli("traces", "--json").stdout)
    assert [row["trace_id"] for row in online] == ["r3", "r2", "r1"]
    for row in online:
        lines = [r for r in recs if r.get("trace_id") == row["trace_id"]]
        assert row["services"] == ["Web", "Greeting"]
        assert row["lines"] == 2
        assert row["error"] is (row["trace_id"] == "r2")
        assert row["first_ns"] // 1000 == us(lines[0]) and row["last_ns"] // 1000 == us(lines[-1])
        assert row["duration_ms"] == pytest.approx((us(lines[-1]) - us(lines[0])) / 1000)
    assert [row["trace_id"] for row in json.loads(node.cli("traces", "--json", "-n", "2").stdout)] == ["r3", "r2"]

    table = node.cli("traces").stdout.splitlines()
    assert re.match(r"^TRACE_ID +FIRST SEEN +DURATION +LINES +ERROR +SERVICES$", table[0]), table
    parsed = [TABLE_ROW.match(l) for l in table[1:]]
    assert all(parsed), table
    assert [(m.group(1), m.group(4), m.group(5), m.group(6)) for m in parsed] == [
        ("r3", "2", "-", "Web -> Greeting"), ("r2", "2", "yes", "Web -> Greeting"),
        ("r1", "2", "-", "Web -> Greeting")]
    timeline = tail(project, "--trace", "r2").stdout

    node.stop()
    # With no node, the same summaries come from the log files.
    offline = json.loads(project.cli("traces", "--json").stdout)
    strip = lambda rows: [{**row, "first_ns": row["first_ns"] // 1000, "last_ns": row["last_ns"] // 1000}
                          for row in rows]
    assert strip(offline) == strip(online)
    assert project.cli("traces").stdout.splitlines() == table
    assert tail(project, "--trace", "r2").stdout == timeline


# ---------------------------------------------------------------- slow and dead followers

BURST_CONFIG = """\
instances:
    Marker:
        command: echo marker-line; exec sleep 1000
    Burst:
        command: exec {burst} {n} s 80
        numprocesses: 0
        restart: never
logs: {{buffer_lines: {ring}}}
"""


def burst_ks(recs):
    return [int(r["text"].split()[2]) for r in recs if r.get("service") == "Burst"]


def test_follower_killed_mid_stream_does_not_disturb_the_node(project, tmp_path):
    n = 200000
    project.write(BURST_CONFIG.format(burst=BURST, n=n, ring=200000))
    node = project.up(stdout_path=os.devnull)
    out_path = tmp_path / "follow.jsonl"
    with open(out_path, "w") as out:
        proc = start_tail(project, "-f", "-n", "5", "--json", "Burst", "Marker", stdout=out)
    try:
        wait_file_text(out_path, lambda t: "marker-line" in t, 10, "tail -f to be subscribed")
        assert node.cli("scale", "Burst", "1").returncode == 0
        wait_file_text(out_path, lambda t: t.count('"service":"Burst"') > 1000, 20, "burst lines in tail -f")
        proc.kill()
        proc.wait(5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    node.wait_node_line(r"^Burst\.0 exited with status 0 ", timeout=60)
    assert node.alive()
    assert node.status()["services"][1]["name"] == "Burst"
    last = json_out(tail(project, "-n", "3", "--json", "Burst"))
    assert burst_ks(last) == [n - 3, n - 2, n - 1]
    assert burst_ks(file_records(project)) == list(range(n))


def stop_during_burst(node, tails, instances):
    """Stops the tail processes while `instances` Burst workers write their lines, so the ring
    of 1000 lines overtakes them; lets them go on once every worker has exited."""
    for proc in tails:
        os.kill(proc.pid, signal.SIGSTOP)
    try:
        assert node.cli("scale", "Burst", str(instances)).returncode == 0
        # (every log file: the node's log reader follows the current one only, and they rotate)
        exited = [f'"text":"Burst.{i} exited with status 0 '.encode() for i in range(instances)]
        wait_for(lambda: all(any(e in p.read_bytes() for p in log_files(node.project)) for e in exited), 30,
                 "every Burst worker to exit", interval=0.2)
    finally:
        for proc in tails:
            os.kill(proc.pid, signal.SIGCONT)


def end_tail(proc):
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 0, proc.stderr.read()


def check_skipped(text, n, as_json):
    """Tail output (JSON or the human format) of a follower that skipped: each gap is announced
    by a notice, and the lines received plus the lines skipped are the whole burst."""
    received, skipped, expected_k = 0, 0, 0
    notices = []
    for line in text.splitlines():
        if as_json:
            rec = json.loads(line)
            notice = rec["skipped"] if "skipped" in rec and len(rec) == 1 else None
        else:
            m = SKIPPED_RE.match(line)
            notice = int(m.group(1)) if m else None
            if not m:
                _, name, text_ = human_lines(line)[0]
                rec = {"service": name.split(".")[0], "text": text_}
        if notice is not None:
            notices.append(notice)
            skipped += notice
            expected_k += notice  # nothing but Burst lines match in this window
            continue
        if rec["service"] != "Burst":
            continue
        k = int(rec["text"].split()[2])
        assert k == expected_k, f"line k={k} where k={expected_k} was due: a gap without a notice"
        expected_k += 1
        received += 1
    assert notices and skipped > 0, "the ring of 1000 lines must have overtaken the stopped follower"
    assert received + skipped == n


def test_follower_on_a_terminal_or_lossy_is_told_exactly_what_it_skipped(project, tmp_path):
    n = 100000
    project.write(BURST_CONFIG.format(burst=BURST, n=n, ring=1000))
    node = project.up(stdout_path=os.devnull)
    out_path = tmp_path / "follow.jsonl"
    pty = Pty()
    with open(out_path, "w") as out:
        lossy = start_tail(project, "-f", "-n", "5", "--json", "--lossy", "Burst", "Marker", stdout=out)
    on_tty = start_tail(project, "-f", "-n", "5", "--color=never", "Burst", "Marker", stdout=pty.slave)
    pty.start()
    last = f"burst s {n - 1} "
    try:
        wait_file_text(out_path, lambda t: "marker-line" in t, 10, "tail -f --lossy to be subscribed")
        wait_for(lambda: "marker-line" in pty.text(), 10, "tail -f on a terminal to be subscribed")
        stop_during_burst(node, [lossy, on_tty], 1)
        wait_file_text(out_path, lambda t: last in t, 20, "the last burst line in tail -f --lossy")
        wait_for(lambda: last in pty.text(), 20, "the last burst line in tail -f on a terminal")
        end_tail(lossy)
        end_tail(on_tty)
    finally:
        for proc in (lossy, on_tty):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    check_skipped(out_path.read_text(), n, as_json=True)
    check_skipped(pty.finish(), n, as_json=False)
    assert burst_ks(file_records(project)) == list(range(n)), "the log file has every line"


@pytest.mark.parametrize("rotate", [False, True], ids=["one_file", "rotating"])
def test_follower_to_a_file_or_a_pipe_gets_every_line(project, tmp_path, rotate):
    """Off a terminal nothing is skipped: what the ring dropped comes from the log files (also
    while they rotate under the reader), in seq order, once."""
    n = 100000
    ring = "1000, file_max_mb: 1, keep_files: 60" if rotate else 1000
    project.write(BURST_CONFIG.format(burst=BURST, n=n, ring=ring))
    node = project.up(stdout_path=os.devnull)
    file_path, pipe_path = tmp_path / "to_file.jsonl", tmp_path / "to_pipe.txt"
    with open(file_path, "w") as out:
        to_file = start_tail(project, "-f", "-n", "5", "--json", "Burst", "Marker", stdout=out)
    with open(pipe_path, "w") as out:
        cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=out)
    to_pipe = start_tail(project, "-f", "-n", "5", "Burst", "Marker", stdout=cat.stdin)
    cat.stdin.close()
    done = lambda t: t.count(f"burst s {n - 1} ") == 2
    try:
        wait_file_text(file_path, lambda t: "marker-line" in t, 10, "tail -f > file to be subscribed")
        wait_file_text(pipe_path, lambda t: "marker-line" in t, 10, "tail -f | cat to be subscribed")
        stop_during_burst(node, [to_file, to_pipe], 2)
        wait_file_text(file_path, done, 30, "both workers' last lines in tail -f > file")
        wait_file_text(pipe_path, done, 30, "both workers' last lines in tail -f | cat")
        end_tail(to_file)
        end_tail(to_pipe)
        assert cat.wait(10) == 0
    finally:
        for proc in (to_file, to_pipe, cat):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    errs = to_file.stderr.read().decode() + to_pipe.stderr.read().decode()
    assert "skipped" not in errs
    recs = [json.loads(line) for line in file_path.read_text().splitlines()]
    assert not [r for r in recs if "skipped" in r and len(r) == 1], "a skipped notice off a terminal"
    from_file = {i: [int(r["text"].split()[2]) for r in recs if r["service"] == "Burst" and r["instance"] == i]
                 for i in (0, 1)}
    seqs = [r["seq"] for r in recs]
    assert seqs == sorted(set(seqs)), "lines in seq order, each once"
    rows = human_lines(pipe_path.read_text())
    assert not [r for r in rows if "skipped" in r[2]]
    from_pipe = {i: [int(text.split()[2]) for _, name, text in rows if name == f"Burst.{i}"] for i in (0, 1)}
    for got in (from_file, from_pipe):
        assert got[0] == list(range(n)) and got[1] == list(range(n))


# ---------------------------------------------------------------- rotation

def test_rotation_keeps_every_line_across_files(project):
    n = 30000
    project.write(f"""\
instances:
    Tracer:
        command: echo "request starts trace_id=rot-1"; exec sleep 1000
        ready: {{log: "request starts"}}
    Burst:
        command: exec {BURST} {n} r 100
        restart: never
        depends_on: [Tracer]
logs: {{file_max_mb: 1, keep_files: 20}}
""")
    node = project.up(stdout_path=os.devnull)
    node.wait_node_line(r"^Burst\.0 exited with status 0 ", timeout=30)
    assert node.cli("restart", "Tracer").returncode == 0
    # (read every file: a follower of the current file alone misses rotations between polls)
    wait_for(lambda: sum(r.get("trace_id") == "rot-1" for r in file_records(project)) == 2, 15,
             "the restarted Tracer's line")
    online = json_out(tail(project, "-n", "1000000", "--json", "Burst"))
    node.stop()
    files = log_files(project)
    assert len(files) >= 4, [p.name for p in files]
    offline = json_out(tail(project, "-n", "1000000", "--json", "Burst"))
    assert burst_ks(offline) == list(range(n))
    assert offline == online
    # A trace whose lines sit in the oldest and the newest file.
    timeline = timeline_lines(tail(project, "--trace", "rot-1").stdout)
    assert [name for _, name, _ in timeline] == ["Tracer.0", "Tracer.0"]
    first_file = [json.loads(l) for l in files[0].read_bytes().splitlines()]
    assert any(r.get("trace_id") == "rot-1" for r in first_file)


# ---------------------------------------------------------------- ending quietly, usage

def test_closed_pipe_and_ctrl_c_end_tail_quietly(project):
    project.write(TWO_SERVICES, {"alpha.sh": ALPHA_SH, "beta.sh": BETA_SH})
    node = project.up()
    node.wait_log(lambda r: r["text"] == "beta line 3")
    # `| head -n 2`: the reader goes away while tail -f waits for more; tail ends at once, quietly.
    head = subprocess.Popen([str(DEVNODE), "tail", "-c", str(project.config_path), "-f", "-n", "100"],
                            env=base_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    try:
        assert HUMAN_LINE.match(head.stdout.readline().decode())
        assert HUMAN_LINE.match(head.stdout.readline().decode())
        head.stdout.close()
        assert head.wait(10) == 0
        assert head.stderr.read() == b""
    finally:
        if head.poll() is None:
            head.kill()
            head.wait()
    proc = subprocess.Popen([str(DEVNODE), "tail", "-c", str(project.config_path), "-f"], env=base_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    try:
        first = proc.stdout.readline()
        assert HUMAN_LINE.match(first.decode()), first
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert node.alive()


HUMAN_LINE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \S+ +\| ")


@pytest.mark.parametrize("args,code,message", [
    (("--level", "loud"), 2, "not a level"),
    (("--grep", "("), 2, "bad pattern"),
    (("--trace", "not a trace!"), 2, "not a trace id"),
    (("-n", "ten"), 2, "-n takes a number"),
    (("--color=sometimes",), 2, "--color takes"),
    ((".1",), 2, "not a service name"),
    (("-f",), 1, "-f needs a running node"),
    (("--bogus",), 2, ""),
])
def test_usage_errors_and_no_node(project, args, code, message):
    project.write(TWO_SERVICES)
    r = tail(project, *args)
    assert r.returncode == code and message in r.stderr, r
    assert r.stdout == ""


def test_traces_and_tail_without_node_or_logs(project):
    project.write(TWO_SERVICES)
    r = project.cli("traces")
    assert r.returncode == 1 and "no node running" in r.stderr, r
    r = tail(project)
    assert r.returncode == 1 and "no node running and no log files" in r.stderr, r
    r = project.cli("traces", "-n", "0")
    assert r.returncode == 2, r


# ---------------------------------------------------------------- the raw protocol

def test_raw_protocol_requests_and_bad_fields(project):
    project.write(FILTER_CONFIG, {"web.sh": WEB_SH, "greeting.sh": GREETING_SH})
    node = project.up()
    node.wait_log(lambda r: r["text"] == "plain greeting")
    client = RawClient(project)
    try:
        lines, skipped, end = client.tail(backlog=2, follow=False, services=["Greeting"])
        assert [l["text"] for l in lines] == ["DEBUG greeting details", "plain greeting"]
        assert skipped == 0 and end["truncated"] is False
        for l in lines:
            assert set(l) == {"seq", "wall_ns", "service", "instance", "pid", "stream", "level", "trace_id",
                              "text", "split", "unterminated"}
        assert lines[0]["level"] == "debug" and lines[1]["level"] is None and lines[1]["trace_id"] is None

        lines, _, end = client.tail(id=2, backlog=100, trace="w1", services=["Greeting"])
        assert [l["text"] for l in lines] == ['{"level": "error", "msg": "no joe", "trace_id": "w1"}']
        _, _, end = client.tail(id=3, backlog=100, trace="unknown")
        assert end["truncated"] is True, "an unknown trace sends the client to the log files"

        for body in ({"backlog": "x"}, {"backlog": -1}, {"follow": 1}, {"services": "Web"}, {"services": [1]},
                     {"trace": "bad id!"}, {"trace": 5}, {"level": "loud"}, {"grep": "("}, {"grep": b"x"}):
            type_, reply = client.request("tail", {"id": 9, **body})
            assert type_ == "error" and reply["id"] == 9 and reply["message"].startswith("tail: "), (body, reply)
        assert client.request("traces", {"id": 4, "limit": 0})[0] == "error"
        assert client.request("traces", {"id": 4, "limit": "2"})[0] == "error"
        # The newest trace is the one that began last; the three processes print in any order.
        for text in ("plain web 0", "plain web 1"):
            node.wait_log(lambda r, text=text: r["text"] == text)
        began = {}
        for r in node.records():
            if r.get("trace_id"):
                began.setdefault(r["trace_id"], r["seq"])
        newest = max(began, key=began.get)
        type_, reply = client.request("traces", {"id": 5, "limit": 1})
        assert type_ == "traces" and [t["trace_id"] for t in reply["traces"]] == [newest]
        assert client.request("tail_renew", {"id": 77})[0] == "error"
        assert client.request("untail", {"id": 77}) == ("ok", {"id": 77})

        # A follower: first an (empty) confirmation, then new lines; untail ends it.
        client.send("tail", {"id": 6, "backlog": 0, "follow": True, "services": ["Web.1"]})
        type_, first = client.recv()
        assert type_ == "lines" and first == {"id": 6, "lines": [], "skipped": 0}
        assert node.cli("restart", "Web.1").returncode == 0
        got = []
        while len(got) < 3:
            type_, body = client.recv(10)
            assert type_ == "lines" and body["id"] == 6
            got += [l["text"] for l in body["lines"]]
        assert got == ["INFO GET /greet?name=joe trace_id=w1", "level=warning msg=slow trace_id=w1", "plain web 1"]
        assert client.request("untail", {"id": 6}) == ("ok", {"id": 6})
        assert client.request("tail_renew", {"id": 6})[0] == "error"
    finally:
        client.close()
    assert node.status()["node"]["malformed_messages"] == 0


def test_follow_survives_until_node_stops_and_gets_the_last_line(project, tmp_path):
    project.write(TWO_SERVICES, {"alpha.sh": ALPHA_SH, "beta.sh": BETA_SH})
    node = project.up()
    node.wait_log(lambda r: r["text"] == "beta line 3")
    out_path = tmp_path / "follow.txt"
    with open(out_path, "w") as out:
        proc = start_tail(project, "-f", "-n", "1", stdout=out)
    try:
        wait_file_text(out_path, lambda t: t.strip() != "", 10, "the backlog line")
        node.stop()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert re.fullmatch(r"stopped \d+ instances? of \d+ services? in \d+\.\d s", human_lines(out_path.read_text())[-1][2])
