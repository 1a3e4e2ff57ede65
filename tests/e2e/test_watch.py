"""watch: (docs/config.md#watch): a change under a watched path restarts that service once,
through the same rolling restart as `devnode restart`; ignored paths do not count; new
folders are followed; a change during a restart queues exactly one more; a burst is one
restart; the kernel's watch limit is said once. Restarts are counted in `status --json`.
A negative ("this did not restart") is always proved by a later positive event: the next
restart is counted exactly, so an extra one would show."""
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import DEVNODE, Node, pid_alive, wait_for

GATE_SERVICE = textwrap.dedent("""\
    import os, signal, sys, time
    # Ready (the line the node waits for) only once the test opens the gate.
    while not os.path.exists(sys.argv[1]):
        time.sleep(0.02)
    print("ready", flush=True)
    signal.pause()
    """)


def watch_of(node, name):
    return node.service(name)["watch"]


def wait_watch_restarts(node, name, count, timeout=20):
    """Waits until the watch of `name` started `count` restarts and every one is over (idle,
    nothing pending, each instance running and ready); returns the service's status."""
    def settled():
        svc = node.service(name)
        w = svc["watch"]
        if w["restarts"] != count or w["state"] != "idle" or w["pending"]:
            return None
        insts = svc["instances"]
        if len(insts) != svc["desired"]:
            return None
        if not all(i["state"] == "running" and i["ready"] and pid_alive(i["pid"]) for i in insts):
            return None
        return svc
    return wait_for(settled, timeout, lambda: f"{name}'s watch to finish restart {count}: {node.service(name)}")


def watch_lines(node):
    return [r["text"] for r in node.node_lines(r"^watch: ")]


