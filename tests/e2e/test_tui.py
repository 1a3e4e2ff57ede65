"""The curses dashboard, driven like a user would in a real terminal: tmux on a private socket
runs a shell, the test types `devnode tui`, sends keys and reads the screen back with
capture-pane. Covers the process table after a kill and a scale, the trace key, search with
highlight, a resize to 80x24, detaching (node keeps running, terminal clean), terminal
restoration on signals, escape sequences from children, colours off, a burst of 1.6 million
lines while keys still answer within a second, `devnode up` in a terminal, and against a fake
node: a refused or dropped log stream, an unanswered trace fetch, malformed lines. Tests that
need the node's tail stream skip themselves when it is not there."""
import os
import re
import signal
import time

import pytest

from conftest import DEVNODE, pid_alive, wait_for
from tuihelpers import (Tmux, highlighted, last_row, log_pane, require_tail_stream, selected_rows, start_tui,
                        strip_sgr, table)


@pytest.fixture
def tmux(project):
    """A 120x40 terminal; killed before the project's own teardown looks for leftovers."""
    t = Tmux(120, 40, cwd=project.dir)
    yield t
    t.kill()


def exit_status(tmux, timeout=15):
    m = tmux.wait(lambda s: re.search(r"tui-exit=(\d+)", s), timeout, "devnode tui to exit")
    return int(m.group(1))


# ---------------------------------------------------------------- configs

TICKER_SH = r"""
i=0
while :; do
    i=$((i + 1))
    echo "tick $DEVNODE_SERVICE.$DEVNODE_INSTANCE n=$i"
    sleep 0.3
done
"""

TABLE_CONFIG = """\
instances:
    Greeting:
        command: sh ticker.sh
        numprocesses: 3
    Worker:
        command: sh ticker.sh
        numprocesses: 2
        restart: never
"""

# Each request N is logged by Web, then Greeting 100 ms later, then Listen, with trace_id=trNNN.
TRACE_SH = r"""
n=0
while [ $n -lt 400 ]; do
    n=$((n + 1))
    t=$(printf 'tr%03d' $n)
    case $DEVNODE_SERVICE in
        Web) echo "GET /greet?n=$n trace_id=$t"; sleep 0.3 ;;
        Greeting) sleep 0.1; echo "greeting n=$n trace_id=$t"; sleep 0.2 ;;
        Listen) sleep 0.2; echo "greeted n=$n trace_id=$t"; sleep 0.1 ;;
    esac
    [ $((n % 7)) -eq 0 ] && echo "housekeeping n=$n without a trace"
done
exec sleep 1000
"""

TRACE_CONFIG = """\
instances:
    Web:
        command: sh trace.sh
    Greeting:
        command: sh trace.sh
    Listen:
        command: sh trace.sh
"""


# ---------------------------------------------------------------- the process table

