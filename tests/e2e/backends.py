"""Real ZooKeeper and RabbitMQ servers for the e2e tests (issue 19), as session fixtures.

Each server starts lazily, the first time a test asks for it, once per pytest run, on free
ports of 127.0.0.1 and in a temporary directory of its own; it is shared by every test that
needs it and stopped at the end of the run. Nothing here touches a system ZooKeeper or a
system broker on 5672: RabbitMQ gets its own node name, AMQP, distribution and epmd ports
(epmd is started here, in the foreground, so the broker never spawns a daemon of its own).

A crashed run must leave nothing behind: every process started here dies with the pytest
process (PR_SET_PDEATHSIG) and carries DEVNODE_BACKEND_FIXTURE=<owner pid>:<owner start
time> in its environment; the next run kills whatever carries the tag of a dead owner and
removes that owner's directories before it starts anything.
"""
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

FIXTURE_ENV = "DEVNODE_BACKEND_FIXTURE"
DIR_PREFIX = "devnode-backend-"
ZK_JAR = "/usr/share/java/zookeeper.jar"
RABBITMQ_SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"  # the broker itself, not Debian's su wrapper
JAVA = "/usr/bin/java"

# ZooKeeper clamps a client's session timeout to [2, 20] ticks: 100 ms ticks let a test ask
# for a short session (a killed instance's znode goes in well under a second) and the
# usual ones still fit (maxSessionTimeout below).
ZK_TICK_MS = 100
ZK_MAX_SESSION_MS = 30000


class LineProbe:
    """A probe process that answers each line of words on its stdin with one JSON line (the
    registry probes of the ZooKeeper tests); subclasses read that line their own way."""

    def read(self):
        raise NotImplementedError

    def ask(self, *words):
        self.proc.stdin.write(" ".join(words) + "\n")
        self.proc.stdin.flush()
        return self.read()

    def ok(self, *words):
        answer = self.ask(*words)
        assert answer["ok"], f"{words}: {answer}"
        return answer


class BackendError(RuntimeError):
    pass


# ---------------------------------------------------------------- ownership and sweeping

def _start_time(pid):
    """The kernel's start time of pid (clock ticks since boot), or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[19])


def owner_tag():
    """Names this pytest process in a way a recycled pid cannot imitate."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def _owner_alive(tag):
    pid, _, start = tag.partition(":")
    return pid.isdigit() and str(_start_time(int(pid))) == start


def tagged_pids(tag=None):
    """Live processes carrying FIXTURE_ENV (equal to tag, when given), as {pid: tag}."""
    found = {}
    needle = FIXTURE_ENV.encode() + b"="
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] in (b"Z", b"X"):
            continue
        for item in env:
            if item.startswith(needle):
                value = item[len(needle):].decode(errors="replace")
                if tag is None or value == tag:
                    found[int(name)] = value
    return found


def _kill_and_wait(pids, timeout=10):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:stat.rindex(b")") + 3] not in (b"Z", b"X")


def sweep_orphans():
    """Kills the servers of earlier runs that died without stopping them, removes their dirs."""
    orphans = [pid for pid, tag in tagged_pids().items() if not _owner_alive(tag)]
    _kill_and_wait(orphans)
    tmp = Path(tempfile.gettempdir())
    for d in tmp.glob(DIR_PREFIX + "*"):
        parts = d.name[len(DIR_PREFIX):].split("-")
        if len(parts) >= 2 and not _owner_alive(f"{parts[0]}:{parts[1]}"):
            shutil.rmtree(d, ignore_errors=True)
    return orphans


_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_pytest():
    """preexec_fn: the server gets SIGKILL when the pytest process goes, however it goes."""
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setsid()  # a Ctrl-C at the terminal is pytest's to handle; the fixture stops the server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, timeout, what, proc, out_path):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BackendError(f"{what}: the server exited ({proc.returncode}); output:\n{_tail(out_path)}")
        try:
            if predicate():
                return
        except OSError as exc:
            last = exc
        time.sleep(0.05)
    raise BackendError(f"{what}: not up after {timeout:.0f}s (last: {last!r}); output:\n{_tail(out_path)}")


