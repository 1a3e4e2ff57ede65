"""The node's plain output off a terminal: a file or a pipe gets every line, in each worker's
order; a reader that stops reading holds the workers back while the node keeps serving; a
reader that goes away ends printing, not the node. On a terminal lines are skipped instead
(and the skip is reported)."""
import os
import re
import subprocess
import threading
import time

from clihelpers import FAKE, Background, wait_registered, wait_subscribers
from conftest import BURST, DEVNODE, PYTHON, LogReader, Node, wait_for
from demohelpers import free_port
from tuihelpers import Tmux, start_tui

BURST_OUT = re.compile(rb"^\d\d:\d\d:\d\d\.\d{3} Burst\.(\d+) +\| burst (\d+) (\d+) p*$")


def start_node(project, stdout, *args):
    """`devnode up --no-tui ARGS` with stdout as given (a file, a pipe); stderr to a file."""
    err_path = project.dir / f"node-err-{len(project.nodes)}.txt"
    with open(err_path, "wb") as err:
        proc = subprocess.Popen([str(DEVNODE), "up", "--no-tui", *args], cwd=project.dir, env=project.node_env(),
                                stdin=subprocess.DEVNULL, stdout=stdout, stderr=err, start_new_session=True)
    node = Node(project, proc, err_path, project.marker)
    # The Burst lines are counted, not kept (node.log.skipped["Burst"]).
    node.log = LogReader(project.run_dir / "logs" / "devnode.jsonl", skip_services=("Burst",))
    project.nodes.append(node)
    return node


def burst_config(n_inst, n_lines, extra=""):
    return f"""\
instances:
    Burst:
        command: exec {BURST} {n_lines} $DEVNODE_INSTANCE
        numprocesses: {n_inst}
        restart: never
{extra}logs: {{file_max_mb: 4000}}
"""


def wait_burst_exits(node, n_inst, timeout=60):
    for i in range(n_inst):
        node.wait_node_line(rf"^Burst\.{i} exited with status 0 ", timeout=timeout)


def check_burst_output(path, n_inst, n_lines):
    """Counts the burst lines in a stdout capture; every worker's lines must come in order."""
    expected = [0] * n_inst
    errors = []
    with open(path, "rb") as f:
        for line in f:
            if b"| burst " not in line:
                continue
            m = BURST_OUT.match(line.rstrip(b"\n"))
            if not m or m.group(1) != m.group(2):
                errors.append(f"malformed burst line {line[:120]!r}")
            else:
                inst, k = int(m.group(1)), int(m.group(3))
                if k != expected[inst]:
                    errors.append(f"Burst.{inst}: line {k} where {expected[inst]} was due")
                expected[inst] = k + 1
            if len(errors) > 10:
                break
    assert not errors, "\n".join(errors)
    assert expected == [n_lines] * n_inst, f"lines per worker on stdout: {expected}"


def burst_pids(node, n_inst):
    insts = node.service("Burst")["instances"]
    pids = [i["pid"] for i in insts if i["pid"]]
    return pids if len(pids) == n_inst else None


def blocked_on_pipe(pid):
    try:
        with open(f"/proc/{pid}/wchan") as f:
            return "pipe_write" in f.read()
    except OSError:
        return False


def wait_writers_blocked(node, n_inst):
    """Every Burst worker sleeps in write(2) on its full pipe: the node holds its output back."""
    pids = wait_for(lambda: burst_pids(node, n_inst), 15, "the Burst workers to run")
    wait_for(lambda: all(blocked_on_pipe(p) for p in pids), 30,
             lambda: f"Burst workers {pids} blocked writing their pipes; {node.describe()}")
    return pids


def last_seq(node):
    records = node.records()
    return records[-1]["seq"] if records else 0


# ---------------------------------------------------------------- every line arrives

def test_stdout_to_a_file_gets_every_line_in_order(project):
    n_inst, n_lines = 8, 200000
    project.write(burst_config(n_inst, n_lines))
    out_path = project.dir / "out.txt"
    with open(out_path, "wb") as out:
        node = start_node(project, out)
    wait_burst_exits(node, n_inst)
    assert node.stop()[1] == 0
    check_burst_output(out_path, n_inst, n_lines)
    assert not node.node_lines("did not reach stdout|not shown")