def test_table_shows_counts_and_states_after_a_kill_and_a_scale(project, tmux):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    node = project.up("--no-tui")
    node.wait_running("Greeting", 3)
    node.wait_running("Worker", 2)
    start_tui(tmux, project)
    rows = tmux.wait(lambda s: (lambda t: t if len(t) == 7 else None)(table(s)), 10, "seven table rows")
    assert rows["Greeting"][:2] == ["running", "3/3"], rows
    assert rows["Worker"][:2] == ["running", "2/2"], rows
    for i in range(3):
        assert rows[f"Greeting.{i}"][0] == "running"
    status = node.status()
    pids = {f"{s['name']}.{i['index']}": i["pid"] for s in status["services"] for i in s["instances"]}
    assert rows["Greeting.1"][1] == str(pids["Greeting.1"])
    header = tmux.screen().split("\n")[0]
    assert "2 services, 5/5 running" in header and f"node {node.pid}" in header, header

    # A kill: Worker.1 (restart: never) stays down with its signal; Greeting.0 comes back.
    os.kill(pids["Worker.1"], signal.SIGKILL)
    os.kill(pids["Greeting.0"], signal.SIGKILL)

    def after_kill(screen):
        t = table(screen)
        w1, g0 = t.get("Worker.1", []), t.get("Greeting.0", [])
        ok = (t.get("Worker", [])[:2] == ["exited", "1/2"] and w1[:1] == ["exited"] and "KILL" in w1
              and g0[:1] == ["running"] and len(g0) > 2 and g0[1] != str(pids["Greeting.0"]) and g0[2] == "1")
        return t if ok else None
    rows = tmux.wait(after_kill, 15, "Worker.1 exited by SIGKILL and Greeting.0 restarted once")
    assert rows["Worker.1"][1:4] == ["-", "0", "-"], rows["Worker.1"]
    assert tmux.screen().split("\n")[0].count("4/5 running") == 1

    # A scale with the keys: Tab to the table, Home (the Greeting row), + twice, - once.
    tmux.send("Tab", "Home", "+")
    tmux.wait(lambda s: table(s).get("Greeting", [])[:2] == ["running", "4/4"], 15, "Greeting scaled to 4")
    tmux.send("+")
    rows = tmux.wait(lambda s: (lambda t: t if t.get("Greeting", [])[:2] == ["running", "5/5"]
                                and "Greeting.4" in t else None)(table(s)), 15, "Greeting scaled to 5")
    assert [rows[f"Greeting.{i}"][0] for i in range(5)] == ["running"] * 5
    assert node.service("Greeting")["desired"] == 5
    tmux.send("-")
    tmux.wait(lambda s: (lambda t: t.get("Greeting", [])[:2] == ["running", "4/4"]
                         and "Greeting.4" not in t)(table(s)), 15, "Greeting scaled back to 4")
    # r restarts the selected service: every instance gets a new pid.
    before = {i["index"]: i["pid"] for i in node.service("Greeting")["instances"]}
    tmux.send("r")
    tmux.wait_text("restarting Greeting", 10)

    def restarted():
        insts = node.service("Greeting")["instances"]
        return all(i["state"] == "running" and i["pid"] and i["pid"] != before[i["index"]] for i in insts)
    wait_for(restarted, 20, "every Greeting instance to run with a new pid")
    tmux.send("q")
    assert exit_status(tmux) == 0
    assert node.alive()


def test_table_fits_80x24_and_relayouts_on_resize(project, tmux):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    node = project.up("--no-tui")
    node.wait_running("Greeting", 3)
    start_tui(tmux, project)
    tmux.wait(lambda s: len(table(s)) == 7 and "tick " in s, 10, "the full table and some lines")
    tmux.resize(80, 24)

    def usable(screen):
        rows = screen.split("\n")
        if len(rows) < 24 or not rows[0].startswith(" devnode ") or "NAME" not in rows[1]:
            return None
        if not any(r.startswith(" Logs") for r in rows) or "? help" not in last_row(screen):
            return None
        t = table(screen)
        if "Greeting" not in t or "Greeting.0" not in t or len(log_pane(screen)) < 8:
            return None
        return rows
    rows = tmux.wait(usable, 5, "a usable 80x24 layout: header, table, logs, key line")
    assert all(len(r) <= 80 for r in rows), [r for r in rows if len(r) > 80]
    assert "? help  q quit  t trace  / search" in last_row(tmux.screen())
    body = log_pane(tmux.screen())
    assert any(re.match(r"^\d\d:\d\d:\d\d\.\d{3} (Greeting|Worker)\.\d", r) for r in body), body
    # The help overlay fits too.
    tmux.send("?")
    tmux.wait(lambda s: "Keys" in s and "scale the selected service" in s, 5, "the key help at 80x24")
    tmux.send("Escape")
    tmux.wait(lambda s: "Keys" not in s, 5, "the help to close")
    # Back to 120x40: the table has room for every row again.
    tmux.resize(120, 40)
    tmux.wait(lambda s: len(table(s)) == 7 and len(s.split("\n")[0]) > 80, 5, "the 120x40 layout")
    tmux.send("q")
    assert exit_status(tmux) == 0


# ---------------------------------------------------------------- logs, traces, search

