"""Shared machinery for the end-to-end tests: they drive the real `devnode` binary.

Every test gets a temporary project dir and a unique marker that the node (and so every
worker, grandchild and daemon it starts) carries in its environment as
DEVNODE_TEST_MARKER. Teardown stops the node, kills its process group and then every
process still carrying the marker; a test that passed fails in teardown if anything was
left behind. Synchronisation is always `wait_for` on a condition, never a bare sleep.
"""
import json
import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# DEVNODE_BIN runs the suite on another build of the node, e.g. the ASan+UBSan one of
# `make e2e-asan` (build/asan/devnode); base_env drops every DEVNODE_* variable, so no
# process the tests start sees it.
DEVNODE = Path(os.environ.get("DEVNODE_BIN") or ROOT / "devnode").resolve()
BURST = ROOT / "build" / "helpers" / "burst"
PYTHON = "/usr/bin/python3"

# Variables of the test runner's own environment that would change what devnode does.
_SCRUBBED = ("LYMPH_CONFIG", "LYMPH_VARS", "NO_COLOR", "TERM", "DEVNODE_TEST_MARKER")


def base_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith("DEVNODE_")}
    env.update({k: str(v) for k, v in extra.items()})
    return env


# A sanitizer's report on stderr: UBSan's "file:line:col: runtime error: ..." or ASan/LSan's
# "==PID==ERROR: ...Sanitizer" (at the start of a line: a worker's line in the node's output
# carries a time and a name first).
SANITIZER_STDERR = re.compile(r"^(\S+:\d+:\d+: runtime error: .*|==\d+==(ERROR|WARNING): \w+Sanitizer.*)$", re.M)


def sanitizer_lines(text):
    return [m.group(0) for m in SANITIZER_STDERR.finditer(text or "")]


class WaitTimeout(AssertionError):
    pass


