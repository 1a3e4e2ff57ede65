"""depends_on at run time (issue 20 items 1, 5, 6; docs/dependencies.md): start order follows
the graph and stop runs in reverse, observed from the timestamps the workers write; a failed
dependency keeps its dependents `waiting` with the reason; `restart: true` takes a dependent
along; `up SERVICE`, `--no-deps`, `disabled`; `start`/`stop SERVICE` on a running node;
`devnode run`'s exit codes; a one-shot that finished is `completed`."""
import os
import signal
import subprocess

from conftest import DEVNODE, PYTHON, wait_for
from tuihelpers import Tmux, start_tui, table

# A worker that appends "NAME EVENT NANOSECONDS" to order.log: start, ready (then prints
# "ready" for ready: {log:}), stop (on SIGTERM); with an exit code it is a one-shot.
WORKER = """\
import os, signal, sys, time
name = sys.argv[1]
def log(event):
    with open("order.log", "a") as f:
        f.write(f"{name} {event} {time.time_ns()}\\n")
log("start")
if len(sys.argv) > 2 and sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
if len(sys.argv) > 2:
    log("done")
    sys.exit(int(sys.argv[2]))
def stop(*_):
    log("stop")
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
if os.environ.get("READY_AFTER"):
    time.sleep(float(os.environ["READY_AFTER"]))
log("ready")
print("ready", flush=True)
while True:
    time.sleep(1000)
"""


def w(name, *args):
    return " ".join([PYTHON, "worker.py", name, *args])


def events(project):
    """{(name, event): ns} of the first time each happened, and the lines in order."""
    path = project.dir / "order.log"
    lines = path.read_text().split() if path.exists() else []
    seen = {}
    for i in range(0, len(lines) - 2, 3):
        seen.setdefault((lines[i], lines[i + 1]), int(lines[i + 2]))
    return seen


def instance(node, service, status=None):
    return node.service(service, status)["instances"][0]


def state_is(node, service, state):
    inst = instance(node, service)
    return inst if inst["state"] == state else None


ORDERED = f"""\
instances:
    Web:
        command: {w("Web")}
        depends_on: [Api]
    Api:
        command: {w("Api")}
        ready: {{log: "^ready$"}}
        depends_on:
            Db: ready
            Migrate: completed
            Cache: started
    Migrate:
        command: {w("Migrate", "0")}
        restart: never
        depends_on: [Db]
    Db:
        command: {w("Db")}
        env: {{READY_AFTER: "1"}}
        ready: {{log: "^ready$"}}
    Cache:
        command: {w("Cache")}
        stop_timeout: 5s
"""


def test_start_follows_the_graph_and_stop_runs_in_reverse(project):
    project.write(ORDERED, {"worker.py": WORKER})
    node = project.up("--no-tui")
    node.wait_running("Web", 1)
    ev = wait_for(lambda: (e := events(project)).get(("Web", "ready")) and e, 15, "Web to write its start")
    # Each starts only once what it waits for is there.
    assert ev[("Db", "ready")] < ev[("Migrate", "start")], ev
    assert ev[("Migrate", "done")] < ev[("Api", "start")], ev
    assert ev[("Api", "ready")] < ev[("Web", "start")], ev
    # started is spawned: the node's own lines give that order. Cache depends on nothing: it
    # started beside Db, not after Db was ready.
    lines = [r["text"] for r in node.node_lines(r"^(Cache\.0 started|Api\.0 started|Db\.0 ready)")]
    assert [t.split(" ")[0] for t in lines] == ["Cache.0", "Db.0", "Api.0"], lines
    # A one-shot that finished is completed, with its exit status, not down.
    migrate = instance(node, "Migrate")
    assert migrate["state"] == "completed" and migrate["last_exit"]["code"] == 0, migrate
    assert "Migrate.0" in node.cli("status").stdout and " completed " in node.cli("status").stdout

    _, code = node.stop()
    assert code == 0
    ev = events(project)
    # Dependents first: Web, then Api, then what Api needed.
    assert ev[("Web", "stop")] < ev[("Api", "stop")] < ev[("Db", "stop")], ev
    assert ev[("Api", "stop")] < ev[("Cache", "stop")], ev


BLOCKED = f"""\
instances:
    Migrate:
        command: {w("Migrate", "1")}
        restart: never
    Api:
        command: {w("Api")}
        depends_on: {{Migrate: completed}}
    Web:
        command: {w("Web")}
        depends_on: [Api]
    Slow:
        command: {w("Slow")}
        ready: {{log: "^never$", timeout: 1s}}
    UsesSlow:
        command: {w("UsesSlow")}
        depends_on: [Slow]
    Crash:
        command: exit 4
        max_restarts: 1
        ready: {{log: "^never$"}}
    UsesCrash:
        command: {w("UsesCrash")}
        depends_on: [Crash]
"""