def test_t_on_a_line_shows_only_its_trace(project, tmux):
    project.write(TRACE_CONFIG, {"trace.sh": TRACE_SH})
    node = project.up("--no-tui")
    require_tail_stream(project)
    node.wait_log(lambda r: r["text"].startswith("greeted n=12 "), 20, "request 12 through all three")
    start_tui(tmux, project)
    tmux.wait(lambda s: "trace_id=tr0" in s, 10, "traced lines in the log pane")
    # Find Greeting's line of request 5, select it (the search does), then t.
    tmux.send("/")
    tmux.type("greeting n=5 trace_id")
    tmux.send("Enter")
    tmux.wait(lambda s: "PAUSED" in s and "/greeting n=5 trace_id" in s, 5, "the search to pause on the line")
    assert any("greeting n=5 trace_id=tr005" in r for r in selected_rows(tmux.screen_ansi()))
    tmux.send("t")

    def trace_view(screen):
        # Done once every row of the pane is a trace row ("+ N ms ..."): a capture taken while
        # curses is still redrawing shows the new title over some rows of the old log.
        body = log_pane(screen)
        rows = [r for r in body if r.strip()]
        if " Trace tr005" not in screen or "loading" in screen or len(rows) < 3:
            return None
        if not all(re.match(r"^\+\s*[\d.]+ ms", r) for r in rows):
            return None
        return body
    body = tmux.wait(trace_view, 10, "the trace view of tr005")
    lines = [r for r in body if r.strip()]
    assert len(lines) == 3, lines
    assert all("trace_id=tr005" in r for r in lines), lines
    # time order with relative milliseconds: Web first, then Greeting, then Listen
    assert [re.search(r"(Web|Greeting|Listen)\.0", r).group(1) for r in lines] == ["Web", "Greeting", "Listen"]
    offsets = [float(re.match(r"^\+\s*([\d.]+) ms", r).group(1)) for r in lines]
    assert offsets[0] == 0.0 and offsets == sorted(offsets), lines
    title = next(r for r in tmux.screen().split("\n") if r.startswith(" Trace tr005"))
    assert "3 lines" in title and re.search(r"Web\W+Greeting\W+Listen", title), title
    # Esc: back to every line, tr005 among others.
    tmux.send("Escape")
    tmux.wait(lambda s: " Logs" in s and "trace_id=tr0" in s and " Trace " not in s, 5, "the log pane again")
    # t on a line without a trace asks for one; typing it works the same.
    tmux.send("End", "/")
    tmux.type("housekeeping")
    tmux.send("Enter")
    tmux.wait(lambda s: any("housekeeping" in r for r in selected_rows(s)), 5, "a line without a trace selected",
              ansi=True)
    tmux.send("t")
    tmux.wait_text("trace id: ", 5)
    tmux.type("tr007")
    tmux.send("Enter")
    body = tmux.wait(lambda s: (lambda b: b if " Trace tr007" in s and len([r for r in b if r.strip()]) == 3
                                else None)(log_pane(s)), 10, "the trace view of tr007")
    assert all("trace_id=tr007" in r for r in body if r.strip()), body
    tmux.send("Escape", "q")
    assert exit_status(tmux) == 0


def test_search_finds_highlights_and_steps(project, tmux):
    project.write(TRACE_CONFIG, {"trace.sh": TRACE_SH})
    node = project.up("--no-tui")
    require_tail_stream(project)
    node.wait_log(lambda r: r["text"].startswith("housekeeping n=14 "), 20, "two housekeeping lines")
    start_tui(tmux, project)
    tmux.wait(lambda s: "housekeeping n=7 " in s or "housekeeping" in s, 10, "lines in the pane")
    tmux.send("/")
    tmux.type("HOUSEKEEPING")  # case-insensitive
    tmux.send("Enter")
    tmux.wait(lambda s: "PAUSED" in s and "/HOUSEKEEPING" in s, 5, "the search to apply")
    ansi = tmux.wait(lambda s: s if highlighted(s, "housekeeping") else None, 5,
                     "the match highlighted", ansi=True)
    first = [r for r in selected_rows(ansi) if "housekeeping" in r]
    assert len(first) == 1, selected_rows(ansi)
    # n: the next older match; N: back to the newer one. (Rows start with their time.)
    tmux.send("n")
    older = tmux.wait(lambda s: [r for r in selected_rows(s) if "housekeeping" in r and r != first[0]],
                      5, "n to select an older match", ansi=True)
    assert older[0][:12] <= first[0][:12], (older, first)
    tmux.send("N")
    tmux.wait(lambda s: selected_rows(s) == first, 5, "N to go back to the newer match", ansi=True)
    # Not found: a message, nothing moves.
    tmux.send("/")
    tmux.type("no-such-text-anywhere")
    tmux.send("Enter")
    tmux.wait_text("not found: no-such-text-anywhere", 5)
    # End resumes the live view; Esc clears the search.
    tmux.send("End")
    tmux.wait(lambda s: "LIVE" in s, 5, "the live view")
    tmux.send("Escape")
    tmux.wait(lambda s: "/no-such" not in s and "filters cleared" in s, 5, "the search cleared")
    tmux.send("q")
    assert exit_status(tmux) == 0


