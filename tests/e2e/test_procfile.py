"""A folder with a Procfile and no .lymph.yml runs as foreman runs it (issue 21, item 4):
`devnode up -m web=2,worker=1`, a PORT per instance from foreman's blocks (5000 + 100 per
process type + 1 per instance), instances addressed as name.N; `devnode import procfile`
writes the .lymph.yml that runs the same. The workers only print the PORT they were given."""
import subprocess

from conftest import DEVNODE, base_env, wait_for

PRINTS_PORT = 'echo "port=$PORT"; exec sleep 1000'

PROCFILE = f"""# the app's processes
web: {PRINTS_PORT}

worker:   {PRINTS_PORT}
clock: {PRINTS_PORT}
"""


def run(project, *args, cwd=None):
    return subprocess.run([str(DEVNODE), *map(str, args)], capture_output=True, text=True, timeout=30,
                          env=base_env(), cwd=cwd or project.dir, stdin=subprocess.DEVNULL)


def use_procfile(project, text=PROCFILE):
    (project.dir / "Procfile").write_text(text)
    project.config_path = project.dir / "Procfile"
    return project


def printed_ports(node, service, count):
    """{index: PORT} once every instance of `service` printed its PORT in this node's run."""
    def collect():
        records = node.records()
        start = max((i for i, r in enumerate(records)
                     if r.get("stream") == "node" and r["text"].startswith(f"node {node.pid} up")), default=None)
        if start is None:
            return None
        got = {r["instance"]: int(r["text"].split("=", 1)[1]) for r in records[start:]
               if r.get("service") == service and r["text"].startswith("port=")}
        return got if len(got) == count else None
    return wait_for(collect, 15, f"{count} instances of {service} to print their PORT")


def test_up_runs_the_procfile_with_foremans_formation_and_ports(project):
    use_procfile(project)
    assert not (project.dir / ".lymph.yml").exists()
    node = project.up("--no-tui", "-m", "web=2,worker=1")
    node.wait_running("web", 2)
    node.wait_running("worker", 1)
    assert printed_ports(node, "web", 2) == {0: 5000, 1: 5001}
    assert printed_ports(node, "worker", 1) == {0: 5100}
    clock = node.service("clock")
    assert clock["desired"] == 0 and clock["instances"] == [], clock  # foreman: not named, not run
    # Every other command finds the project the same way, from its folder, without -c.
    status = run(project, "status")
    assert status.returncode == 0, status.stderr
    rows = {l.split()[0] for l in status.stdout.splitlines() if l.startswith(("web.", "worker.", "clock."))}
    assert rows == {"web.0", "web.1", "worker.0"}, status.stdout
    scaled = run(project, "scale", "clock", "1")
    assert scaled.returncode == 0, scaled.stderr
    assert printed_ports(node, "clock", 1) == {0: 5200}
    _, code = node.stop()
    assert code == 0


def test_up_without_formation_runs_one_of_each(project):
    use_procfile(project, "web: " + PRINTS_PORT + "\nworker: " + PRINTS_PORT + "\n")
    node = project.up("--no-tui", "--port-base", "7000")
    assert printed_ports(node, "web", 1) == {0: 7000}
    assert printed_ports(node, "worker", 1) == {0: 7100}
    node.stop()


def test_import_writes_a_config_that_checks_and_runs_the_same(project):
    use_procfile(project)
    r = run(project, "import", "procfile", "-m", "web=2,worker=1")
    assert r.returncode == 0, r.stderr
    written = project.dir / ".lymph.yml"
    assert r.stdout.startswith(f"wrote {written.name}: web, worker, clock"), r.stdout
    text = written.read_text()
    assert "web:\n    command: " in text and "numprocesses: 2" in text, text
    project.config_path = written
    check = project.cli("check")
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith(f"{written}: ok, 3 services, 3 instances"), check.stdout
    assert "      PORT 5000-5001 (block 5000-5099)\n" in check.stdout
    assert "      PORT 5100 (block 5100-5199)\n" in check.stdout
    # The .lymph.yml now wins over the Procfile beside it, and runs the same.
    node = project.up("--no-tui")
    assert printed_ports(node, "web", 2) == {0: 5000, 1: 5001}
    assert printed_ports(node, "worker", 1) == {0: 5100}
    assert node.service("clock")["desired"] == 0
    node.stop()

    again = run(project, "import", "procfile")
    assert again.returncode == 2
    assert again.stderr == f"devnode: import: {written.name} exists; --force replaces it\n"
    assert written.read_text() == text
    forced = run(project, "import", "procfile", "--force")
    assert forced.returncode == 0, forced.stderr
    assert written.read_text() != text and "numprocesses: 1" in written.read_text()
    assert sorted(p.name for p in project.dir.iterdir() if ".import." in p.name) == []


def test_a_bad_procfile_names_line_and_column_and_starts_nothing(project):
    use_procfile(project, "web: sleep 1000\nweb.1: sleep 1000\n")
    node = project.up("--no-tui", wait=False)
    assert node.wait_exit() == 2
    assert node.output() == f"devnode: {project.dir}/Procfile:2:4: expected NAME: COMMAND, a name of letters, " \
                            "digits, '_' and '-' (comments start with #)\n"
    assert not (project.dir / ".devnode").exists()

    # What check finds in a command is placed in the Procfile, not in the YAML it stands for.
    use_procfile(project, "# app\n\nweb: sleep 1000\nworker:   nosuchprogram_xyz --run\n")
    r = project.cli("check")
    assert r.returncode == 2
    assert r.stderr == (f"devnode: {project.dir}/Procfile:4:11: instances.worker.command: "
                        "nosuchprogram_xyz: not found in PATH\n")

    use_procfile(project, "web: sleep 1000\nworker: sleep 1000\n")
    node = project.up("--no-tui", "-m", "web=1,wrk=2", wait=False)
    assert node.wait_exit() == 2
    assert node.output() == f"devnode: -m: {project.dir}/Procfile has no service 'wrk' (known: web, worker)\n"
    r = run(project, "import", "procfile", "-m", "web=x")
    assert r.returncode == 2
    assert "count of web must be a number 0..1000" in r.stderr
    assert not (project.dir / ".lymph.yml").exists()


def test_import_of_a_missing_procfile_and_unknown_kind(project):
    r = run(project, "import", "procfile")
    assert r.returncode == 2 and r.stderr == "devnode: Procfile: cannot read: No such file or directory\n"
    r = run(project, "import", "compose")
    assert r.returncode == 2 and "devnode import procfile [PROCFILE]" in r.stderr
    r = run(project, "status")
    assert r.returncode == 2 and "no .lymph.yml or Procfile in" in r.stderr
