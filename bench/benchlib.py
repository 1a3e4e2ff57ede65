"""What the benches share: a `devnode up` in a temporary project that is always cleaned up,
and reading a process's CPU time. Loopback only; a bench that fails still stops its node."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVNODE = os.path.join(ROOT, "devnode")


def log(msg):
    print(msg, flush=True)


# What libdevnode.a needs beyond pkg-config's libzmq, msgpack, jansson (Makefile ZK_LIBS, librabbitmq).
LIBDEVNODE_LIBS = ["-lzookeeper_mt", "-lrabbitmq", "-lpthread"]


def compile_c(workdir, name, pkgs, extra=()):
    """Compiles bench/NAME.c into WORKDIR/NAME (-O2, warnings are errors as for the node, the
    repository root on the include path, so drivers include "proto/wire.h" and
    "bench/driver.h") with the cflags and libs of the pkg-config packages `pkgs` and `extra`
    objects or flags. Returns the executable's path, or None after saying why (the bench then
    does without)."""
    src, exe = os.path.join(ROOT, "bench", name + ".c"), os.path.join(workdir, name)
    if any(str(e).endswith("libdevnode.a") for e in extra):
        extra = [*extra, *LIBDEVNODE_LIBS]
    try:
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", *pkgs], capture_output=True, text=True,
                               check=True).stdout.split() if pkgs else []
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-D_GNU_SOURCE", "-I", ROOT, "-o", exe, src,
                        *extra, *flags, "-lm"], check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        log(f"   ({name} not built: {getattr(exc, 'stderr', exc)!s:.300})")
        return None
    return exe


def bench_argv(argv):
    """(quick, only) of a bench's command line: `--quick`, and the upper-cased names of `--only
    A,B` as a set (None: every bench). Makes SIGTERM/SIGHUP exit through Python, so a bench
    killed that way still runs its cleanup (finally blocks, TempNode.__exit__)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    quick = "--quick" in argv
    only = None
    if "--only" in argv:
        only = set(argv[argv.index("--only") + 1].upper().split(","))
    return quick, only


def run_benches(benches, only, results):
    """Runs each (name, fn) of `benches` that `only` (a set, or None for all) names; fn returns
    True when it measured and fills results[figure] = (value, target, met, notes). A bench
    that raises is reported and the others go on. Prints the summary table; returns the exit
    status: 0 when anything was measured or nothing failed."""
    measured = failed = 0
    t_start = time.monotonic()
    for name, fn in benches:
        if only and name not in only:
            continue
        try:
            if fn():
                measured += 1
            else:
                failed += 1
        except Exception as e:  # noqa: BLE001
            failed += 1
            log("%s could not be measured: %s: %s" % (name, type(e).__name__, e))
        log("")
    log("== summary (%.1f s)" % (time.monotonic() - t_start))
    log("%-28s %-20s %-16s %-6s %s" % ("figure", "value", "target", "met", "notes"))
    for k, (value, target, met, notes) in results.items():
        log("%-28s %-20s %-16s %-6s %s" % (k, value, target, "-" if met is None else ("yes" if met else "NO"), notes))
    return 0 if measured > 0 or failed == 0 else 1


def cpu_seconds(pid):
    """utime+stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class TempNode:
    """`devnode up` in a temp project with `config`; leaving the context stops it, kills its
    process group whatever happened, and removes the project."""

    def __init__(self, config, prefix="devnode-bench-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        self.config = os.path.join(self.dir, ".lymph.yml")
        with open(self.config, "w") as f:
            f.write(config)
        self.env = {k: v for k, v in os.environ.items()
                    if k not in ("LYMPH_CONFIG", "LYMPH_VARS") and not k.startswith("DEVNODE_")}
        self.proc = None

    def __enter__(self):
        out = open(os.path.join(self.dir, "node-out.txt"), "wb")
        self.proc = subprocess.Popen([DEVNODE, "up", "-c", self.config, "--color=never"], cwd=self.dir,
                                     env=self.env, stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        out.close()
        try:
            self.wait(lambda: os.path.exists(os.path.join(self.dir, ".devnode", "endpoint"))
                      and self.cli("status").returncode == 0, 15, "the node to answer")
        except BaseException:
            self.__exit__()
            raise
        with open(os.path.join(self.dir, ".devnode", "endpoint")) as f:
            self.endpoint = f.read().strip()
        return self

    def __exit__(self, *exc):
        try:
            self.cli("stop", "--timeout", "10", timeout=20)
            self.proc.wait(20)
        except Exception:
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def cli(self, *args, timeout=120):
        return subprocess.run([DEVNODE, args[0], "-c", self.config, *args[1:]], cwd=self.dir, env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("the node exited early")
            try:
                if pred():
                    return
            except Exception:
                pass
            time.sleep(0.05)
        raise TimeoutError("timed out waiting for " + what)
