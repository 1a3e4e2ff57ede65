"""Reload (docs/supervision.md "Reload") of what a process-compose or overmind user edits
in the file and expects to take effect: `disabled: true` stops a running service (with its
stop_signal, gracefully) and `status` says `disabled`, removing it starts the service after
what it depends on, a renamed service is the old one stopped and the new one started, a
lower numprocesses stops the highest indexes, and many reloads do not make the node grow
(a replaced config is freed, not kept)."""
import re

from conftest import pid_alive, wait_for

WORKER = """\
import signal, sys, time
name = sys.argv[1]
def bye(sig, frame):
    print(f"{name} stopping on {signal.Signals(sig).name}", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, bye)
signal.signal(signal.SIGTERM, bye)
print(f"{name} up", flush=True)
while True:
    time.sleep(1000)
"""


def w(name):
    return f"exec /usr/bin/python3 -u worker.py {name}"


def config(admin_disabled, admin_extra=""):
    return f"""\
instances:
    Db:
        command: {w("Db")}
        ready: {{log: "Db up"}}
    Admin:
        command: {w("Admin")}
        numprocesses: 2
        stop_signal: INT
        stop_timeout: 10s
        depends_on: [Db]
{"        disabled: true" if admin_disabled else ""}
{admin_extra}"""


def states(node, name):
    return [i["state"] for i in node.service(name)["instances"]]


def pids(node, name):
    return [i["pid"] for i in node.service(name)["instances"]]


def test_disabling_a_running_service_stops_it_and_start_still_works(project):
    project.write(config(False), {"worker.py": WORKER})
    node = project.up()
    node.wait_running("Db", 1)
    admin = [i["pid"] for i in node.wait_running("Admin", 2)]
    for k in (0, 1):  # its handler is set: the stop below is graceful
        node.wait_log(lambda rec, k=k: rec.get("service") == "Admin" and rec.get("instance") == k
                      and rec["text"] == "Admin up")
    db = pids(node, "Db")

    project.write(config(True), {"worker.py": WORKER})
    r = node.cli("reload")
    assert (r.returncode, r.stdout) == (0, "Admin: stopped (disabled)\n1 service unchanged\n"), r
    wait_for(lambda: not any(pid_alive(p) for p in admin), 15, "Admin's processes to stop")
    # Gracefully: its stop_signal, which it handled, and no SIGKILL.
    for k in (0, 1):
        node.wait_log(lambda rec, k=k: rec.get("service") == "Admin" and rec.get("instance") == k
                      and rec["text"] == "Admin stopping on SIGINT")
    wait_for(lambda: states(node, "Admin") == ["disabled", "disabled"], 15,
             lambda: f"status to say disabled: {node.service('Admin')}")
    assert not node.node_lines(r"Admin\.\d .*SIGKILL")
    assert pids(node, "Db") == db  # what it depends on is left alone

    # Disabled in the file, it is still started on request, as the docs say.
    r = node.cli("start", "Admin")
    assert r.returncode == 0 and r.stdout == "starting Admin\nAdmin is up\n", (r.stdout, r.stderr)
    node.wait_running("Admin", 2)
    r = node.cli("stop", "Admin")
    assert r.returncode == 0, r
    wait_for(lambda: states(node, "Admin") == ["stopped", "stopped"], 15, "Admin to be stopped alone")
    # A reload that does not touch `disabled` leaves a stopped service down.
    project.write(config(True, "        env: {X: 1}\n"), {"worker.py": WORKER})
    r = node.cli("reload")
    assert r.stdout == "Admin: updated (it is down: its next start uses the new config)\n1 service unchanged\n", r
    assert pids(node, "Admin") == [0, 0]
    node.stop()


