#!/usr/bin/python3
"""Instructions the node spends per bus event, counted by callgrind: noise-free, so a before /
after comparison of two checkouts holds on a busy machine where events/s swing by 15 %.

  bench/bench_bus_instr.py [ROOT ...]      (default: this checkout; each ROOT built with make)

For each ROOT and each mode (one event per message, batches of 250) the node runs under
callgrind twice, with N and 3N events from the C publisher to a 4-member acking group
(bench/bus_driver.c, as bench_bus.py's E); the difference of the two totals over 2N events is
the steady-state cost per event (emit, delivery, ack), start-up and shutdown cancelled out.
Prints figures, asserts nothing; every node is stopped and its temp dir removed."""
import glob
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SINKS, PREFETCH, WINDOW = 4, 1000, 4000


def node_instructions(root, n, batch):
    d = tempfile.mkdtemp(prefix="devnode-instr-")
    node = None
    try:
        with open(os.path.join(d, ".lymph.yml"), "w") as f:
            f.write("instances:\n    Quiet:\n        command: exec sleep 100000\n")
        flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libzmq", "msgpack"], capture_output=True,
                               text=True, check=True).stdout.split()
        drv = os.path.join(d, "bus_driver")
        subprocess.run(["cc", "-O2", "-D_GNU_SOURCE", "-I", root, "-o", drv, os.path.join(root, "bench", "bus_driver.c"),
                        os.path.join(root, "build", "rel", "libcore.a"), *flags, "-lm"], check=True)
        out = os.path.join(d, "callgrind.out")
        env = {k: v for k, v in os.environ.items() if not k.startswith("DEVNODE_")}
        node = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--trace-children=no",
                                 os.path.join(root, "devnode"), "up", "--no-tui"], cwd=d, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        ep_file = os.path.join(d, ".devnode", "endpoint")
        deadline = time.monotonic() + 60
        while not (os.path.exists(ep_file) and open(ep_file).read().strip()):
            if time.monotonic() > deadline or node.poll() is not None:
                raise RuntimeError("the node under callgrind did not come up")
            time.sleep(0.05)
        endpoint = open(ep_file).read().split()[0]
        sinks = [subprocess.Popen([drv, "sink", endpoint, "Bench.on_event", "bench.evt", str(PREFETCH), str(batch),
                                   os.path.join(d, f"seqs{i}")], stdout=subprocess.PIPE, text=True)
                 for i in range(SINKS)]
        for s in sinks:
            if s.stdout.readline().strip() != "ready":
                raise RuntimeError("a sink did not subscribe")
        r = subprocess.run([drv, "pub", endpoint, str(n), str(WINDOW), str(batch)], capture_output=True, text=True,
                           timeout=900)
        if r.returncode != 0 or r.stdout.split()[-1] != "0":
            raise RuntimeError(f"the publisher failed or was refused: {r.stdout} {r.stderr}")
        for s in sinks:
            s.stdout.readline()
            s.wait(60)
        subprocess.run([os.path.join(root, "devnode"), "stop"], cwd=d, env=env, capture_output=True, timeout=300)
        node.wait(300)
        total = 0
        for path in glob.glob(out + "*"):
            with open(path) as f:
                for line in f:
                    if line.startswith(("summary:", "totals:")):
                        total = max(total, int(line.split()[1]))
        return total
    finally:
        if node and node.poll() is None:
            node.kill()
        shutil.rmtree(d, ignore_errors=True)


def main(argv):
    if not shutil.which("valgrind"):
        print("bench_bus_instr: valgrind missing")
        return 1
    roots = [os.path.abspath(a) for a in argv] or [os.path.dirname(HERE)]
    print("BI  node instructions per bus event (callgrind, all node threads, 4-member acking group)")
    for batch, n in ((1, 10000), (250, 20000)):
        for root in roots:
            a, b = node_instructions(root, n, batch), node_instructions(root, 3 * n, batch)
            how = "one event per message" if batch == 1 else f"batches of {batch}"
            print(f"    {how:24} {(b - a) / (2 * n):9.0f} instructions/event   {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