def test_a_failed_dependency_keeps_its_dependents_waiting_with_the_reason(project):
    project.write(BLOCKED, {"worker.py": WORKER})
    node = project.up("--no-tui")
    api = wait_for(lambda: (i := state_is(node, "Api", "waiting")) and i["waiting"] and "exited" in i["waiting"]
                   and i, 15, "Api to wait with a reason")
    assert api["waiting"] == "waiting for Migrate: exited 1" and api["pid"] == 0, api
    web = instance(node, "Web")
    assert web["state"] == "waiting" and web["waiting"] == "waiting for Api to be ready", web
    slow = wait_for(lambda: (i := instance(node, "UsesSlow"))["waiting"] and "within" in i["waiting"] and i, 15,
                    "UsesSlow to give up on Slow")
    assert slow["waiting"] == "waiting for Slow: not ready within 1.0s", slow
    crash = wait_for(lambda: (i := instance(node, "UsesCrash"))["waiting"] and "failed" in i["waiting"] and i, 15,
                     "UsesCrash to see Crash failed")
    assert crash["waiting"].startswith("waiting for Crash: failed (gave up after 1 restarts"), crash
    # The node says it once, as an error, and the table shows the reason under the instance.
    line = node.wait_node_line(r"^Api not started: waiting for Migrate: exited 1$")
    assert line["level"] == "error"
    text = node.cli("status").stdout
    assert "waiting for Migrate: exited 1" in text, text
    assert not any(k[0] in ("Api", "Web", "UsesSlow", "UsesCrash") for k in events(project)), events(project)

    # Once the dependency completes, the dependents start in order.
    project.write(BLOCKED.replace(w("Migrate", "1"), w("Migrate", "0")), {"worker.py": WORKER})
    node.stop()
    node = project.up("--no-tui")
    node.wait_running("Web", 1)
    assert instance(node, "Migrate")["state"] == "completed"


RESTARTS = f"""\
instances:
    Db:
        command: {w("Db")}
        ready: {{log: "^ready$"}}
    Api:
        command: {w("Api")}
        depends_on:
            Db: {{condition: ready, restart: true}}
    Worker:
        command: {w("Worker")}
        depends_on: [Db]
"""


def test_a_dependency_restart_takes_only_restart_true_dependents_along(project):
    project.write(RESTARTS, {"worker.py": WORKER})
    node = project.up("--no-tui")
    api = node.wait_running("Api", 1)[0]
    worker = node.wait_running("Worker", 1)[0]
    db = node.wait_running("Db", 1)[0]
    os.kill(db["pid"], signal.SIGKILL)
    line = node.wait_node_line(r"^Api restarts: Db was restarted \(depends_on Db: restart: true\)$")
    new_api = wait_for(lambda: (i := node.wait_running("Api", 1)[0])["pid"] != api["pid"] and i, 15,
                       "Api to run a new process")
    assert new_api["restarts"] == 1
    # Api went after Db was ready again.
    db_ready = [r for r in node.node_lines(r"^Db\.0 ready") if r["seq"] < line["seq"]]
    assert len(db_ready) == 2, db_ready
    # Worker's condition has no restart: it kept its process.
    assert instance(node, "Worker")["pid"] == worker["pid"]
    assert instance(node, "Worker")["restarts"] == 0


SUBSET = f"""\
instances:
    Db:
        command: {w("Db")}
    Api:
        command: {w("Api")}
        depends_on: [Db]
    Web:
        command: {w("Web")}
        depends_on: [Api]
    Other:
        command: {w("Other")}
    Admin:
        command: {w("Admin")}
        disabled: true
"""


def states(node):
    return {s["name"]: s["instances"][0]["state"] for s in node.status()["services"]}


def test_up_with_names_starts_them_and_what_they_need(project):
    project.write(SUBSET, {"worker.py": WORKER})
    node = project.up("--no-tui", "Web")
    node.wait_running("Web", 1)
    assert states(node) == {"Db": "running", "Api": "running", "Web": "running", "Other": "stopped",
                            "Admin": "disabled"}
    node.stop()
    node = project.up("--no-tui", "--no-deps", "Web")
    node.wait_running("Web", 1)
    assert states(node) == {"Db": "stopped", "Api": "stopped", "Web": "running", "Other": "stopped",
                            "Admin": "disabled"}
    node.stop()
    node = project.up("--no-tui", "Admin")
    node.wait_running("Admin", 1)
    assert states(node)["Web"] == "stopped"
    node.stop()
    r = project.cli("up", "--no-tui", "Nope")
    assert r.returncode == 2
    assert r.stderr == "devnode: up: no service 'Nope' (known: Db, Api, Web, Other, Admin)\n"