def test_service_and_level_filters(project, tmux):
    project.write(TRACE_CONFIG, {"trace.sh": TRACE_SH})
    node = project.up("--no-tui")
    require_tail_stream(project)
    node.wait_log(lambda r: r["text"].startswith("greeted n=3 "), 20, "a few requests")
    start_tui(tmux, project)
    tmux.wait(lambda s: "Listen.0" in "".join(log_pane(s)), 10, "Listen lines")
    # s in the table pane: only the selected row's service (Web is the first row).
    tmux.send("Tab", "Home", "s")

    def only_web(screen):
        body = [r for r in log_pane(screen) if r.strip()]
        return body if "only Web" in screen and len(body) > 2 and all(" Web.0 " in r for r in body) else None
    tmux.wait(only_web, 10, "only Web's lines")
    tmux.send("s")
    tmux.wait(lambda s: "only Web" not in s and "Greeting.0" in "".join(log_pane(s)), 10, "every service again")
    # l: at least debug hides the lines without a level (all the services'); the node's own stay
    tmux.send("l")

    def node_lines_only(screen):
        body = [r for r in log_pane(screen) if r.strip()]
        return "level>=debug" in screen and body and all(" devnode " in r for r in body)
    tmux.wait(node_lines_only, 10, "the level filter")
    tmux.send("Escape")
    tmux.wait(lambda s: "level>=" not in s and "Web.0" in "".join(log_pane(s)), 10, "filters cleared")
    tmux.send("q")
    assert exit_status(tmux) == 0


ESCAPES_SH = r"""
printf 'evil \033[2J\033[H\033]0;pwned-title\007\033[31mred\033[0m \033[?1049l\033c tail-marker\n'
printf 'bell \007 and backspace \010 and cr \r end-marker\n'
exec sleep 1000
"""


def test_escape_sequences_from_children_never_reach_the_terminal(project, tmux):
    project.write("instances:\n    Evil:\n        command: sh evil.sh\n", {"evil.sh": ESCAPES_SH})
    node = project.up("--no-tui")
    require_tail_stream(project)
    node.wait_log(lambda r: "end-marker" in r["text"], 15, "the evil lines")
    start_tui(tmux, project)
    screen = tmux.wait(lambda s: s if "tail-marker" in s and "end-marker" in s else None, 10, "the evil lines shown")
    row = next(r for r in screen.split("\n") if "tail-marker" in r)
    assert re.search(r"Evil\.0 +. evil red  tail-marker$", row), row
    assert tmux.pane_title() != "pwned-title"
    # still the dashboard: nothing cleared it or left its screen
    assert screen.startswith(" devnode ") and "? help" in last_row(screen)
    ansi_row = next(r for r in tmux.screen_ansi().split("\n") if "tail-marker" in r)
    assert not re.search(r"\x1b\[[0-9;]*31[;m][^\x1b]*red", ansi_row), repr(ansi_row)
    tmux.send("q")
    assert exit_status(tmux) == 0


def test_no_color_keeps_it_usable(project, tmux):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    node = project.up("--no-tui")
    node.wait_running("Greeting", 3)
    start_tui(tmux, project, env_prefix="NO_COLOR=1 ")
    ansi = tmux.wait(lambda s: s if len(table(strip_sgr(s))) == 7 else None, 10, "the table", ansi=True)
    colours = [p for seq in re.findall(r"\x1b\[([0-9;:]*)m", ansi) for p in seq.split(";")
               if re.fullmatch(r"3[0-7]|4[0-7]|9[0-7]|38|48", p)]
    assert colours == [], colours[:10]
    assert "7" in [p for seq in re.findall(r"\x1b\[([0-9;:]*)m", ansi) for p in seq.split(";")]  # reverse bars
    tmux.send("q")
    assert exit_status(tmux) == 0


# ---------------------------------------------------------------- attaching and detaching