def _tail(path, n=3000):
    try:
        return Path(path).read_text(errors="replace")[-n:]
    except OSError:
        return "(none)"


class _Server:
    kind = "server"

    def __init__(self):
        self.tag = owner_tag()
        self.dir = Path(tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{self.tag.replace(':', '-')}-{self.kind}-"))
        self.procs = []

    def env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DEVNODE_", "RABBITMQ_", "ERL_"))}
        env[FIXTURE_ENV] = self.tag
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def spawn(self, argv, env, name):
        out = self.dir / f"{name}.out"
        with open(out, "wb") as f:
            proc = subprocess.Popen(argv, env=env, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT, preexec_fn=_die_with_pytest)
        self.procs.append(proc)
        return proc, out

    def stop_proc(self, proc, timeout):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)

    def stop(self):
        for proc in reversed(self.procs):
            self.stop_proc(proc, 30)
        # Whatever the servers started and left (erl_child_setup, a shell of os:cmd): each
        # server leads a session of its own (setsid above), so its session id finds them.
        sessions = {p.pid for p in self.procs}
        _kill_and_wait([pid for pid in tagged_pids(self.tag) if _session(pid) in sessions])
        shutil.rmtree(self.dir, ignore_errors=True)


def _session(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[3])


# ---------------------------------------------------------------- ZooKeeper

class ZooKeeper(_Server):
    """A standalone ZooKeeper (Debian's zookeeper.jar, run by java directly so that the pid
    is the server's), its admin HTTP server off and `ruok` allowed."""
    kind = "zookeeper"

    def start(self, timeout=60):
        self.port = free_port()
        (self.dir / "data").mkdir()
        t0 = time.monotonic()
        self.serve(self.port, timeout)
        self.startup_s = time.monotonic() - t0
        return self

    def serve(self, port, timeout=60):
        """Runs the server on `port` over the data dir it always had (sessions and znodes
        included): start() once, then again after stop_server() to restart it, or on another
        port to hide it from clients that know only the first one."""
        cfg = self.dir / "zoo.cfg"
        cfg.write_text(f"tickTime={ZK_TICK_MS}\ndataDir={self.dir / 'data'}\nclientPort={port}\n"
                       f"clientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                       f"4lw.commands.whitelist=ruok,srvr,cons\nmaxSessionTimeout={ZK_MAX_SESSION_MS}\n"
                       "maxClientCnxns=0\n")
        # A small heap and the client compiler: it starts in about a second on a busy machine.
        argv = [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
                "-Dzookeeper.admin.enableServer=false", "-cp", ZK_JAR,
                "org.apache.zookeeper.server.ZooKeeperServerMain", str(cfg)]
        self.serving_port = port
        self.proc, self.out = self.spawn(argv, self.env(), f"zookeeper-{len(self.procs)}")
        # `ruok` answers imok as soon as the port listens; `srvr` names the mode only once the
        # server serves sessions (before that it closes a client's first connection).
        _wait(lambda: "Mode: standalone" in self.four_letter("srvr"), timeout, f"ZooKeeper on 127.0.0.1:{port}",
              self.proc, self.out)

    def stop_server(self):
        """Stops the server (SIGTERM) and keeps its data dir, for serve() to go on from."""
        self.stop_proc(self.proc, 30)

    @property
    def hosts(self):
        return f"127.0.0.1:{self.port}"

    def url(self, chroot=""):
        return f"zookeeper://{self.hosts}{chroot}"

    def four_letter(self, word):
        with socket.create_connection(("127.0.0.1", self.serving_port), timeout=2) as s:
            s.sendall(word.encode())
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return data.decode(errors="replace")
                data += chunk


# ---------------------------------------------------------------- RabbitMQ