def test_start_and_stop_one_service_on_a_running_node(project):
    project.write(SUBSET, {"worker.py": WORKER})
    node = project.up("--no-tui")
    for name in ("Db", "Api", "Web", "Other"):
        node.wait_running(name, 1)
    assert states(node)["Admin"] == "disabled"
    pids = {s["name"]: s["instances"][0]["pid"] for s in node.status()["services"]}

    r = node.cli("start", "Admin")
    assert r.returncode == 0 and r.stdout == "starting Admin\nAdmin is up\n", (r.stdout, r.stderr)
    node.wait_running("Admin", 1)

    r = node.cli("stop", "Db")
    assert r.returncode == 0 and r.stdout == "stopped Db (1 instance)\n", (r.stdout, r.stderr)
    st = node.status()
    assert instance(node, "Db", st)["state"] == "stopped"
    assert {n: instance(node, n, st)["pid"] for n in ("Api", "Web", "Other")} == \
        {n: pids[n] for n in ("Api", "Web", "Other")}
    assert node.alive()

    # start Api: it runs already, but what it needs is down: that is started, nothing else.
    r = node.cli("start", "Api")
    assert r.returncode == 0 and r.stdout == "starting Db\nApi is up\n", (r.stdout, r.stderr)
    node.wait_running("Db", 1)
    assert instance(node, "Api")["pid"] == pids["Api"]

    r = node.cli("stop", "Nope")
    assert r.returncode == 2 and r.stderr == "devnode: stop: no service 'Nope' (known: Admin, Api, Db, Other, Web)\n"
    node.stop()


def run(project, *args, timeout=60):
    return subprocess.run([str(DEVNODE), "run", *map(str, args)], cwd=project.dir, env=project.node_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


RUN = f"""\
instances:
    Db:
        command: {w("Db")}
        ready: {{log: "^ready$"}}
    Tests:
        command: {w("Tests", "$CODE")}
        restart: never
        depends_on: [Db]
"""


def test_run_exits_with_the_one_shot_status_and_stops_the_rest(project):
    project.write(RUN.replace("$CODE", "0"), {"worker.py": WORKER})
    r = run(project)
    assert r.returncode == 0, r.stdout + r.stderr
    ev = events(project)
    assert ev[("Db", "start")] < ev[("Tests", "start")] < ev[("Db", "stop")], ev
    assert "run: Tests completed (0)" in r.stdout, r.stdout

    project.write(RUN.replace("$CODE", "3"), {"worker.py": WORKER})
    r = run(project, "Tests")
    assert r.returncode == 3, r.stdout + r.stderr
    assert "run: Tests failed (3)" in r.stdout

    project.write(RUN.replace("$CODE", "kill"), {"worker.py": WORKER})
    r = run(project, "Tests")
    assert r.returncode == 128 + signal.SIGKILL, r.stdout + r.stderr

    r = run(project, "Db")
    assert r.returncode == 2
    assert r.stderr.startswith("devnode: run: Db restarts always (the default), so it never completes"), r.stderr


RUN_DEPENDENCY = f"""\
instances:
    Migrate:
        command: {w("Migrate", "5")}
        restart: on-failure
        max_restarts: 1
    Tests:
        command: {w("Tests", "0")}
        restart: never
        depends_on: {{Migrate: completed}}
    Flaky:
        command: {w("Flaky", "1")}
    Slow:
        command: sleep 1000
        restart: never
        depends_on: {{Flaky: started}}
"""


def test_run_exits_1_when_a_dependency_failed_and_aborts_on_failure(project):
    project.write(RUN_DEPENDENCY, {"worker.py": WORKER})
    r = run(project, "Tests")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "run: Tests cannot start: waiting for Migrate: failed (gave up after 1 restarts" in r.stdout, r.stdout
    assert ("Tests", "start") not in events(project)

    # Slow never ends by itself; Flaky (restart: always) failing ends the run at once.
    r = run(project, "--abort-on-failure", "Slow")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "run: Flaky.0 exited with a failure (1): stopping all instances" in r.stdout, r.stdout


def test_run_cut_short_exits_130(project):
    project.write(RUN_DEPENDENCY, {"worker.py": WORKER})
    proc = subprocess.Popen([str(DEVNODE), "run", "--no-deps", "Slow"], cwd=project.dir, env=project.node_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        status = project.run_dir / "endpoint"
        wait_for(lambda: status.exists() and "running" in project.cli("status").stdout, 15, "Slow to run")
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 130, proc.stdout.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_the_dashboard_shows_waiting_with_the_reason_and_completed(project):
    project.write(BLOCKED, {"worker.py": WORKER})
    node = project.up("--no-tui")
    wait_for(lambda: "exited" in (instance(node, "Api")["waiting"] or ""), 15, "Api to be blocked")
    tmux = Tmux(160, 40, cwd=project.dir)
    try:
        start_tui(tmux, project)
        rows = tmux.wait(lambda s: (t := table(s)).get("Api.0", [""])[0] == "waiting" and t, 15, "Api.0 waiting")
        assert rows["Migrate.0"][0] == "exited", rows
        screen = tmux.wait(lambda s: "waiting for Migrate: exited 1" in s and s, 10, "the reason on Api.0's row")
        api_row = next(line for line in screen.split("\n") if "Api.0" in line)
        assert api_row.rstrip().endswith("waiting for Migrate: exited 1"), api_row
    finally:
        tmux.kill()
    node.stop()
    project.write(BLOCKED.replace(w("Migrate", "1"), w("Migrate", "0")), {"worker.py": WORKER})
    node = project.up("--no-tui")
    node.wait_running("Web", 1)
    tmux = Tmux(160, 40, cwd=project.dir)
    try:
        start_tui(tmux, project)
        tmux.wait(lambda s: table(s).get("Migrate.0", [""])[0] == "completed", 15, "Migrate.0 completed")
    finally:
        tmux.kill()