def test_q_detaches_node_keeps_running_and_terminal_is_clean(project, tmux):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    node = project.up("--no-tui")
    node.wait_running("Greeting", 3)
    tmux.command("echo before-tui")
    pid = start_tui(tmux, project)
    # a second dashboard on the same node, in another window, at the same time
    tmux.run("new-window", "-d", "-t", "main", f"{DEVNODE} top -c {project.config_path}")
    wait_for(lambda: "Greeting.0" in tmux.run("capture-pane", "-p", "-t", "main:1").stdout, 10,
             "the second dashboard (devnode top) to show the table")
    tmux.send("q")
    assert exit_status(tmux) == 0
    tmux.wait_prompt()
    wait_for(lambda: not pid_alive(pid), 5, "devnode tui to exit")
    screen = tmux.screen()
    # The shell's screen is back as it was: no table, no log pane, no stray escape output.
    assert "before-tui" in screen and "tui-exit=0" in screen, screen
    assert "NAME" not in screen and " Logs" not in screen and "\x1b" not in screen, screen
    # The terminal is in its normal modes: typed text echoes and a command runs.
    tmux.command("stty -a | tr ' ' '\\n' | grep -x -e echo -e icanon -e -echo -e -icanon | sort | tr '\\n' ,; echo")
    tmux.wait(lambda s: "echo,icanon," in s, 5, "echo and icanon back on")
    tmux.wait_prompt()
    assert node.alive()
    assert node.service("Greeting")["running"] == 3
    assert "Greeting.0" in tmux.run("capture-pane", "-p", "-t", "main:1").stdout  # the other one still runs


@pytest.mark.parametrize("sig,status", [(signal.SIGTERM, 0), (signal.SIGINT, 0), (signal.SIGHUP, 0),
                                        (signal.SIGSEGV, 128 + signal.SIGSEGV)])
def test_signals_restore_the_terminal(project, tmux, sig, status):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    node = project.up("--no-tui")
    node.wait_running("Greeting", 3)
    tmux.command("echo before-tui")
    pid = start_tui(tmux, project)
    os.kill(pid, sig)
    assert exit_status(tmux) == status
    tmux.wait_prompt()
    screen = tmux.screen()
    assert "before-tui" in screen and "NAME" not in screen and " Logs" not in screen, screen
    tmux.command("stty -a | tr ' ' '\\n' | grep -x -e echo -e icanon -e -echo -e -icanon | sort | tr '\\n' ,; echo")
    tmux.wait(lambda s: "echo,icanon," in s, 5, "echo and icanon back on")
    assert node.alive()


def test_node_stopping_ends_the_dashboard(project, tmux):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    node = project.up("--no-tui")
    node.wait_running("Greeting", 3)
    start_tui(tmux, project)
    node.stop()
    assert exit_status(tmux, timeout=20) == 0
    tmux.wait_text("the node stopped")
    tmux.wait_prompt()


def test_without_a_node_or_a_terminal(project):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    r = project.cli("tui")
    assert r.returncode == 1, r
    assert r.stderr.count("\n") == 1 and "no node running" in r.stderr, r.stderr
    assert r.stdout == ""
    node = project.up("--no-tui")
    node.wait_running("Greeting", 3)
    for cmd in ("tui", "top"):
        r = project.cli(cmd)
        assert r.returncode == 2, r
        assert r.stderr.strip() == f"devnode: devnode {cmd} needs a terminal; use devnode tail", r.stderr
    r = project.cli("tui", "--color=sometimes")
    assert r.returncode == 2 and "--color" in r.stderr


# ---------------------------------------------------------------- input rate

BURST_CONFIG = """\
instances:
    Burst:
        command: {burst} 200000 b
        numprocesses: 0
        restart: never
    Ticker:
        command: sh ticker.sh
"""