def test_stdout_to_a_pipe_into_cat_gets_every_line_in_order(project):
    n_inst, n_lines = 8, 200000
    project.write(burst_config(n_inst, n_lines))
    out_path = project.dir / "out.txt"
    with open(out_path, "wb") as out:
        cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=out)
    try:
        node = start_node(project, cat.stdin)
        cat.stdin.close()
        wait_burst_exits(node, n_inst)
        assert node.stop()[1] == 0
        assert cat.wait(30) == 0
    finally:
        if cat.poll() is None:
            cat.kill()
            cat.wait()
    check_burst_output(out_path, n_inst, n_lines)
    assert not node.node_lines("did not reach stdout|not shown")


# ---------------------------------------------------------------- a reader that pauses

TCP_PY = r"""
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
print("listening", flush=True)
while True:
    s.accept()[0].close()
"""

NOTIFY_PY = r"""
import os, socket, time
socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"READY=1", os.environ["NOTIFY_SOCKET"])
while True:
    time.sleep(60)
"""

# More than the printer's backlog and the pipe hold: the pattern line comes only if the node
# reads this worker while it holds the others back.
LOG_PY = r"""
import sys, time
for i in range(100000):
    sys.stdout.write("noise %06d %s\n" % (i, "n" * 50))
print("up now", flush=True)
while True:
    time.sleep(60)
"""


def test_a_paused_reader_holds_the_workers_and_the_node_keeps_serving(project):
    n_inst, n_lines = 4, 200000
    port = free_port()
    project.write(burst_config(n_inst, n_lines, extra=f"""\
    Tcp:
        command: exec {PYTHON} tcp.py {port}
        ready: {{tcp: {port}, timeout: 20s}}
    Notify:
        command: exec {PYTHON} notify.py
        ready: notify
    Log:
        command: exec {PYTHON} log.py
        ready: {{log: '^up now$', timeout: 20s}}
    Fake:
        command: exec {PYTHON} {FAKE}
        stop_timeout: 5
"""), {"tcp.py": TCP_PY, "notify.py": NOTIFY_PY, "log.py": LOG_PY})
    r, w = os.pipe()
    try:
        node = start_node(project, w)
        os.close(w)
        node.wait_ready()
        wait_writers_blocked(node, n_inst)
        node.records()
        burst_in_log = node.log.skipped["Burst"]
        assert burst_in_log < n_inst * n_lines, "the writers were held back, not done"

        t0 = time.monotonic()
        status = node.status()
        assert time.monotonic() - t0 < 2, "status answered slowly while output was held back"
        assert {s["name"] for s in status["services"]} == {"Burst", "Tcp", "Notify", "Log", "Fake"}

        # Readiness checks of every kind still work: restart each and see it ready again.
        for name, how in (("Tcp", "its port answered"), ("Notify", "it sent READY=1"), ("Log", "its log matched")):
            seq = last_seq(node)
            project.cli("restart", name, check=True)
            node.wait_node_line(rf"^{name}\.0 ready \({re.escape(how)}", timeout=20, after_seq=seq)

        # RPC, the bus, tail and the dashboard answer.
        wait_registered(project, "Fake", 1)
        rpc = project.cli("request", "Fake.greet", '{"name": "joe"}', timeout=10)
        assert (rpc.returncode, rpc.stdout) == (0, '"Hello, joe!"\n'), rpc.stderr
        sub = Background(project, "subscribe", "-n", "1", "paused.*")
        try:
            wait_subscribers(project, "paused.*")
            project.cli("emit", "paused.check", '{"a": 1}', check=True)
            assert "paused.check" in sub.read_lines(1)[0]
            assert sub.wait() == 0
        finally:
            sub.kill()
        assert project.cli("tail", "-n", "3", timeout=10).returncode == 0
        tmux = Tmux(120, 40, env=project.node_env(), cwd=project.dir)
        try:
            start_tui(tmux, project)
        finally:
            tmux.kill()
        assert all(blocked_on_pipe(p) for p in burst_pids(node, n_inst)), "still held back"

        # The reader resumes: every line arrives, in order, and the workers finish.
        out_path = project.dir / "out.txt"
        reader = threading.Thread(target=drain, args=(r, out_path), daemon=True)
        reader.start()
        wait_burst_exits(node, n_inst)
        assert node.stop()[1] == 0
        reader.join(30)
    finally:
        os.close(r)
    check_burst_output(out_path, n_inst, n_lines)
    assert not node.node_lines("did not reach stdout|not shown")


