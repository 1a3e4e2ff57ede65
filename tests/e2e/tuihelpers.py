"""Helpers for the dashboard tests: a private tmux server (its own -L socket, killed in
teardown) running a shell in which the tests type `devnode tui` like a user would, screen
captures (plain and with SGR attributes) polled with deadlines, parsers for the process
table and the selected row, and a check whether the node answers the tail stream."""
import os
import re
import shutil
import subprocess
import time
import uuid

import msgpack
import pytest
import zmq

from conftest import DEVNODE, base_env, pid_alive, wait_for

PROMPT = "tui-test$ "
SGR_RE = re.compile(r"\x1b\[([0-9;:]*)m")
ESC_RE = re.compile(r"\x1b\[[0-9;:?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b.")


class Tmux:
    """One tmux server on a private socket with one session running bash."""

    def __init__(self, width=120, height=40, env=None, cwd=None):
        if not shutil.which("tmux"):
            pytest.skip("tmux is not installed")
        self.socket = f"devnode-test-{uuid.uuid4().hex[:12]}"
        self.width, self.height = width, height
        env = dict(env if env is not None else base_env())
        env.update({"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PS1": PROMPT, "HISTFILE": "/dev/null",
                    "PATH": f"{DEVNODE.parent}:{env.get('PATH', '/usr/bin:/bin')}"})
        env.pop("TMUX", None)
        self.env = env
        self.run("-f", "/dev/null", "new-session", "-d", "-s", "main", "-x", str(width), "-y", str(height),
                 "-c", str(cwd or os.getcwd()), f"exec env PS1='{PROMPT}' bash --norc --noprofile -i")
        self.run("set-option", "-g", "status", "off")  # the pane is the whole window
        self.wait_prompt()

    def run(self, *args, check=True, timeout=10):
        r = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, env=self.env,
                           timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
        return r

    # -- input
    def send(self, *keys):
        """Keys in tmux's send-keys syntax (Enter, Escape, Up, Tab, PPage, ...) or literal words."""
        for key in keys:
            if key == "-":  # would read as an option
                self.run("send-keys", "-t", "main", "-H", "2d")
            else:
                self.run("send-keys", "-t", "main", key)

    def type(self, text):
        self.run("send-keys", "-t", "main", "-l", text)

    def command(self, line):
        self.type(line)
        self.send("Enter")

    def resize(self, width, height):
        self.width, self.height = width, height
        self.run("resize-window", "-t", "main", "-x", str(width), "-y", str(height))

    # -- output
    def screen(self):
        """The visible pane as text, one string per row (trailing blanks dropped by tmux)."""
        return self.run("capture-pane", "-p", "-t", "main").stdout

    def screen_ansi(self):
        return self.run("capture-pane", "-p", "-e", "-t", "main").stdout

    def rows(self):
        return self.screen().split("\n")[:self.height]

    def wait(self, predicate, timeout=15, what="the screen to match", ansi=False):
        """Polls the screen until predicate(screen) is truthy; returns that value."""
        last = {"screen": ""}

        def check():
            text = self.screen_ansi() if ansi else self.screen()
            last["screen"] = text
            return predicate(text)
        return wait_for(check, timeout, lambda: f"{what}; screen:\n{strip_sgr(last['screen'])}", interval=0.05)

    def wait_text(self, text, timeout=15):
        return self.wait(lambda s: text in s, timeout, f"{text!r} on the screen")

    def wait_prompt(self, timeout=15):
        """Waits until the last non-empty row is the shell prompt, waiting for input."""
        return self.wait(lambda s: last_row(s) == PROMPT.rstrip(), timeout, "the shell prompt")

    def pane_pid(self):
        return int(self.run("display-message", "-p", "-t", "main", "#{pane_pid}").stdout.strip())

    def pane_title(self):
        return self.run("display-message", "-p", "-t", "main", "#{pane_title}").stdout.strip()

    def foreground_pids(self):
        """Children of the pane's shell (what the shell runs now)."""
        shell = self.pane_pid()
        kids = []
        try:
            for tid in os.listdir(f"/proc/{shell}/task"):
                with open(f"/proc/{shell}/task/{tid}/children") as f:
                    kids.extend(int(x) for x in f.read().split())
        except OSError:
            pass
        return kids

    def kill(self):
        """Ends the server and waits for what ran in the pane to be gone."""
        try:
            server = int(self.run("display-message", "-p", "#{pid}").stdout.strip())
            pids = [server, self.pane_pid(), *self.foreground_pids()]
        except Exception:
            pids = []
        self.run("kill-server", check=False)
        try:
            wait_for(lambda: not any(pid_alive(p) for p in pids), 10, "the tmux pane's processes to end")
        except AssertionError:
            for p in pids:
                try:
                    os.kill(p, 9)
                except OSError:
                    pass


def strip_sgr(text):
    return ESC_RE.sub("", text)


def last_row(screen):
    rows = [r for r in screen.split("\n") if r.strip()]
    return rows[-1].rstrip() if rows else ""


def start_tui(tmux, project, *args, env_prefix=""):
    """Types `devnode tui -c CONFIG ARGS; echo tui-exit=$?` and waits for the dashboard."""
    cmd = f"{env_prefix}{DEVNODE} tui -c {project.config_path}"
    if args:
        cmd += " " + " ".join(args)
    tmux.command(cmd + "; echo tui-exit=$?")
    # up, and the first status reply is in (the table has rows): keys may act on them now
    tmux.wait(lambda s: s.startswith(" devnode ") and " Logs" in s and table(s), 15, "the dashboard to start")
    return wait_for(lambda: tui_pid(tmux), 5, "the devnode tui process")