def test_enabling_a_service_starts_it_after_what_it_depends_on(project):
    project.write(config(True).replace("        ready: {log: \"Db up\"}\n",
                                       "        ready: {log: \"Db up\"}\n        disabled: true\n"),
                  {"worker.py": WORKER})
    node = project.up()
    wait_for(lambda: states(node, "Db") == ["disabled"] and states(node, "Admin") == ["disabled", "disabled"], 15,
             "both to be disabled")
    # Admin is enabled; Db stays disabled but Admin needs it, as at `up`.
    project.write(config(False).replace("        ready: {log: \"Db up\"}\n",
                                        "        ready: {log: \"Db up\"}\n        disabled: true\n"),
                  {"worker.py": WORKER})
    r = node.cli("reload")
    assert r.returncode == 0 and r.stdout == "Admin: started (no longer disabled): starting Db, Admin\n" \
        "1 service unchanged\n", r
    node.wait_running("Admin", 2)
    node.wait_running("Db", 1)
    db_ready = node.wait_node_line(r"^Db\.0 ready")
    admin_started = node.wait_node_line(r"^Admin\.0 started")
    assert admin_started["seq"] > db_ready["seq"], (db_ready, admin_started)
    node.stop()


def test_disabling_a_service_another_one_needs_keeps_it(project):
    project.write(config(False), {"worker.py": WORKER})
    node = project.up()
    node.wait_running("Admin", 2)
    db = pids(node, "Db")
    project.write(config(False).replace("        ready: {log: \"Db up\"}\n",
                                        "        ready: {log: \"Db up\"}\n        disabled: true\n"),
                  {"worker.py": WORKER})
    r = node.cli("reload")
    assert r.stdout == "Db: updated (settings changed); disabled, but kept running: a service that runs " \
        "depends on it\n1 service unchanged\n", r
    assert pids(node, "Db") == db and pid_alive(db[0])
    node.stop()


def test_a_renamed_service_stops_the_old_and_starts_the_new(project):
    project.write("instances:\n    Old:\n        command: exec sleep 1000\n    Keep:\n        command: exec sleep 1001\n")
    node = project.up()
    old = node.wait_running("Old", 1)[0]["pid"]
    keep = node.wait_running("Keep", 1)[0]["pid"]
    name = "Old"
    for n in range(3):  # renamed again and again: the removed ones leave for good
        new = f"New{n}"
        project.write(f"instances:\n    {new}:\n        command: exec sleep 1000\n"
                      "    Keep:\n        command: exec sleep 1001\n")
        r = node.cli("reload")
        assert r.stdout == f"{new}: started\n{name}: stopped\n1 service unchanged\n", r
        started = node.wait_running(new, 1)[0]["pid"]
        wait_for(lambda: not pid_alive(old), 15, f"{name}'s process to stop")
        assert [s["name"] for s in node.status()["services"]] == [new, "Keep"]
        name, old = new, started
    assert pids(node, "Keep") == [keep]
    node.stop()


def test_a_lower_numprocesses_stops_the_highest_indexes(project):
    project.write("instances:\n    Web:\n        command: exec sleep 1000\n        numprocesses: 4\n")
    node = project.up()
    before = [i["pid"] for i in node.wait_running("Web", 4)]
    project.write("instances:\n    Web:\n        command: exec sleep 1000\n        numprocesses: 2\n")
    r = node.cli("reload")
    assert r.stdout == "Web: scaled 4\u21922\n", r
    assert [i["pid"] for i in node.wait_running("Web", 2)] == before[:2]
    wait_for(lambda: not any(pid_alive(p) for p in before[2:]), 15, "Web.2 and Web.3 to stop")
    node.stop()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def test_many_reloads_do_not_grow_the_node(project):
    """Each reload changes a 100 kB value of a service's environment. A node that kept every
    config it replaced would grow by 20 MB over 200 reloads."""
    big = "x" * 100_000
    cfg = "instances:\n    Big:\n        command: exec sleep 1000\n        env_file: [big.env]\n" \
          "    Small:\n        command: exec sleep 1001\n        numprocesses: 0\n        env_file: [big.env]\n"
    project.write(cfg, {"big.env": f"BIG={big}0\n"})
    node = project.up()
    node.wait_running("Big", 1)

    def reloads(first, count):
        for n in range(first, first + count):
            (project.dir / "big.env").write_text(f"BIG={big}{n}\n")
            r = node.cli("reload")
            assert r.returncode == 0, r
    reloads(1, 20)  # the heap reaches its working size
    before = rss_kib(node.pid)
    reloads(21, 200)
    grown = rss_kib(node.pid) - before
    assert grown < 6 * 1024, f"the node grew by {grown} kB over 200 reloads"
    node.wait_running("Big", 1)
    st = node.status()
    assert st["node"]["rss_kib"] > 0
    node.stop()