def test_keys_answer_within_a_second_during_a_burst(project, tmux):
    from conftest import BURST
    project.write(BURST_CONFIG.format(burst=BURST), {"ticker.sh": TICKER_SH})
    node = project.up("--no-tui")
    require_tail_stream(project)
    node.wait_running("Ticker", 1)
    pid = start_tui(tmux, project)
    tmux.wait(lambda s: "tick Ticker.0" in s, 10, "the ticker's lines")
    r = node.cli("scale", "Burst", "8")
    assert r.returncode == 0, r.stderr

    def writers_running():
        insts = node.service("Burst")["instances"]
        return sum(1 for i in insts if i["state"] == "running")
    wait_for(writers_running, 10, "the burst writers to run")
    # The key goes in while the writers still write (the burst lasts a second or two).
    t0 = time.monotonic()
    tmux.send("?")
    tmux.wait(lambda s: "Keys" in s, 1.0, "? to take effect within a second during the burst")
    latencies = [time.monotonic() - t0]
    t0 = time.monotonic()
    tmux.send("Escape")
    tmux.wait(lambda s: "Keys" not in s, 1.0, "Escape to take effect within a second during the burst")
    latencies.append(time.monotonic() - t0)
    assert max(latencies) < 1.0, latencies
    tmux.wait(lambda s: "burst b " in s, 20, "burst lines in the dashboard")
    # Still following: the newest burst lines arrive, the header keeps refreshing.
    def all_exited(screen):
        return table(screen).get("Burst", [])[:2] == ["completed", "0/8"]
    tmux.wait(all_exited, 120, "every burst writer to finish")
    tmux.wait(lambda s: re.search(r"burst b 199999 ", s) or "tick Ticker.0" in "".join(log_pane(s)[-3:]), 30,
              "the dashboard to catch up with the newest lines")
    assert pid_alive(pid)
    tmux.send("q")
    assert exit_status(tmux) == 0


# ---------------------------------------------------------------- devnode up in a terminal

def test_devnode_up_in_a_terminal_shows_the_dashboard_and_q_y_stops(project):
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    tmux = Tmux(120, 40, env=project.node_env(), cwd=project.dir)
    try:
        tmux.command(f"{DEVNODE} up -c {project.config_path}; echo up-exit=$?")
        screen = tmux.wait(lambda s: s if (" Logs" in s and s.startswith(" devnode ")) or
                           re.search(r"\| tick Greeting", s) else None, 15, "devnode up's output")
        if " Logs" not in screen:
            tmux.send("C-c")
            tmux.wait(lambda s: "up-exit=" in s, 20, "devnode up to stop")
            pytest.skip("devnode up in a terminal still prints plain lines (dashboard not wired into up)")
        tmux.wait(lambda s: len(table(s)) == 7 and "5/5 running" in s, 15, "the table in devnode up")
        tmux.send("q")
        tmux.wait_text("Stop the node and every service? [y/N]", 5)
        tmux.send("n")
        tmux.wait(lambda s: "Stop the node" not in s and "? help" in last_row(s), 5, "n to cancel")
        assert tmux.screen().startswith(" devnode ")
        tmux.send("q")
        tmux.wait_text("Stop the node and every service? [y/N]", 5)
        tmux.send("y")
        m = tmux.wait(lambda s: re.search(r"up-exit=(\d+)", s), 30, "devnode up to exit")
        assert m.group(1) == "0"
        tmux.wait_prompt()
        screen = tmux.screen()
        assert "NAME" not in screen and " Logs" not in screen and "\x1b" not in screen, screen
        assert project.cli("status").returncode == 1
    finally:
        tmux.kill()


# ---------------------------------------------------------------- odd nodes

def test_a_node_without_the_tail_stream_still_shows_the_table(project, tmux):
    from tuihelpers import FakeNode
    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    fake = FakeNode(project)
    try:
        start_tui(tmux, project)
        screen = tmux.wait(lambda s: s if "log stream unavailable: unknown message type 'tail'" in s
                           and table(s).get("Fake.0", [])[:1] == ["running"] else None, 10,
                           "the stream error in the log pane and the table")
        assert "1 service, 1/1 running" in screen.split("\n")[0]
        tmux.send("t")  # no lines: t asks for a trace id; the view works from what it has
        tmux.wait_text("trace id: ", 5)
        tmux.type("abc")
        tmux.send("Enter")
        tmux.wait(lambda s: " Trace abc" in s and "no line of this trace is known" in s, 5, "an empty trace view")
        tmux.send("Escape", "q")
        assert exit_status(tmux) == 0
        assert not any(t == "tail_renew" for t, _ in fake.received)  # no renewals for a refused stream
    finally:
        fake.close()


