"""Every recipe of docs/sockets.md, run against the real server: gunicorn (by LISTEN_FDS alone
and by fd://), uvicorn --fd, Node's listen({fd}) and Go's net.FileListener. Each serves
through the node's shared port from two instances and rolls without a failed request. Also
what devnode says when a command cannot take its socket: a compound command, a readiness
probe of the node's own port, a worker that binds the port itself."""
import os
import re
import shutil
import socket
import subprocess

import pytest

from conftest import PYTHON, ROOT, proc_environ, wait_for
from test_sockets import Load, free_port, get

RECIPES = ROOT / "examples" / "recipes"


@pytest.fixture(scope="session")
def go_server(tmp_path_factory):
    """examples/recipes/server.go built once per session, offline, with a throwaway cache."""
    if not shutil.which("go"):
        pytest.skip("no go toolchain")
    tmp = tmp_path_factory.mktemp("go")
    env = {**os.environ, "GOCACHE": str(tmp / "cache"), "HOME": str(tmp), "GOPATH": str(tmp / "gopath"),
           "GOPROXY": "off", "GOFLAGS": "", "CGO_ENABLED": "0"}
    out = tmp / "server"
    r = subprocess.run(["go", "build", "-o", str(out), str(RECIPES / "server.go")], cwd=tmp, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


# name -> (command as docs/sockets.md writes it, ready:, files copied into the project)
RECIPE_TABLE = {
    "gunicorn-listen-fds": ("gunicorn app:app", "notify", ["app.py"]),
    "gunicorn-fd": ("gunicorn --bind fd://$(socket.Web.fd) app:app", "notify", ["app.py"]),
    "uvicorn-fd": (f"{PYTHON} -m uvicorn --fd $(socket.Web.fd) asgi_app:app",
                   "{log: 'Uvicorn running'}", ["asgi_app.py"]),
    "node": ("node server.js $(socket.Web.fd)", "{log: 'listening on fd'}", ["server.js"]),
    "go": ("{go} $(socket.Web.fd)", "{log: 'serving on fd'}", []),
}


def instance_of(body):
    """The apps answer 'INSTANCE PID'."""
    return body.split()[0]


@pytest.mark.parametrize("recipe", list(RECIPE_TABLE))
def test_recipe_serves_from_every_instance_and_rolls_without_a_failure(project, recipe, request):
    command, ready, files = RECIPE_TABLE[recipe]
    if "{go}" in command:
        command = command.format(go=request.getfixturevalue("go_server"))
    port = free_port()
    project.write(f"""
instances:
    Web:
        command: {command}
        numprocesses: 2
        ready: {ready}
        stop_timeout: 10
sockets:
    Web: {{port: {port}}}
""", files={name: (RECIPES / name).read_text() for name in files})
    node = project.up()
    insts = node.wait_running("Web", 2, timeout=30)
    for inst in insts:
        env = proc_environ(inst["pid"])
        if ".fd)" not in command:
            assert env["LISTEN_FDS"] == "1" and env["LISTEN_PID"] == str(inst["pid"])
        else:
            # It picked its socket: no second offer by LISTEN_FDS (gunicorn would take both).
            assert "LISTEN_FDS" not in env and "LISTEN_PID" not in env and "LISTEN_FDNAMES" not in env, env
            assert env["LYMPH_SHARED_SOCKET_FDS"] == f'{{"{port}": 3}}'
    with Load(port, threads=4, parse=instance_of) as load:
        wait_for(lambda: load.pids == {"0", "1"}, 30,
                 lambda: f"both instances to answer on {port}; seen {load.pids}, failures {load.failures[:3]}")
        seq = node.records()[-1]["seq"]
        r = node.cli("restart", "Web", timeout=90)
        assert r.returncode == 0, r.stderr
        node.wait_node_line("rolling restart of Web done", timeout=60, after_seq=seq)
        before = load.count()
        wait_for(lambda: load.count() > before + 50, 30, "requests after the rolling restart")
    if recipe == "uvicorn-fd":
        # uvicorn's shutdown closes connections it accepted but had not read a request from
        # (docs/sockets.md): those, and only those, may fail.
        assert all("ConnectionResetError" in f or "RemoteDisconnected" in f for f in load.failures), \
            load.failures[:5]
        assert len(load.failures) <= 4, load.failures
    else:
        assert load.failures == [], load.failures[:5]
    new = {i["pid"] for i in node.wait_running("Web", 2)}
    assert not new & {i["pid"] for i in insts}


def test_cd_then_gunicorn_takes_the_socket_by_listen_fds(project):
    port = free_port()
    project.write(f"""
instances:
    Web:
        command: cd app && gunicorn app:app
        numprocesses: 2
        ready: notify
sockets:
    Web: {{port: {port}}}
""", files={"app/app.py": (RECIPES / "app.py").read_text()})
    node = project.up()
    insts = node.wait_running("Web", 2, timeout=30)
    for inst in insts:
        # exec'd: the supervised pid is gunicorn's, so LISTEN_PID named it
        assert "gunicorn" in open(f"/proc/{inst['pid']}/cmdline").read()
    seen = set()
    wait_for(lambda: seen.add(instance_of(get("/", port)[1])) or seen == {"0", "1"}, 30,
             lambda: f"both instances to answer on the shared port; seen {seen}")
    assert node.cli("check").stdout.count("warnings:") == 0


PIPED = "cd app && gunicorn app:app | cat"


def piped_warning(project):
    return (f"{project.config_path}:3: instances.Web.command: LISTEN_PID will name the shell, not the server: "
            "the shell cannot exec a command with a pipe, ||, &, a subshell or a control keyword, and servers "
            "that check LISTEN_PID (gunicorn, sd_listen_fds) then ignore the socket; use `cwd:` instead of "
            "`cd`, end the command in the server, or pass $(socket.Web.fd)")


def test_a_command_the_shell_cannot_exec_is_warned_about_in_check_and_up(project):
    port = free_port()
    project.write(f"""
instances:
    Web:
        command: {PIPED}
    Plain:
        command: cd app | cat
    Own:
        command: cd app && exec sleep 1000
        sockets: [Web]
sockets:
    Web: {{port: {port}}}
""", files={"app/app.py": (RECIPES / "app.py").read_text()})
    r = project.cli("check")
    assert r.returncode == 0, r.stderr
    assert f"warnings:\n  {piped_warning(project)}\n" in r.stdout
    assert "Plain.command" not in r.stdout  # no sockets, nothing to warn about
    assert "Own.command" not in r.stdout  # its own exec replaces the shell
    node = project.up()
    rec = node.wait_node_line(re.escape("LISTEN_PID will name the shell"))
    assert rec["text"] == piped_warning(project)
    assert rec["level"] == "warning"


def test_ready_tcp_on_the_services_own_socket_is_refused(project):
    port = free_port()
    project.write(f"""
instances:
    Web:
        command: sleep 1000
        ready: {{tcp: {port}}}
sockets:
    Web: {{port: {port}}}
""")
    want = (f"devnode: {project.config_path}:5:22: instances.Web.ready.tcp: port {port} is the node's own socket "
            "Web: the node accepts on it before any worker runs, so this check always passes; use "
            "`ready: notify` or `ready: {log: PATTERN}` for a line the server prints once it serves\n")
    r = project.cli("check")
    assert (r.returncode, r.stderr, r.stdout) == (2, want, "")
    node = project.up(wait=False)
    assert node.wait_exit() == 2
    assert node.output() == want
    # another host that reaches the same listener is the same mistake; another port is fine
    project.write(project.config_path.read_text().replace(f"tcp: {port}", f'tcp: "localhost:{port}"'))
    assert project.cli("check").returncode == 2
    project.write(project.config_path.read_text().replace(f'tcp: "localhost:{port}"', f"tcp: {port + 1}"))
    assert project.cli("check").returncode == 0


BINDS_ITSELF = (f"exec {PYTHON} -c \"import os, socket; s = socket.socket(); "
                "s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen()\"")


# Fails on a port of its own (held by the test) and says which, as Go and Node do: not the
# node's doing, so no hint.
BINDS_ANOTHER = """\
import socket, sys
port = int(sys.argv[1])
try:
    socket.socket().bind(("127.0.0.1", port))
except OSError as e:
    sys.exit(f"listen tcp 127.0.0.1:{port}: {e.strerror}")
"""


def test_a_worker_that_binds_the_port_itself_is_told_why_once(project):
    port = free_port()
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    held.listen()
    project.write(f"""
instances:
    Web:
        command: {BINDS_ITSELF}
        numprocesses: 2
    Metrics:
        command: {PYTHON} binds_another.py {held.getsockname()[1]}
        sockets: [Api]
sockets:
    Web: {{port: {port}}}
    Api: {{port: 0}}
""", files={"binds_another.py": BINDS_ANOTHER})
    node = project.up()
    hint = (f'"Address already in use" on 127.0.0.1:{port}: the node holds that port; '
            "take the socket from LISTEN_FDS or $(socket.Web.fd)")

    def crashes():
        return sum(1 for r in node.records() if r.get("service") == "Web" and "Address already in use" in r["text"])
    wait_for(lambda: crashes() >= 4, 30, "both instances to crash twice")
    hints = node.node_lines(re.escape(hint))
    assert len(hints) == 1, hints
    assert re.fullmatch(r"Web\.[01]: " + re.escape(hint), hints[0]["text"])
    assert hints[0]["level"] == "warning"
    # a restart is a new try: one more hint, still not one per line
    seq = node.records()[-1]["seq"]
    node.cli("restart", "Web")
    node.wait_node_line(re.escape(hint), after_seq=seq)
    wait_for(lambda: crashes() >= 8, 30, "more crashes")
    assert len(node.node_lines(re.escape(hint))) == 2
    other = f"listen tcp 127.0.0.1:{held.getsockname()[1]}: Address already in use"
    wait_for(lambda: sum(r.get("service") == "Metrics" and r["text"] == other for r in node.records()) >= 2, 15,
             "Metrics to fail twice on its own port")
    assert node.node_lines(r"^Metrics\.\d+: \"Address already in use\"") == []
    held.close()