class RabbitMQ(_Server):
    """A RabbitMQ broker (Debian's rabbitmq-server, run as the current user) with its own node
    name, AMQP, distribution and epmd ports, no plugins, its database and logs in the
    temporary dir, and HOME there too so the Erlang cookie is its own."""
    kind = "rabbitmq"

    def start(self, timeout=120):
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        if 5672 in (self.port, self.dist_port, self.epmd_port):
            raise BackendError("a free port came out as 5672, the system broker's: refusing")
        self.nodename = f"devnode-test-{os.getpid()}@localhost"
        (self.dir / "enabled_plugins").write_text("[].\n")
        env = self.env(
            HOME=self.dir, ERL_EPMD_PORT=self.epmd_port, ERL_EPMD_ADDRESS="127.0.0.1",
            RABBITMQ_NODENAME=self.nodename, RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=self.port, RABBITMQ_DIST_PORT=self.dist_port,
            RABBITMQ_MNESIA_BASE=self.dir / "mnesia", RABBITMQ_LOG_BASE=self.dir / "log",
            RABBITMQ_ENABLED_PLUGINS_FILE=self.dir / "enabled_plugins",
            RABBITMQ_PID_FILE=self.dir / "rabbitmq.pid",
            RABBITMQ_CONFIG_FILE=self.dir / "rabbitmq", RABBITMQ_ADVANCED_CONFIG_FILE=self.dir / "advanced.config",
            RABBITMQ_CONF_ENV_FILE=self.dir / "rabbitmq-env.conf",
            # exec erl directly (no signal-forwarding shell in between), so the pid is the broker's.
            RUNNING_UNDER_SYSTEMD="true")
        self._env = env
        t0 = time.monotonic()
        self.epmd, self.epmd_out = self.spawn(["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
                                              env, "epmd")
        _wait(lambda: _connects(self.epmd_port), 15, f"epmd on 127.0.0.1:{self.epmd_port}", self.epmd,
              self.epmd_out)
        self.proc, self.out = self.spawn([RABBITMQ_SERVER], env, "rabbitmq")
        _wait(self.amqp_ready, timeout, f"RabbitMQ on 127.0.0.1:{self.port}", self.proc, self.out)
        self.startup_s = time.monotonic() - t0
        return self

    @property
    def url(self):
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def restart(self, timeout=120):
        """Stops the broker cleanly (its clients see their connections closed) and starts it
        again on the same ports and database: durable exchanges stay, other queues go."""
        self.stop_proc(self.proc, 60)
        self.proc, self.out = self.spawn([RABBITMQ_SERVER], self._env, f"rabbitmq-{len(self.procs)}")
        _wait(self.amqp_ready, timeout, f"RabbitMQ on 127.0.0.1:{self.port} (restarted)", self.proc, self.out)

    @contextlib.contextmanager
    def paused(self):
        """The broker SIGSTOPped for the block: its sockets stay open and it says nothing, as a
        hung broker or a cut network looks to a client. SIGCONT afterwards, whatever happens."""
        os.kill(self.proc.pid, signal.SIGSTOP)
        try:
            yield self
        finally:
            os.kill(self.proc.pid, signal.SIGCONT)

    def amqp_ready(self):
        """True once the broker answers the AMQP 0-9-1 header with connection.start."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall(b"AMQP\x00\x00\x09\x01")
            head = s.recv(11)
        if len(head) < 11:
            return False
        ftype, _channel, _size, cls, method = struct.unpack(">BHIHH", head)
        return ftype == 1 and (cls, method) == (10, 10)

    def stop(self):
        # The broker first (SIGTERM: a clean stop of about a second), then its epmd.
        self.stop_proc(self.proc, 60)
        super().stop()


def _connects(port):
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


# ---------------------------------------------------------------- the fixtures

_swept = []


def _sweep_once():
    if not _swept:
        _swept.append(sweep_orphans())


@pytest.fixture(scope="session")
def zookeeper():
    """A ZooKeeper server shared by the run's tests; started by the first test that asks."""
    _sweep_once()
    zk = ZooKeeper()
    try:
        zk.start()
    except BaseException:
        zk.stop()
        raise
    yield zk
    zk.stop()


@pytest.fixture(scope="session")
def rabbitmq():
    """A RabbitMQ broker shared by the run's tests; started by the first test that asks."""
    _sweep_once()
    mq = RabbitMQ()
    try:
        mq.start()
    except BaseException:
        mq.stop()
        raise
    yield mq
    mq.stop()
