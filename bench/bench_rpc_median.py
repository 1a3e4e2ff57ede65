#!/usr/bin/python3
"""The RPC figures of bench_bus.py's P, median of 3 runs, for comparing checkouts: issue 17's
goal is that they get no worse than before (<= 5 %) while the bus changes.

  bench/bench_rpc_median.py [--runs K] [--quick] [ROOT ...]   (default: this checkout; each ROOT built)

Each run is ROOT's own `bench/bench_bus.py --only P` (its devnode, libdevnode and C Greeting);
the runs of several ROOTs alternate (A B A B A B), so a machine that gets busier halfway hurts
them alike. Prints, per ROOT, the median of: devnode_call p50 (service to service), the plain
libzmq p50 beside it, and `devnode request -N` p50 and requests/s of Greeting.lymph.ping and
Greeting.greet; then each as a ratio to the first ROOT. devnode_call / libzmq is the ratio
within each run (the figure "devnode_call p50 against plain libzmq"), the steadiest of them. Asserts nothing."""
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
FIGURES = (("call_p50", "devnode_call p50 (us)"), ("zmq_p50", "plain libzmq p50 (us)"),
           ("call_ratio", "devnode_call / libzmq p50"),
           ("ping_p50", "request ping p50 (us)"), ("ping_rps", "request ping req/s"),
           ("greet_p50", "request greet p50 (us)"), ("greet_rps", "request greet req/s"))


def parse(out):
    """The figures of one `bench_bus.py --only P` output (those it printed)."""
    fig, section = {}, None
    for line in out.splitlines():
        if line.startswith("P  RPC round trip on ipc, service to service"):
            section = "call"
        elif line.startswith("P  plain libzmq"):
            m = re.search(r"p50 (\d+) us", line)
            if m:
                fig["zmq_p50"] = float(m.group(1))
        elif line.startswith("P  RPC round trip on ipc: devnode request"):
            section = "ping" if "lymph.ping" in line else "greet"
        elif section and line.startswith("   p50 "):
            fig[f"{section}_p50"] = float(re.search(r"p50 (\d+) us", line).group(1))
            m = re.search(r"\(([\d,]+) requests/s\)", line)
            if m:
                fig[f"{section}_rps"] = float(m.group(1).replace(",", ""))
            section = None
    if fig.get("call_p50") and fig.get("zmq_p50"):
        fig["call_ratio"] = fig["call_p50"] / fig["zmq_p50"]  # of the same run: less of the machine's mood
    return fig


def main(argv):
    runs, extra = 3, []
    if argv[:1] == ["--runs"]:
        runs, argv = int(argv[1]), argv[2:]
    if argv[:1] == ["--quick"]:
        extra, argv = ["--quick"], argv[1:]
    roots = [os.path.abspath(a) for a in argv] or [os.path.dirname(HERE)]
    for root in roots:
        if not os.access(os.path.join(root, "devnode"), os.X_OK):
            print(f"bench_rpc_median: {root}/devnode missing; run `make -j2 all` there first")
            return 1
    samples = {root: [] for root in roots}
    for i in range(runs):
        for root in roots:
            r = subprocess.run(["/usr/bin/python3", os.path.join(root, "bench", "bench_bus.py"), "--only", "P", *extra],
                               cwd=root, capture_output=True, text=True, timeout=900)
            fig = parse(r.stdout)
            print(f"run {i + 1}/{runs} {root}: " + ", ".join(f"{k} {v:.4g}" for k, v in fig.items()), flush=True)
            if r.returncode != 0 or not fig:
                print(f"   (failed: {(r.stdout + r.stderr).strip()[-300:]})", flush=True)
            samples[root].append(fig)
    medians = {root: {k: statistics.median(f[k] for f in samples[root] if k in f)
                      for k, _ in FIGURES if any(k in f for f in samples[root])} for root in roots}
    print(f"== RPC, median of {runs} (the machine may be shared)")
    print(f"{'':26}" + "".join(f" {os.path.basename(r):>18}" for r in roots))
    base = medians[roots[0]]
    for key, what in FIGURES:
        cells, fmt = [], ".2f" if key == "call_ratio" else ",.0f"
        for root in roots:
            v = medians[root].get(key)
            if v is None:
                cells.append(f" {'-':>18}")
            elif root is roots[0] or not base.get(key):
                cells.append(f" {v:>18{fmt}}")
            else:
                cells.append(f" {v:>9{fmt}} ({v / base[key]:.2f}x)")
        print(f"{what:26}" + "".join(cells))
    return 0 if all(medians.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