def touch(path, text="x"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_an_edit_restarts_only_that_service_once(project):
    project.write("""
instances:
  Web:
    command: sleep 1000
    numprocesses: 2
    watch: [src/web/]
  Api:
    command: sleep 1000
    watch: ["src/api/**/*.py"]
  Other:
    command: sleep 1000
""", {"src/web/app.py": "", "src/api/v1/views.py": "", "src/other/x.py": ""})
    node = project.up()
    web0 = node.wait_running("Web", 2)
    api0 = node.wait_running("Api", 1)
    other0 = node.wait_running("Other", 1)
    assert node.service("Other")["watch"] is None
    w = watch_of(node, "Web")
    assert w["paths"] == ["src/web/"] and w["debounce_ms"] == 200 and w["restarts"] == 0
    # root, src, src/web for Web; root, src, src/api, src/api/v1 for Api
    wait_for(lambda: watch_of(node, "Api")["folders"] == 4, 10, "Api's four folders to be watched")
    assert watch_of(node, "Web")["folders"] == 3

    touch(project.dir / "src/web/app.py", "print('v2')\n")
    web1 = wait_watch_restarts(node, "Web", 1)
    assert all(i["restarts"] == 1 for i in web1["instances"])
    assert not {i["pid"] for i in web0} & {i["pid"] for i in web1["instances"]}
    assert web1["watch"]["last_change"]["path"] == "src/web/app.py"
    node.wait_node_line(r"^watch: src/web/app\.py changed; restarting Web$")
    node.wait_node_line(r"^rolling restart of Web done$")
    # Api and Other kept their processes...
    assert [i["pid"] for i in node.service("Api")["instances"]] == [i["pid"] for i in api0]
    assert [i["pid"] for i in node.service("Other")["instances"]] == [i["pid"] for i in other0]
    # ... which a later edit for Api proves: it restarts once, and Web is still at one.
    touch(project.dir / "src/api/v1/views.py", "v2")
    wait_watch_restarts(node, "Api", 1)
    assert watch_of(node, "Web")["restarts"] == 1
    # A second edit is a second restart, not a third: the first one was one.
    touch(project.dir / "src/web/app.py", "print('v3')\n")
    web2 = wait_watch_restarts(node, "Web", 2)
    assert all(i["restarts"] == 2 for i in web2["instances"])
    assert [i["pid"] for i in node.service("Other")["instances"]] == [i["pid"] for i in other0]
    assert len([t for t in watch_lines(node) if "restarting Web" in t]) == 2
    r = node.cli("status")
    assert re.search(r"^  watch src/web/: 3 folders, 2 restarts, last src/web/app\.py \S+ ago$", r.stdout, re.M), r.stdout


def test_ignored_paths_do_not_restart(project):
    project.write("""
instances:
  Web:
    command: sleep 1000
    watch: [src/]
    ignore: [src/gen/, "*.log"]
""", {"src/app.py": "", "src/gen/out.py": "", "src/__pycache__/app.cpython-311.pyc": "",
      "node_modules/x/index.js": ""})
    node = project.up()
    node.wait_running("Web", 1)
    # Only the root and src: neither src/gen nor src/__pycache__ has a watch.
    wait_for(lambda: watch_of(node, "Web")["folders"] == 2, 10, "two folders to be watched")
    ignored = ["src/gen/out.py", "src/gen/new.py", "src/app.log", "src/__pycache__/app.cpython-311.pyc",
               "src/.app.py.swp", "src/app.py~", "src/4913", "src/.#app.py", "src/#app.py#"]
    for rel in ignored:
        touch(project.dir / rel)
    touch(project.dir / "src/app.py", "v2")
    svc = wait_watch_restarts(node, "Web", 1)
    # Had any ignored path counted, it would have been first in the batch and named.
    assert svc["watch"]["last_change"]["path"] == "src/app.py"
    assert [t for t in watch_lines(node) if "changed" in t] == ["watch: src/app.py changed; restarting Web"]
    assert svc["instances"][0]["restarts"] == 1
    # An ignored change after the restart, then a watched one: exactly one more.
    touch(project.dir / "src/gen/out.py", "again")
    touch(project.dir / "src/app.py", "v3")
    wait_watch_restarts(node, "Web", 2)
    assert node.service("Web")["instances"][0]["restarts"] == 2
    assert [t for t in watch_lines(node) if "changed" in t][-1] == "watch: src/app.py changed; restarting Web"


def test_new_folders_are_watched(project):
    project.write("""
instances:
  Web:
    command: sleep 1000
    watch: ["src/**/*.py"]
""", {"src/app.py": "", "docs/readme.txt": ""})
    node = project.up()
    node.wait_running("Web", 1)
    wait_for(lambda: watch_of(node, "Web")["folders"] == 2, 10, "root and src to be watched")
    # A new folder gets a watch; a folder is no *.py, so it restarts nothing by itself.
    (project.dir / "src/pkg").mkdir()
    wait_for(lambda: watch_of(node, "Web")["folders"] == 3, 10, "src/pkg to be watched")
    touch(project.dir / "src/pkg/mod.py")
    wait_watch_restarts(node, "Web", 1)
    node.wait_node_line(r"^watch: src/pkg/mod\.py changed; restarting Web$")
    # Folders made and written at once: the file may land before the folder's watch does,
    # and still counts.
    os.makedirs(project.dir / "src/deep/er")
    touch(project.dir / "src/deep/er/x.py")
    svc = wait_watch_restarts(node, "Web", 2)
    assert svc["instances"][0]["restarts"] == 2
    assert watch_lines(node)[-1] == "watch: src/deep/er/x.py changed; restarting Web"
    wait_for(lambda: watch_of(node, "Web")["folders"] == 5, 10, "src/deep and src/deep/er to be watched")
    # docs/ was never watched; a folder moved away takes its watches with it.
    shutil.move(str(project.dir / "src/deep"), str(project.dir / "docs/deep"))
    wait_for(lambda: watch_of(node, "Web")["folders"] == 3, 10, "the moved folders to be forgotten")


def test_an_edit_during_a_restart_gives_exactly_one_more(project):
    project.write("""
instances:
  Slow:
    command: /usr/bin/python3 gate.py gate
    ready: {log: "^ready$"}
    watch: [src/]
""", {"gate.py": GATE_SERVICE, "gate": "", "src/a.py": ""})
    node = project.up()
    node.wait_running("Slow", 1)
    wait_watch_restarts(node, "Slow", 0)
    (project.dir / "gate").unlink()
    touch(project.dir / "src/a.py", "v2")

    def restarting():
        svc = node.service("Slow")
        inst = svc["instances"][0]
        return svc["watch"]["state"] == "restarting" and inst["state"] == "starting" and inst["restarts"] == 1
    wait_for(restarting, 15, lambda: f"the restart to wait at the gate: {node.service('Slow')}")
    # Two more edits while the new process waits: they queue one restart, not two.
    touch(project.dir / "src/b.py")
    wait_for(lambda: watch_of(node, "Slow")["pending"], 15, "a follow-up restart to be queued")
    node.wait_node_line(r"^watch: src/b\.py changed during the restart of Slow; one more restart follows$")
    touch(project.dir / "src/c.py")
    touch(project.dir / "gate")
    svc = wait_watch_restarts(node, "Slow", 2)
    assert svc["instances"][0]["restarts"] == 2
    assert len(node.node_lines(r"one more restart follows$")) == 1
    assert len(node.node_lines(r"^rolling restart of Slow done$")) == 2
    # The next edit is the third restart: nothing else was queued.
    touch(project.dir / "src/a.py", "v3")
    svc = wait_watch_restarts(node, "Slow", 3)
    assert svc["instances"][0]["restarts"] == 3



def test_a_change_during_devnode_restart_waits_for_it(project):
    project.write("""
instances:
  Slow:
    command: /usr/bin/python3 gate.py gate
    ready: {log: "^ready$"}
    watch: [src/]
""", {"gate.py": GATE_SERVICE, "gate": "", "src/a.py": ""})
    node = project.up()
    node.wait_running("Slow", 1)
    (project.dir / "gate").unlink()
    r = node.cli("restart", "--no-wait", "Slow")
    assert r.returncode == 0, r.stderr
    wait_for(lambda: node.service("Slow")["instances"][0]["state"] == "starting", 15, "devnode restart to begin")
    touch(project.dir / "src/a.py", "v2")
    wait_for(lambda: watch_of(node, "Slow")["state"] == "waiting", 15, "the watch to wait for the other restart")
    touch(project.dir / "gate")
    svc = wait_watch_restarts(node, "Slow", 1)
    assert svc["instances"][0]["restarts"] == 2
    texts = [rec["text"] for rec in node.node_lines(r"^(rolling restart of Slow done|watch: src/a\.py changed)")]
    assert texts == ["rolling restart of Slow done", "watch: src/a.py changed; restarting Slow",
                     "rolling restart of Slow done"], texts

def test_a_burst_of_writes_is_one_restart(project):
    project.write("""
instances:
  Web:
    command: sleep 1000
    watch: [src/]
    watch_debounce: 500ms
""", {"src/app.py": ""})
    node = project.up()
    node.wait_running("Web", 1)
    wait_watch_restarts(node, "Web", 0)
    for i in range(1000):
        (project.dir / f"src/gen_{i:04}.py").write_text(f"# {i}\n")
    svc = wait_watch_restarts(node, "Web", 1)
    assert svc["instances"][0]["restarts"] == 1
    assert watch_lines(node)[-1] == "watch: src/gen_0000.py changed (and 999 other changes); restarting Web"
    assert svc["watch"]["events"] >= 1000
    # One more write is one more restart: the burst left nothing behind.
    touch(project.dir / "src/app.py", "v2")
    svc = wait_watch_restarts(node, "Web", 2)
    assert svc["instances"][0]["restarts"] == 2


def _userns_available():
    try:
        return subprocess.run(["unshare", "-Ur", "true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.skipif(not _userns_available(), reason="needs unshare -Ur (user namespaces) to lower the watch limit")
def test_the_kernels_watch_limit_is_said_once(project):
    """A user namespace of our own gets a limit of 4 watches (user.max_inotify_watches), so
    the limit is reached without touching the machine's."""
    project.write("""
instances:
  Web:
    command: sleep 1000
    watch: [src/]
""", {f"src/d{i}/x.py": "" for i in range(8)})
    out_path = project.dir.parent / f"{project.dir.name}-node-out.txt"
    script = "echo 4 > /proc/sys/user/max_inotify_watches && exec \"$0\" up"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(["unshare", "-Ur", "sh", "-c", script, str(DEVNODE)], cwd=project.dir,
                                env=project.node_env(), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    node = Node(project, proc, out_path, project.marker)
    project.nodes.append(node)
    node.wait_ready()
    node.wait_running("Web", 1)
    line = node.wait_node_line(r"^watch: the kernel's limit of inotify watches is reached")["text"]
    assert re.match(r"^watch: the kernel's limit of inotify watches is reached \(fs\.inotify\.max_user_watches = "
                    r"\d+; this user namespace's user\.max_inotify_watches = 4\) at src/d\d: 4 folders are "
                    r"watched, changes in the others are not seen; raise it, e\.g\. sudo sysctl "
                    r"fs\.inotify\.max_user_watches=524288, or ignore: big folders$", line), line
    assert watch_of(node, "Web")["limit_reached"] is True
    assert watch_of(node, "Web")["folders"] == 4
    # More folders fail too, silently; a change under a watched folder still restarts.
    (project.dir / "src/d9").mkdir()
    touch(project.dir / "src/app.py")
    wait_watch_restarts(node, "Web", 1)
    assert len(node.node_lines(r"limit of inotify watches")) == 1


def test_watch_keys_are_checked(project):
    project.write("""
instances:
  Web:
    command: sleep 1000
    ignore: [x]
""")
    r = project.cli("check")
    assert r.returncode == 2
    assert r.stderr.strip().endswith(".lymph.yml:5:5: instances.Web.ignore: applies only to a service with watch:"), r.stderr
    project.write("""
instances:
  Web:
    command: sleep 1000
    watch: [src/, ../shared/]
""")
    r = project.cli("check")
    assert r.returncode == 2
    assert r.stderr.strip().endswith(
        '.lymph.yml:5:19: instances.Web.watch[1]: "../shared/" must stay inside the folder of the config file (no ..)'
    ), r.stderr


def test_a_watched_edit_under_load_fails_no_request(project):
    """The restart is `devnode restart`'s: behind a shared socket, with ready: notify, the
    new process serves before the old one stops, so no request fails."""
    from test_sockets import WEB, Load, free_port
    port = free_port()
    project.write(f"""
instances:
  Web:
    command: {WEB}
    numprocesses: 2
    stop_timeout: 5
    ready: notify
    watch: [src/]
sockets:
  Web:
    port: {port}
""", {"src/app.py": ""})
    node = project.up()
    old = {i["pid"] for i in node.wait_running("Web", 2)}
    with Load(port, threads=4) as load:
        wait_for(lambda: load.count() > 200, 20, "load to get going")
        for n in range(1, 4):
            touch(project.dir / "src/app.py", f"v{n}")
            wait_watch_restarts(node, "Web", n, timeout=30)
        before = load.count()
        wait_for(lambda: load.count() > before + 100, 20, "requests after the last restart")
    svc = node.service("Web")
    assert not old & {i["pid"] for i in svc["instances"]}
    assert all(i["restarts"] == 3 for i in svc["instances"])
    assert load.failures == [], load.failures[:5]


def test_a_failed_restart_is_fixed_by_the_next_edit(project):
    """The edit loop: a save that breaks the service (it exits before it is ready) is said
    once, and the save that fixes it restarts the service again."""
    app = textwrap.dedent("""\
        import signal, sys
        if open(__file__).read().endswith("# broken\\n"):
            sys.exit(3)
        print("ready", flush=True)
        signal.pause()
        # fine
        """)
    project.write("""
instances:
  Svc:
    command: /usr/bin/python3 app.py
    ready: {log: "^ready$"}
    watch: [app.py]
""", {"app.py": app})
    node = project.up()
    node.wait_running("Svc", 1)
    touch(project.dir / "app.py", app.replace("# fine", "# broken"))
    node.wait_node_line(r"^watch: the restart of Svc did not finish: Svc\.0 exited with status 3 before it was ready")
    wait_for(lambda: watch_of(node, "Svc")["state"] == "idle", 15, "the watch to be idle after the failure")
    touch(project.dir / "app.py", app.replace("# fine", "# fixed"))
    svc = wait_watch_restarts(node, "Svc", 2)
    assert svc["instances"][0]["ready"]
    assert len(node.node_lines(r"^watch: the restart of Svc did not finish")) == 1


def test_export_names_watch_as_not_exported(project, tmp_path_factory):
    project.write("""
instances:
  Web:
    command: sleep 1000
    watch: [src/]
    ignore: [src/gen/]
""")
    out = tmp_path_factory.mktemp("units")
    r = project.cli("export", "systemd", out)
    assert r.returncode == 0, r.stderr
    assert "not exported: instances.Web.watch: systemd restarts nothing when files change" in r.stdout, r.stdout