def test_malformed_lines_from_the_node_are_dropped(project, tmux):
    from tuihelpers import FakeNode

    def on_tail(fake, ident, body):
        good = {"seq": 1, "wall_ns": time.time_ns(), "service": "Fake", "instance": 0, "pid": 1, "stream": "stdout",
                "level": None, "trace_id": "ok1", "text": "a good line trace_id=ok1", "split": False,
                "unterminated": False}
        bad = [{"seq": "x"}, "not a map", {**good, "stream": "nowhere"}, {**good, "trace_id": "bad id!"},
               {**good, "text": 12}, {**good, "instance": -7}]
        fake.send(ident, "lines", {"id": body["id"], "lines": bad + [good], "skipped": 0})
        fake.send(ident, "lines", {"id": body["id"], "lines": "not a list", "skipped": "many"})
        fake.send(ident, "lines", {"id": 999, "lines": [dict(good, text="from another subscription")]})
        fake.send(ident, "status", {"id": 5, "node": "nonsense"})
        fake.sock.send_multipart([ident, b"2", b"lines", b"\xc1garbage"])
        fake.sock.send_multipart([ident, b"1", b"lines"])

    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    fake = FakeNode(project, on_tail=on_tail)
    try:
        pid = start_tui(tmux, project)
        screen = tmux.wait(lambda s: s if "a good line trace_id=ok1" in s else None, 10, "the good line")
        body = [r for r in log_pane(screen) if r.strip()]
        assert len(body) == 1, body
        assert "from another subscription" not in screen
        assert table(screen).get("Fake.0", [])[:1] == ["running"]
        assert pid_alive(pid)
        tmux.send("q")
        assert exit_status(tmux) == 0
    finally:
        fake.close()


def fake_line(seq, text, trace_id=None):
    return {"seq": seq, "wall_ns": time.time_ns(), "service": "Fake", "instance": 0, "pid": 1, "stream": "stdout",
            "level": None, "trace_id": trace_id, "text": text, "split": False, "unterminated": False}


def test_a_trace_fetch_the_node_never_answers_ends_with_a_message(project, tmux):
    from tuihelpers import FakeNode

    def on_tail(fake, ident, body):
        if body.get("follow"):
            fake.send(ident, "lines", {"id": body["id"], "lines": [], "skipped": 0})
        # the trace fetch: no answer at all

    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    fake = FakeNode(project, on_tail=on_tail)
    try:
        pid = start_tui(tmux, project)
        tmux.wait(lambda s: table(s).get("Fake.0", [])[:1] == ["running"], 10, "the table")
        tmux.send("t")
        tmux.wait_text("trace id: ", 5)
        tmux.type("abc")
        tmux.send("Enter")
        tmux.wait(lambda s: " Trace abc" in s and "loading" in s, 5, "the trace view loading")
        screen = tmux.wait(lambda s: s if "trace: the node did not answer the tail request within 5000 ms" in s
                           else None, 10, "the unanswered fetch reported")
        assert "loading" not in screen
        fetches = [b for t, b in fake.received if t == "tail" and b.get("trace") == "abc"]
        assert len(fetches) == 1 and fetches[0]["follow"] is False, fetches
        assert pid_alive(pid)
        tmux.send("Escape", "q")
        assert exit_status(tmux) == 0
    finally:
        fake.close()


def test_a_dropped_log_stream_is_followed_again_without_repeating_lines(project, tmux):
    from tuihelpers import FakeNode
    asked = []

    def on_tail(fake, ident, body):
        asked.append(body)
        if len(asked) == 1:
            fake.send(ident, "lines", {"id": body["id"], "lines": [fake_line(1, "first line"),
                                                                   fake_line(2, "second line")], "skipped": 0})
            # as a node answers a renewal of a subscription it forgot (the client was stopped)
            fake.send(ident, "error", {"id": body["id"], "message": "tail_renew: unknown subscription"})
        else:
            fake.send(ident, "lines", {"id": body["id"], "lines": [fake_line(2, "second line"),
                                                                   fake_line(3, "third line")], "skipped": 0})

    project.write(TABLE_CONFIG, {"ticker.sh": TICKER_SH})
    fake = FakeNode(project, on_tail=on_tail)
    try:
        start_tui(tmux, project)
        screen = tmux.wait(lambda s: s if "third line" in s else None, 10, "the lines of the new subscription")
        body = [r for r in log_pane(screen) if r.strip()]
        assert [r for r in body if "line" in r and ("first" in r or "second" in r or "third" in r)] == body, body
        assert len(body) == 3 and "first line" in body[0] and "second line" in body[1], body
        assert len(asked) == 2 and asked[1]["id"] != asked[0]["id"] and asked[1]["follow"] is True, asked
        assert asked[1]["backlog"] == asked[0]["backlog"] == 5000
        assert "log stream unavailable" not in screen
        tmux.send("q")
        assert exit_status(tmux) == 0
    finally:
        fake.close()