def tui_pid(tmux):
    for p in tmux.foreground_pids():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[0].endswith(b"devnode") and argv[1] in (b"tui", b"top", b"up"):
            return p
    return None


# ---------------------------------------------------------------- the process table

TABLE_ROW_RE = re.compile(r"^(?:\S )?\s*(\S+)\s+(starting|running|backoff|stopping|stopped|exited|failed|waiting|completed|disabled|-)\b(.*)$")


def table(screen):
    """{name: [state, rest tokens...]} for every table row ("Web" and "Web.0" alike)."""
    rows = {}
    for line in screen.split("\n")[2:]:
        if line.startswith(" Logs") or line.startswith(" Trace"):
            break
        m = TABLE_ROW_RE.match(line)
        if m:
            rows[m.group(1)] = [m.group(2), *m.group(3).split()]
    return rows


def log_pane(screen):
    """The rows of the log pane (below its title bar, above the status line)."""
    lines = screen.split("\n")
    for i, line in enumerate(lines):
        if line.startswith(" Logs") or line.startswith(" Trace"):
            body = lines[i + 1:]
            while body and not body[-1].strip():
                body.pop()
            return body[:-1]  # the last row is the status line
    return []


def sgr_params(seq_params):
    return [p for p in re.split(r"[;:]", seq_params) if p]


def selected_rows(ansi_screen):
    """Rows drawn in reverse video from their first cell (the selected row of the focused pane)."""
    out = []
    for line in ansi_screen.split("\n"):
        m = SGR_RE.match(line)
        if m and "7" in sgr_params(m.group(1)):
            out.append(strip_sgr(line))
    return out


def highlighted(ansi_screen, text):
    """True if `text` appears right after an SGR that sets reverse video or a yellow background."""
    pattern = re.compile(r"((?:\x1b\[[0-9;:]*m)+)" + re.escape(text))
    for m in pattern.finditer(ansi_screen):
        params = [p for seq in SGR_RE.findall(m.group(1)) for p in sgr_params(seq)]
        if "7" in params or "43" in params:
            return True
    return False


# ---------------------------------------------------------------- the node's tail stream

def tail_stream_available(project):
    """Whether the node answers `tail` (the log stream the dashboard shows)."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    try:
        sock.connect((project.run_dir / "endpoint").read_text().strip())
        sock.send_multipart([b"1", b"tail", msgpack.packb({"id": 7, "backlog": 0, "follow": False})])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not sock.poll(500):
                continue
            _, type_, body = sock.recv_multipart()
            body = msgpack.unpackb(body)
            if body.get("id") != 7:
                continue
            if type_ == b"error":
                return "unknown message type" not in body.get("message", "")
            return True
        return False
    finally:
        sock.close()
        ctx.term()


def require_tail_stream(project):
    if not tail_stream_available(project):
        pytest.skip("tail stream not landed")


# ---------------------------------------------------------------- a fake node

class FakeNode:
    """Just enough of a node for the dashboard: holds the run dir's lock, publishes an ipc
    endpoint and answers `status` from a thread. `tail` gets what `on_tail(sock, ident, body)`
    does (by default the error an old node without the tail stream gives). Every message it
    received is kept in `received`."""

    def __init__(self, project, on_tail=None):
        import fcntl
        import threading
        self.project = project
        self.on_tail = on_tail
        self.received = []
        project.run_dir.mkdir(mode=0o700, exist_ok=True)
        self.lock = open(project.run_dir / "node.lock", "w")
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        self.lock.write(str(os.getpid()))
        self.lock.flush()
        self.endpoint = f"ipc://{project.run_dir}/fake.sock"
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.linger = 0
        self.sock.bind(self.endpoint)
        (project.run_dir / "endpoint").write_text(self.endpoint + "\n")
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def status_body(self, id_):
        inst = {"index": 0, "state": "running", "pid": os.getpid(), "restarts": 0, "uptime_ms": 5000,
                "cpu_percent": 0.0, "rss_kib": 1000, "last_exit": None, "failure": None, "command": "fake"}
        return {"id": id_, "node": {"pid": os.getpid(), "endpoint": self.endpoint, "config": "fake",
                                    "run_dir": str(self.project.run_dir), "uptime_ms": 5000, "cpu_percent": 0.0,
                                    "rss_kib": 1000, "stopping": False, "malformed_messages": 0},
                "services": [{"name": "Fake", "desired": 1, "running": 1, "instances": [inst]}]}

    def send(self, ident, type_, body):
        self.sock.send_multipart([ident, b"1", type_.encode(), msgpack.packb(body)])

    def _serve(self):
        while not self.stopping:
            if not self.sock.poll(100):
                continue
            frames = self.sock.recv_multipart()
            if len(frames) != 4:
                continue
            ident, _, type_, body = frames
            body = msgpack.unpackb(body)
            self.received.append((type_.decode(), body))
            if type_ == b"status":
                self.send(ident, "status", self.status_body(body.get("id")))
            elif type_ == b"tail" and self.on_tail:
                self.on_tail(self, ident, body)
            elif type_ in (b"tail_renew", b"untail") and self.on_tail:
                pass
            else:
                self.send(ident, "error", {"id": body.get("id"),
                                           "message": f"unknown message type '{type_.decode()}'"})

    def close(self):
        self.stopping = True
        self.thread.join(5)
        self.sock.close()
        self.ctx.term()
        self.lock.close()