def test_a_watch_kept_across_reloads_still_restarts_its_service(project):
    """The watch is not renewed when `watch:` did not change; the config it was started from
    is freed by the reload, so the watch must hold nothing of it (ASan builds see it)."""
    def cfg(x):
        return f"instances:\n    Svc:\n        command: exec sleep 1000\n        watch: [src]\n        env: {{X: {x}}}\n"
    project.write(cfg(0), {"src/a.txt": "0\n"})
    node = project.up()
    pid = node.wait_running("Svc", 1)[0]["pid"]
    node.wait_node_line(r"^watch: \d+ folders? watched for Svc")
    for x in range(1, 6):
        project.write(cfg(x))
        r = node.cli("reload")
        assert r.returncode == 0 and r.stdout.startswith("Svc: "), r
    assert node.cli("restart", "Svc").returncode == 0  # waits for the roll to settle
    pid = node.wait_running("Svc", 1)[0]["pid"]
    (project.dir / "src" / "a.txt").write_text("1\n")
    node.wait_node_line(r"^watch: src/a\.txt changed; restarting Svc$")
    wait_for(lambda: pids(node, "Svc")[0] not in (0, pid) and node.service("Svc")["instances"][0]["state"] == "running",
             15, "Svc to be restarted by the watch")
    node.stop()


def test_sockets_that_swap_ports_or_are_renamed_keep_the_nodes_listening_fds(project):
    """Binding a port the node itself still listens on would fail: a socket given another's
    address, or renamed, takes that listening fd over, and the service rolls onto it."""
    from test_sockets import WEB, free_port, get
    p1, p2 = free_port(), free_port()

    def cfg(sockets, uses=""):
        return f"instances:\n    Web:\n        command: {WEB}\n        stop_timeout: 5\n{uses}sockets:\n{sockets}"
    project.write(cfg(f"    Web: {{port: {p1}}}\n    Spare: {{port: {p2}}}\n"))
    node = project.up()
    old = [i["pid"] for i in node.wait_running("Web", 1)]
    assert get("/pid", p1)[0] == 200

    def addresses():
        return {s["name"]: s["address"] for s in node.status()["node"]["sockets"]}
    project.write(cfg(f"    Web: {{port: {p2}}}\n    Spare: {{port: {p1}}}\n"))
    r = node.cli("reload")
    assert (r.returncode, r.stdout) == (0, "Web: rolled (sockets changed)\n"), r
    assert addresses() == {"Web": f"127.0.0.1:{p2}", "Spare": f"127.0.0.1:{p1}"}
    new = wait_for(lambda: [i["pid"] for i in node.wait_running("Web", 1) if i["pid"] not in old], 15,
                   "Web to roll")
    status, body, _ = get("/pid", p2)
    assert status == 200 and int(body) in new

    # Renamed (Web's socket becomes Http, on the same port) and Spare dropped.
    project.write(cfg(f"    Http: {{port: {p2}}}\n", "        sockets: [Http]\n"))
    r = node.cli("reload")
    assert r.returncode == 0 and r.stdout.startswith("Web: rolled ("), r
    assert addresses() == {"Http": f"127.0.0.1:{p2}"}
    newer = wait_for(lambda: [i["pid"] for i in node.wait_running("Web", 1) if i["pid"] not in new + old], 15,
                     "Web to roll again")
    status, body, _ = get("/pid", p2)
    assert status == 200 and int(body) in newer
    node.stop()