def wait_for(predicate, timeout, what, interval=0.02):
    """Polls `predicate` until it returns something truthy and returns that value.

    Raises WaitTimeout naming `what` (a string, or a callable giving a string for the
    diagnostic at the time of failure) and the last value or exception seen."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = predicate()
            if last:
                return last
        except AssertionError:
            raise
        except Exception as exc:  # a transient failure (file not there yet, node busy)
            last = exc
        if time.monotonic() >= deadline:
            desc = what() if callable(what) else what
            raise WaitTimeout(f"timed out after {timeout:.1f}s waiting for {desc}; last result: {last!r}")
        time.sleep(interval)


# ---------------------------------------------------------------- processes

def pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3]
    return state not in (b"Z", b"X")


def proc_environ(pid):
    with open(f"/proc/{pid}/environ", "rb") as f:
        raw = f.read()
    env = {}
    for item in raw.split(b"\0"):
        if b"=" in item:
            k, _, v = item.partition(b"=")
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env


def proc_cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def proc_children(pid):
    kids = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                kids.extend(int(x) for x in f.read().split())
    except OSError:
        pass
    return kids


def marked_pids(marker):
    """Live (non-zombie) processes whose environment carries DEVNODE_TEST_MARKER=marker."""
    needle = b"DEVNODE_TEST_MARKER=" + marker.encode() + b"\0"
    found = []
    me = os.getpid()
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                raw = f.read() + b"\0"
        except OSError:
            continue
        if needle in raw and pid_alive(int(name)):
            found.append(int(name))
    return sorted(found)


def describe_pids(pids):
    return ", ".join(f"{p} ({proc_cmdline(p)})" for p in pids) or "none"


def kill_marked(marker):
    for _ in range(20):
        pids = marked_pids(marker)
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            wait_for(lambda: not any(pid_alive(p) for p in pids), 5, "SIGKILLed leftovers to die")
        except WaitTimeout:
            pass


# ---------------------------------------------------------------- the log file

class LogReader:
    """Follows `.devnode/logs/devnode.jsonl` like `tail -F`: only new complete lines are parsed,
    and when the node rotates the file the rest of the old one is read before the new one."""

    def __init__(self, path, skip_services=()):
        self.path = Path(path)
        self.file = None
        self.partial = b""
        self.records = []
        # Services whose lines are only counted, not kept: a burst of 1.6M records as dicts
        # would take gigabytes of the test runner's memory.
        self.skip = [(name, f',"service":"{name}",'.encode()) for name in skip_services]
        self.skipped = {name: 0 for name in skip_services}

    def _keep(self, line):
        for name, needle in self.skip:
            if needle in line:
                self.skipped[name] += 1
                return False
        return True

    def _read_to_end(self):
        data = self.file.read()
        if not data:
            return
        lines = (self.partial + data).split(b"\n")
        self.partial = lines.pop()
        self.records.extend(json.loads(line) for line in lines if line and self._keep(line))

    def poll(self):
        while True:
            if self.file is None:
                try:
                    self.file = open(self.path, "rb")
                except FileNotFoundError:
                    return
            self._read_to_end()
            try:
                current = os.stat(self.path).st_ino
            except FileNotFoundError:
                return
            if current == os.fstat(self.file.fileno()).st_ino:
                return
            self._read_to_end()  # rotated: finish the old file, then follow the new one
            self.file.close()
            self.file = None
            self.partial = b""

    def close(self):
        if self.file:
            self.file.close()
            self.file = None


def is_node_line(rec, pattern):
    return rec.get("stream") == "node" and re.search(pattern, rec["text"]) is not None


# ---------------------------------------------------------------- the node

class Node:
    """One `devnode up` process of a Project."""

    def __init__(self, project, proc, out_path, marker):
        self.project = project
        self.proc = proc
        self.pid = proc.pid
        self.out_path = out_path
        self.marker = marker
        self.log = LogReader(project.run_dir / "logs" / "devnode.jsonl")

    # -- state
    def alive(self):
        return self.proc.poll() is None

    def output(self):
        try:
            return self.out_path.read_text(errors="replace")
        except (FileNotFoundError, IsADirectoryError, TypeError):
            return ""

    def describe(self):
        return f"node {self.pid} (exit {self.proc.poll()}); output tail:\n{self.output()[-3000:]}"

    def cli(self, *args, timeout=30, check=False):
        return self.project.cli(*args, timeout=timeout, check=check)

    def status(self):
        r = self.cli("status", "--json")
        if r.returncode != 0:
            raise RuntimeError(f"devnode status --json exited {r.returncode}: {r.stderr.strip()}")
        return json.loads(r.stdout)

    def service(self, name, status=None):
        status = status or self.status()
        for s in status["services"]:
            if s["name"] == name:
                return s
        raise KeyError(f"no service {name} in status: {[s['name'] for s in status['services']]}")

    def wait_ready(self, timeout=15):
        def ready():
            if not self.alive():
                raise AssertionError(f"devnode up exited early: {self.describe()}")
            return self.status()
        return wait_for(ready, timeout, lambda: f"node to answer status: {self.describe()}")

    def wait_running(self, service, count, timeout=15):
        """Waits until `service` has `count` instances, all running with a live pid; returns them."""
        def check():
            s = self.service(service)
            insts = s["instances"]
            if s["desired"] != count or s["running"] != count or len(insts) != count:
                return None
            if [i["index"] for i in insts] != list(range(count)):
                return None
            if not all(i["state"] == "running" and i["pid"] and pid_alive(i["pid"]) for i in insts):
                return None
            return (insts,)  # truthy even when count is 0
        def diagnose():
            try:
                return f"{service} to run {count} instances; status: {json.dumps(self.service(service))}"
            except Exception as exc:
                return f"{service} to run {count} instances; status failed ({exc}); {self.describe()}"
        return wait_for(check, timeout, diagnose)[0]

    # -- the log
    def records(self):
        self.log.poll()
        return self.log.records

    def wait_log(self, predicate, timeout=15, what="a matching log record", after_seq=0):
        """Returns the first record (seq > after_seq) matching predicate, waiting for it."""
        def find():
            self.log.poll()
            for rec in self.log.records:
                if rec.get("seq", 0) > after_seq and predicate(rec):
                    return rec
            return None
        return wait_for(find, timeout, lambda: f"{what}; {self.describe()}")

    def wait_node_line(self, pattern, timeout=15, after_seq=0):
        return self.wait_log(lambda r: is_node_line(r, pattern), timeout, f"node line /{pattern}/", after_seq)

    def node_lines(self, pattern=""):
        return [r for r in self.records() if is_node_line(r, pattern)]

    # -- ending
    def wait_exit(self, timeout=20):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise WaitTimeout(f"node {self.pid} still running after {timeout}s; {self.describe()}")

    def stop(self, *args, timeout=30):
        """`devnode stop`; returns (cli result, node exit code)."""
        r = self.cli("stop", *args, timeout=timeout)
        assert r.returncode == 0, f"devnode stop failed ({r.returncode}): {r.stderr}"
        return r, self.wait_exit(timeout)

    def terminate(self):
        """Finalizer path, graceful: SIGTERM and up to 15 s; never raises."""
        if self.proc.poll() is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.proc.wait(15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass

    def kill(self):
        """Finalizer path, forced; never raises."""
        self.log.close()
        # The group holds the node and its guardian (start_new_session: pgid == node pid).
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass


class Project:
    """A temporary project dir with a .lymph.yml, and the nodes started in it."""

    def __init__(self, path, marker):
        self.dir = path
        self.marker = marker
        self.config_path = path / ".lymph.yml"
        self.run_dir = path / ".devnode"
        self.nodes = []
        self.extra_markers = []
        self.sanitizer_lines = []  # from the stderr of the CLI runs (see SANITIZER_STDERR)

    def write(self, config, files=None):
        self.config_path.write_text(config)
        for name, content in (files or {}).items():
            p = self.dir / name
            p.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                p.write_bytes(content)
            else:
                p.write_text(content)
        return self

    def node_env(self, **extra):
        return base_env(DEVNODE_TEST_MARKER=self.marker, **extra)

    def cli(self, *args, timeout=30, check=False, env=None, cwd=None):
        """Runs `devnode CMD -c CONFIG ARGS...` (the CLI itself carries no marker)."""
        cmd = [str(DEVNODE), args[0]]
        if args[0] not in ("help", "--help", "version"):
            cmd += ["-c", str(self.config_path)]
        cmd += [str(a) for a in args[1:]]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           env=env if env is not None else base_env(), cwd=cwd or self.dir,
                           stdin=subprocess.DEVNULL)
        self.sanitizer_lines += [f"devnode {args[0]}: {line}" for line in sanitizer_lines(r.stderr)]
        if check:
            assert r.returncode == 0, f"{cmd} exited {r.returncode}: {r.stderr}"
        return r

    def up(self, *args, env=None, stdout_path=None, wait=True, marker=None, cwd=None):
        """Starts `devnode up` in the project dir (or cwd); stdout/stderr go to a file."""
        out_path = Path(stdout_path) if stdout_path else self.dir / f"node-out-{len(self.nodes)}.txt"
        env = env if env is not None else self.node_env()
        if marker:
            env["DEVNODE_TEST_MARKER"] = marker
            self.extra_markers.append(marker)
        with open(out_path, "wb") as out:
            proc = subprocess.Popen([str(DEVNODE), "up", *map(str, args)], cwd=cwd or self.dir, env=env,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        node = Node(self, proc, out_path, marker or self.marker)
        self.nodes.append(node)
        if wait:
            node.wait_ready()
        return node

    def cleanup(self):
        """Kills everything; returns what was still alive once the nodes were gone."""
        for node in self.nodes:
            node.terminate()
        leftovers = []
        markers = [self.marker, *self.extra_markers]
        for marker in markers:
            try:
                wait_for(lambda: not marked_pids(marker), 5, "workers to die with their node")
            except WaitTimeout:
                leftovers += [(p, proc_cmdline(p)) for p in marked_pids(marker)]
        for node in self.nodes:
            node.kill()
        for marker in markers:
            kill_marked(marker)
        return leftovers


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture(scope="session", autouse=True)
def _binary_built():
    if not os.access(DEVNODE, os.X_OK) or not os.access(BURST, os.X_OK):
        pytest.exit(f"build first: `make all` in {ROOT} (need {DEVNODE} and {BURST})", returncode=2)


# A sanitized devnode (node, CLI, guardian) writes every ASan/LSan report to a file of its own
# (log_path=DIR/report gives report.PID) rather than to a stderr a test may capture, discard or
# expect to be empty; _sanitizer_reports fails the test after which one appeared. A plain build
# ignores these variables. GCC's UBSan runtime ignores log_path and writes to stderr: the project
# fixture scans the nodes' output and its CLI runs' stderr for that (SANITIZER_STDERR), and
# halt_on_error makes the process exit 1, which the tests of a CLI run by hand see.
@pytest.fixture(scope="session", autouse=True)
def _sanitizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("sanitizer")
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        os.environ[var] = ":".join(filter(None, (os.environ.get(var), f"log_path={path}/report")))
    return path


@pytest.fixture(autouse=True)
def _sanitizer_reports(_sanitizer_dir):
    """Autouse fixtures are set up first and torn down last: by then the project's nodes have
    exited (and LSan has looked at them)."""
    before = set(_sanitizer_dir.iterdir())
    yield
    new = sorted(set(_sanitizer_dir.iterdir()) - before)
    if new:
        texts = [f"--- {p.name}\n{p.read_text(errors='replace')[:6000]}" for p in new]
        pytest.fail("sanitizer report(s) from a devnode process:\n" + "\n".join(texts), pytrace=False)


@pytest.fixture
def marker():
    return uuid.uuid4().hex


@pytest.fixture
def project(tmp_path, marker, request):
    proj = Project(tmp_path, marker)
    yield proj
    leftovers = proj.cleanup()
    reports = proj.sanitizer_lines + [f"node {n.pid}: {line}" for n in proj.nodes for line in sanitizer_lines(n.output())]
    if reports:
        pytest.fail("sanitizer report(s) on a devnode process's stderr:\n" + "\n".join(reports), pytrace=False)
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.passed and leftovers:
        pytest.fail(f"processes left running after the test: {leftovers}")



@pytest.fixture
def client(project):
    """make() opens a NodeClient (a DEALER speaking the node's protocol) on the project's node;
    all are closed after the test."""
    from demohelpers import NodeClient  # demohelpers imports this module
    clients = []

    def make():
        c = NodeClient(project)
        clients.append(c)
        return c
    yield make
    for c in clients:
        c.close()


# Real ZooKeeper and RabbitMQ servers (issue 19): session fixtures, started by the first test
# that asks for one and shared by the rest of the run (tests/e2e/backends.py).
from backends import rabbitmq, zookeeper  # noqa: E402,F401