def drain(fd, path):
    with open(path, "wb") as out:
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return
            out.write(chunk)


def test_stop_ends_when_stdout_is_never_read_and_counts_what_it_kept_back(project):
    project.write(burst_config(2, 200000))
    r, w = os.pipe()
    try:
        node = start_node(project, w)
        os.close(w)
        node.wait_ready()
        wait_writers_blocked(node, 2)
        t0 = time.monotonic()
        assert node.stop()[1] == 0
        assert time.monotonic() - t0 < 15
    finally:
        os.close(r)
    [line] = node.node_lines(r"^\d+ lines did not reach stdout: nobody read it for 5s after the stop")
    assert line["level"] == "warning"


# ---------------------------------------------------------------- a reader that goes away

TICKER_PY = r"""
import itertools, time
for i in itertools.count():
    print("tick", i, flush=True)
    time.sleep(0.05)
"""
TICKER = f"exec {PYTHON} ticker.py"


def test_a_reader_that_goes_away_ends_printing_not_the_node(project):
    project.write(f"""\
instances:
    Ticker:
        command: {TICKER}
""", {"ticker.py": TICKER_PY})
    head = subprocess.Popen(["head", "-5"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        node = start_node(project, head.stdin)
        head.stdin.close()
        assert len(head.stdout.read().splitlines()) == 5
        assert head.wait(10) == 0
    finally:
        if head.poll() is None:
            head.kill()
            head.wait()
        head.stdout.close()
    gone = node.wait_node_line(r"^stdout failed \(Broken pipe\): no more lines are printed")
    assert gone["level"] == "warning"
    # Still supervising: ticks go on into the log file, a restart works.
    node.wait_log(lambda rec: rec["service"] == "Ticker", after_seq=gone["seq"], what="a tick after EPIPE")
    assert node.alive()
    old = node.wait_running("Ticker", 1)[0]["pid"]
    project.cli("restart", "Ticker", check=True)
    wait_for(lambda: node.service("Ticker")["instances"][0]["pid"] not in (None, 0, old), 15, "a new Ticker")
    seq = last_seq(node)
    node.wait_log(lambda rec: rec["service"] == "Ticker", after_seq=seq, what="ticks of the new Ticker")
    assert len(node.node_lines("^stdout failed")) == 1
    assert node.stop()[1] == 0


# ---------------------------------------------------------------- choosing the mode

def test_lossy_on_a_pipe_skips_instead_of_holding_the_workers(project):
    n_inst, n_lines = 4, 200000
    project.write(burst_config(n_inst, n_lines))
    r, w = os.pipe()
    try:
        node = start_node(project, w, "--lossy")
        os.close(w)
        # Nobody reads, yet the writers finish: lines past the backlog were skipped.
        wait_burst_exits(node, n_inst)
        assert node.stop()[1] == 0
    finally:
        os.close(r)


def test_lossy_and_lossless_exclude_each_other(project):
    project.write(burst_config(1, 1))
    r = subprocess.run([str(DEVNODE), "up", "--lossy", "--lossless"], cwd=project.dir, env=project.node_env(),
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "devnode: up: --lossy and --lossless exclude each other\n")


def test_a_terminal_nobody_reads_skips_lines_and_says_so(project):
    n_inst, n_lines = 4, 200000
    project.write(burst_config(n_inst, n_lines, extra=f"""\
    Ticker:
        command: {TICKER}
"""), {"ticker.py": TICKER_PY})
    master, slave = os.openpty()
    out_path = project.dir / "tty.txt"
    try:
        node = start_node(project, slave)
        os.close(slave)
        # Nobody reads the terminal, yet the writers finish: a terminal is lossy by default.
        wait_burst_exits(node, n_inst)
        node.records()
        assert node.log.skipped["Burst"] == n_inst * n_lines
        reader = threading.Thread(target=drain_tty, args=(master, out_path), daemon=True)
        reader.start()
        # Once the terminal takes lines again, the next tick comes after the notice.
        wait_for(lambda: b"lines not shown, the terminal was too slow" in out_path.read_bytes(), 30,
                 "the skip notice on the terminal")
        assert node.stop()[1] == 0
        reader.join(10)
    finally:
        os.close(master)


def drain_tty(fd, path):
    with open(path, "wb", buffering=0) as out:
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:  # EIO once the node closed the terminal
                return
            if not chunk:
                return
            out.write(chunk)
