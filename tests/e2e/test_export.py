"""`devnode export systemd DIR` (docs/export.md): the units of the demo and of the socket
recipes pass `systemd-analyze verify` and match their golden copies; a generated ExecStart=
run under `systemd-socket-activate` takes the socket and answers a real HTTP request; the
command refuses what it cannot write and says what it does not export.

systemd-analyze verify works without systemd as PID 1; it checks that ExecStart='s program
exists, so the units are verified where the programs are (the repo's build/, /usr/bin). It
prints problems but may still exit 0, so a test also wants its stderr empty. User units
need a runtime directory: a private XDG_RUNTIME_DIR."""
import os
import re
import shutil
import signal
import stat
import subprocess

import pytest

from conftest import PYTHON, ROOT, wait_for
from systemd_envfile import unit_environment
from test_envfiles import DIALECT, DUMP, worker_env
from test_socket_recipes import RECIPE_TABLE, RECIPES, go_server  # noqa: F401 (a fixture)
from test_sockets import free_port, get

GOLDEN = ROOT / "tests" / "e2e" / "golden" / "export"
ANALYZE = shutil.which("systemd-analyze") or "/usr/bin/systemd-analyze"
ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/bin/systemd-socket-activate"


def export(project, out, *args, check=True):
    r = project.cli("export", "systemd", str(out), *args)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def unit_files(out):
    return sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())


def verify(out, tmp_path, user=False):
    """systemd-analyze verify on every unit, with the template services as their instances."""
    names = []
    for name in unit_files(out):
        if "/" in name or name.endswith(".env"):
            continue  # a drop-in or an environment file: read with its instance
        if name.endswith("@.service"):
            target = (out / next(n for n in unit_files(out) if n.endswith(".target"))).read_text()
            stem = name[:-len("@.service")]
            instances = re.findall(rf"^Wants=({re.escape(stem)}@\d+\.service)$", target, re.M) or [f"{stem}@0.service"]
            names += instances
        else:
            names.append(name)
    env = dict(os.environ)
    cmd = [ANALYZE]
    if user:
        rt = tmp_path / "xdg-runtime"
        rt.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(rt)
        cmd.append("--user")
    cmd += ["verify", "--man=no", *[f"./{n}" for n in names]]
    r = subprocess.run(cmd, cwd=out, env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr.strip() == "", f"{cmd}: exit {r.returncode}\n{r.stderr}"


def check_golden(out, name, replace):
    """Compares the files in out with tests/e2e/golden/export/NAME (UPDATE_GOLDEN=1 rewrites them)."""
    golden = GOLDEN / name
    got = {}
    for rel in unit_files(out):
        text = (out / rel).read_text()
        for old, new in replace.items():
            text = text.replace(old, new)
        got[rel] = text
    if os.environ.get("UPDATE_GOLDEN"):
        shutil.rmtree(golden, ignore_errors=True)
        for rel, text in got.items():
            (golden / rel).parent.mkdir(parents=True, exist_ok=True)
            (golden / rel).write_text(text)
    want = {p.relative_to(golden).as_posix(): p.read_text() for p in golden.rglob("*") if p.is_file()}
    assert sorted(got) == sorted(want)
    for rel in want:
        assert got[rel] == want[rel], f"{rel} differs from {golden / rel} (UPDATE_GOLDEN=1 rewrites it)"


# ---------------------------------------------------------------- the demo

@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_demo_units_pass_verify_and_match_golden(project, tmp_path, user):
    out = tmp_path / "units"
    args = ["--name", "demo"] + (["--user"] if user else [])
    r = project.cli("export", "systemd", str(out), *args, "-c", str(ROOT / ".lymph.yml"))
    assert r.returncode == 0, r.stderr
    files = unit_files(out)
    assert "demo-Web@.service" in files and "demo-Web.socket" in files and "demo.target" in files
    assert "demo-Listen@3.service.d/port.conf" in files
    for name in files:
        assert f"wrote {out}/{name}" in r.stdout
    assert "not exported: rolling restarts" in r.stdout
    verify(out, tmp_path, user=user)
    if os.geteuid() == 0 or user:  # no User= line: the golden copy holds on any machine
        check_golden(out, "demo-user" if user else "demo", {str(ROOT): "@ROOT@"})
    web = (out / "demo-Web@.service").read_text()
    assert f"ExecStart={ROOT}/build/examples/demo_web\n" in web
    assert "Sockets=demo-Web.socket\n" in web and "Type=notify\n" in web
    target = (out / "demo.target").read_text()
    assert [f"demo-Listen@{i}.service" for i in range(4)] == re.findall(r"^Wants=(demo-Listen@\d\.service)$",
                                                                        target, re.M)


# ---------------------------------------------------------------- the socket recipes

def recipe_project(project, command, ready, files=(), port=None):
    port = port or free_port()
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
    return port


@pytest.mark.parametrize("recipe", list(RECIPE_TABLE) + ["cd-then-gunicorn"])
def test_recipe_units_pass_verify(project, tmp_path, recipe, request):
    if recipe == "cd-then-gunicorn":
        command, ready, files = "cd app && gunicorn app:app", "notify", []
        (project.dir / "app").mkdir()
    else:
        command, ready, files = RECIPE_TABLE[recipe]
    if "{go}" in command:
        command = command.format(go=request.getfixturevalue("go_server"))
    port = recipe_project(project, command, ready, files, port=4080)
    out = tmp_path / "units"
    r = export(project, out, "--name", "shop")
    verify(out, tmp_path)
    web = (out / "shop-Web@.service").read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", web, re.M).group(1)
    if recipe == "cd-then-gunicorn":
        assert exec_start == '/bin/sh -c "cd app && exec gunicorn app:app"'
    else:
        assert not exec_start.startswith("/bin/sh"), exec_start
        assert exec_start.startswith("/"), exec_start  # systemd's PATH is not the user's
    assert "$(socket" not in exec_start
    if ".fd)" in command:
        assert "UnsetEnvironment=LISTEN_FDS LISTEN_PID LISTEN_FDNAMES\n" in web
    if "log:" in ready:
        assert "not exported: instances.Web.ready.log" in r.stdout
        assert "# not exported: instances.Web.ready.log" in web
        assert "Type=exec\n" in web
    assert f"ListenStream=127.0.0.1:{port}\n" in (out / "shop-Web.socket").read_text()
    if recipe in ("gunicorn-listen-fds", "gunicorn-fd", "go"):
        replace = {str(project.dir): "@DIR@"}
        if recipe == "go":
            replace[str(request.getfixturevalue("go_server"))] = "@GO@"
        else:  # found in the PATH at export time
            replace[shutil.which("gunicorn")] = "@GUNICORN@"
        check_golden(out, f"recipe-{recipe}", replace)


# ---------------------------------------------------------------- running an ExecStart=

def systemd_words(line, env, instance):
    """ExecStart='s argv the way systemd builds it, for the forms the export writes: words in
    double quotes with C escapes, %% and %i, $$, ${NAME} (one word) and $NAME (split)."""
    words, i = [], 0
    while i < len(line):
        if line[i] == " ":
            i += 1
            continue
        word, quoted = "", False
        while i < len(line) and (quoted or line[i] != " "):
            c = line[i]
            if c == '"':
                quoted = not quoted
            elif c == "\\":
                nxt = line[i + 1]
                i += 1
                if nxt == "x":
                    word += chr(int(line[i + 1:i + 3], 16))
                    i += 2
                else:
                    word += {"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt)
            elif c == "%":
                nxt = line[i + 1]
                i += 1
                word += {"%": "%", "i": instance}[nxt]
            else:
                word += c
            i += 1
        words.append(word)
    argv = []
    for w in words:
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            argv += env.get(m.group(1), "").split()
            continue
        w = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), w)
        argv.append(w.replace("$$", "$"))
    return argv


def run_unit_under_socket_activate(project, unit, socket_unit, instance="0"):
    """Starts the unit's ExecStart= as systemd would, with the socket from
    systemd-socket-activate (LISTEN_FDS=1, fd 3, LISTEN_PID its own pid, which exec keeps)."""
    env = {}
    for value in re.findall(r'^Environment="(.*)"$', unit, re.M):
        name, _, v = systemd_words(f'"{value}"', {}, instance)[0].partition("=")
        env[name] = v
    cwd = re.search(r"^WorkingDirectory=(.*)$", unit, re.M).group(1)
    argv = systemd_words(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1), env, instance)
    prefix = []
    unset = re.search(r"^UnsetEnvironment=(.*)$", unit, re.M)
    if unset:  # systemd drops them after setting them; env -u does it here (and execs: same pid)
        prefix = ["/usr/bin/env"] + [a for n in unset.group(1).split() for a in ("-u", n)]
    listen = re.search(r"^ListenStream=(.*)$", socket_unit, re.M).group(1)
    fdname = re.search(r"^FileDescriptorName=(.*)$", socket_unit, re.M).group(1)
    cmd = [ACTIVATE, "-l", listen, f"--fdname={fdname}",
           "-E", f"DEVNODE_TEST_MARKER={project.marker}", "-E", "PATH=/usr/local/bin:/usr/bin:/bin"]
    for k, v in env.items():
        cmd += ["-E", f"{k}={v}"]
    log = open(project.dir / "activate.log", "wb")
    proc = subprocess.Popen(cmd + prefix + argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    return proc, argv


@pytest.mark.parametrize("variant", ["gunicorn-listen-fds", "cd-then-gunicorn", "gunicorn-fd"])
def test_generated_exec_start_takes_the_socket(project, tmp_path, variant):
    if not shutil.which("gunicorn"):
        pytest.skip("no gunicorn")
    port = free_port()
    command, files = {
        "gunicorn-listen-fds": ("gunicorn app:app", {"app.py": (RECIPES / "app.py").read_text()}),
        "cd-then-gunicorn": ("cd app && gunicorn app:app", {"app/app.py": (RECIPES / "app.py").read_text()}),
        "gunicorn-fd": ("gunicorn --bind fd://$(socket.Web.fd) app:app", {"app.py": (RECIPES / "app.py").read_text()}),
    }[variant]
    project.write(f"""
instances:
    Web:
        command: {command}
        ready: notify
sockets:
    Web: {{port: {port}}}
""", files=files)
    out = tmp_path / "units"
    export(project, out, "--name", "shop")
    unit = (out / "shop-Web@.service").read_text()
    proc, argv = run_unit_under_socket_activate(project, unit, (out / "shop-Web.socket").read_text())
    try:
        status, body, _ = wait_for(lambda: get("/", port, timeout=2), 30,
                                   lambda: f"an answer on {port} from {argv}: "
                                           f"{(project.dir / 'activate.log').read_text()[-2000:]}")
        assert status == 200
        instance, pid = body.split()
        assert instance == "0"  # DEVNODE_INSTANCE=%i
        # The pid systemd-socket-activate started is gunicorn's own (the shell exec'd it), so
        # LISTEN_PID named it; the answer came from one of its workers.
        assert "gunicorn" in open(f"/proc/{proc.pid}/cmdline").read()
        assert int(pid) != proc.pid
        log = (project.dir / "activate.log").read_text()
        assert "Listening at: fd://3" in log or f"Listening at: http://127.0.0.1:{port}" in log, log
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


# ---------------------------------------------------------------- the command

def test_export_refuses_to_overwrite_a_changed_unit_and_writes_nothing(project, tmp_path):
    project.write("instances:\n    Web:\n        command: /bin/sleep 1000\n        numprocesses: 2\n")
    out = tmp_path / "units"
    export(project, out, "--name", "p")
    again = export(project, out, "--name", "p")
    assert f"unchanged {out}/p-Web@.service" in again.stdout
    (out / "p-Web@.service").write_text("# mine\n")
    project.write("instances:\n    Web:\n        command: /bin/sleep 1000\n        numprocesses: 3\n")
    r = export(project, out, "--name", "p", check=False)
    assert r.returncode == 1
    assert f"devnode: export: {out}/p-Web@.service exists with other content (--force overwrites it)" in r.stderr
    assert "p-Web@2.service" not in (out / "p.target").read_text()  # all or nothing
    r = export(project, out, "--name", "p", "--force")
    assert f"wrote {out}/p-Web@.service" in r.stdout and f"wrote {out}/p.target" in r.stdout
    assert "Wants=p-Web@2.service" in (out / "p.target").read_text()
    assert (out / "p-Web@.service").read_text().startswith("# Service Web of p")


def test_export_names_the_project_after_its_folder(project, tmp_path):
    project.write("instances:\n    Web: {command: /bin/sleep 1000}\n")
    out = tmp_path / "units"
    r = export(project, out)
    name = re.sub(r"-+", "-", re.sub(r"[^A-Za-z0-9_.-]", "-", project.dir.name)).strip("-.")
    assert f"wrote {out}/{name}-Web@.service" in r.stdout
    assert f"enable --now {name}.target" in r.stdout


@pytest.mark.parametrize("args,config,message", [
    (["systemd"], None, "devnode: export systemd: name the directory to write the units to"),
    (["upstart", "x"], None, "devnode: export: unknown format 'upstart' (devnode exports: systemd)"),
    (["systemd", "x", "--name", "a b"], None, "devnode: export: --name 'a b': a project name is"),
    (["systemd", "x"], "sockets:\n    Web: {port: 0}\ninstances:\n    Web: {command: /bin/sleep 1}\n",
     ":2: sockets.Web.port: 0 (a free port picked when the node binds) cannot be exported"),
    (["systemd", "x"], "instances:\n    Web: {command: /bin/sleep 1, restart: sometimes}\n",
     "instances.Web.restart: must be"),
])
def test_export_refuses_bad_input_with_exit_2(project, tmp_path, args, config, message):
    project.write(config or "instances:\n    Web: {command: /bin/sleep 1000}\n")
    r = project.cli("export", *[str(tmp_path / a) if a == "x" else a for a in args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr
    assert r.stderr.count("\n") <= 2
    assert not (tmp_path / "x").exists()


def test_export_says_what_it_does_not_export(project, tmp_path):
    project.write("""
instances:
    Web:
        command: /bin/sleep 1000
        ready: {tcp: 9999}
        env: {my-var: 1}
    Log:
        command: /bin/sleep 1000
        ready: {log: started}
streams:
    book.#:
interfaces:
    Web: {}
""")
    out = tmp_path / "units"
    r = export(project, out, "--name", "p")
    lines = [l for l in r.stdout.splitlines() if l.startswith("not exported: ")]
    for want in ("instances.Web.ready.tcp: systemd has no readiness by TCP connect",
                 "instances.Log.ready.log: systemd has no readiness by log line",
                 "instances.Web.env.my-var: systemd takes only variable names",
                 "streams: retained streams live in the node's event bus",
                 "interfaces: read by lymph services, ignored by the node",
                 "restart backoff", "rolling restarts", "the node's registry and event bus", "logs: "):
        assert any(want in l for l in lines), (want, lines)
    verify(out, tmp_path)
    r = project.cli("help", "export")
    assert "docs/export.md" in r.stdout and "--user" in r.stdout


def test_backends_go_to_the_environment_file_events_too(project, tmp_path):
    """backends: (issue 19) reaches the units as the node hands it to its workers, in the
    environment file (a URL may hold a password); a service's own env: wins, as under devnode."""
    project.write("backends:\n    registry: zookeeper://zk1:2181,zk2/lymph\n    ip: 10.0.0.5\n"
                  "instances:\n    Web: {command: /bin/sleep 1000}\n"
                  "    Api: {command: /bin/sleep 1000, env: {DEVNODE_IP: 10.0.0.6}}\n")
    out = tmp_path / "units"
    export(project, out, "--name", "p")
    web = (out / "p-Web.env").read_text()
    assert 'DEVNODE_REGISTRY="zookeeper://zk1:2181,zk2/lymph"\n' in web, web
    assert 'DEVNODE_IP="10.0.0.5"\n' in web, web
    api = (out / "p-Api.env").read_text().splitlines()
    ips = [l for l in api if "DEVNODE_IP=" in l]
    assert ips == ['DEVNODE_IP="10.0.0.6"'], ips
    assert "DEVNODE_IP" not in (out / "p-Api@.service").read_text()
    assert unit_environment(out / "p-Api@.service")["DEVNODE_IP"] == "10.0.0.6"
    verify(out, tmp_path)

    project.write("backends:\n    events: amqp://guest:guest@mq/%2F\ninstances:\n    Web: {command: /bin/sleep 1}\n")
    r = project.cli("export", "systemd", str(tmp_path / "x"), "--name", "p")
    assert r.returncode == 0, r.stderr
    assert "guest" not in (tmp_path / "x" / "p-Web@.service").read_text()
    # No specifiers in an environment file: % stays as it is.
    assert 'DEVNODE_EVENTS="amqp://guest:guest@mq/%2F"\n' in (tmp_path / "x" / "p-Web.env").read_text()


# ---------------------------------------------------------------- environment files

# Values that systemd's and devnode's readings could tell apart: quotes of both kinds, spaces
# at the ends, $ and ${} (no expansion in either), backslashes, '#', '%' (no specifiers in an
# environment file), backquotes, several lines; on top of the whole .env dialect.
TRICKY = DIALECT + """\
SECRET_QUOTES="say \\"hi\\" it's"
SECRET_SPACES='  lead and trail  '
SECRET_DOLLAR='$HOME ${PATH} $$ $(id) `id` \\$'
SECRET_BACKSLASH='a\\b\\\\c\\'
SECRET_HASH=x#y # a comment
SECRET_PERCENT='100% %i %% %Y'
SECRET_LINES="-----BEGIN KEY-----
  a#b \\"q\\"
-----END KEY-----"
"""
SECRETS = ["say", "lead and trail", "${PATH} $$", "a\\b", "x#y", "100% %i", "BEGIN KEY", "app-pw-9"]


def env_project(project):
    project.write(f"env_file: [common.env]\n"
                  f"instances:\n"
                  f"    Dump:\n"
                  f"        command: {DUMP}\n"
                  f"        env:\n"
                  f"            DB_URL: 'postgres://app:$(env.DB_PASSWORD)@db/app'\n"
                  f"            GREETING: Hi %u\n"
                  f"            DEVNODE_SERVICE: not-this\n",
                  {".env": TRICKY + "DB_PASSWORD=app-pw-9\n", "common.env": "COMMON_TOKEN='tok \"en\"'\nHASH=common\n"})


def test_env_values_stay_out_of_the_units_and_systemd_reads_what_devnode_gives(project, tmp_path):
    """The environment a worker gets under `devnode up` is the one systemd builds from the
    exported unit (its Environment= lines, then its EnvironmentFile=, read by a port of
    systemd's own parser), for every name of .env, env_file and env:; no value is in a unit,
    and the file is mode 0600."""
    env_project(project)
    node = project.up()
    worker = worker_env(project, "Dump", node)
    node.stop()
    out = tmp_path / "units"
    r = export(project, out, "--name", "p")
    assert f"wrote {out}/p-Dump.env (mode 0600)\n" in r.stdout
    assert stat.S_IMODE(os.stat(out / "p-Dump.env").st_mode) == 0o600
    for name in unit_files(out):
        if name.endswith(".env"):
            continue
        assert stat.S_IMODE(os.stat(out / name).st_mode) & 0o044 == 0o044, name  # units stay readable
        text = (out / name).read_text()
        for secret in SECRETS:
            assert secret not in text, (name, secret)
    for secret in SECRETS:
        assert secret not in r.stdout
    unit = (out / "p-Dump@.service").read_text()
    assert "\nEnvironmentFile=%Y/p-Dump.env\n" in unit
    systemd = unit_environment(out / "p-Dump@.service", "0")
    names = [l.split("=", 1)[0].replace("export ", "").strip() for l in (TRICKY + "DB_PASSWORD=\n").splitlines()
             if "=" in l and not l.startswith(("#", " ", "-"))]
    names += ["COMMON_TOKEN", "HASH", "DB_URL", "GREETING", "DEVNODE_SERVICE", "DEVNODE_INSTANCE",
              "LYMPH_SERVICE_NAME", "PYTHONUNBUFFERED"]
    assert len(names) > 30
    assert {k: systemd.get(k) for k in names} == {k: worker.get(k) for k in names}
    assert worker["SECRET_LINES"].count("\n") == 2 and worker["DB_URL"] == "postgres://app:app-pw-9@db/app"
    assert worker["DEVNODE_SERVICE"] == "Dump"  # devnode's own wins over env:, in the units too
    verify(out, tmp_path)

    # Editing .env: export again rewrites the environment file only.
    (project.dir / ".env").write_text(TRICKY + "DB_PASSWORD=new-pw-1\n")
    os.chmod(out / "p-Dump.env", 0o644)
    r = export(project, out, "--name", "p", "--force")
    assert f"unchanged {out}/p-Dump@.service\n" in r.stdout and f"wrote {out}/p-Dump.env (mode 0600)\n" in r.stdout
    assert stat.S_IMODE(os.stat(out / "p-Dump.env").st_mode) == 0o600
    assert unit_environment(out / "p-Dump@.service")["DB_URL"] == "postgres://app:new-pw-1@db/app"
    assert not [p for p in out.iterdir() if p.name.startswith(".devnode-export")]


def test_a_value_systemd_cannot_hold_is_refused_by_name_and_nothing_is_written(project, tmp_path):
    env_project(project)
    out = tmp_path / "units"
    export(project, out, "--name", "p")
    before = {n: (out / n).read_bytes() for n in unit_files(out)}
    (project.dir / ".env").write_bytes(b"DB_PASSWORD=app-pw-9\nAPI_KEY=s3cret\xff\n")
    r = export(project, out, "--name", "p", "--force", check=False)
    assert r.returncode == 2
    assert r.stderr == (f"devnode: export: {project.dir}/.env:2: instances.Dump: API_KEY: its value holds bytes that "
                        "are not UTF-8, and systemd ignores such a line of an EnvironmentFile=\n")
    assert r.stdout == ""
    assert {n: (out / n).read_bytes() for n in unit_files(out)} == before
    r = export(project, tmp_path / "fresh", "--name", "p", check=False)
    assert r.returncode == 2 and not (tmp_path / "fresh").exists()
    # A path that is not a file stops even a --force export before anything is written.
    (project.dir / ".env").write_text("DB_PASSWORD=changed-pw\n")
    (out / "p-Dump.env").unlink()
    (out / "p-Dump.env").mkdir()
    r = export(project, out, "--name", "p", "--force", check=False)
    assert r.returncode == 1 and r.stderr == f"devnode: export: {out}/p-Dump.env exists and is not a regular file\n"
    assert {n: (out / n).read_bytes() for n in unit_files(out)} == {n: b for n, b in before.items() if n != "p-Dump.env"}
    (out / "p-Dump.env").rmdir()
    (project.dir / ".env").write_text(TRICKY + "DB_PASSWORD=app-pw-9\n")
    # A Unicode noncharacter, which systemd's UTF-8 check refuses too, from env: this time.
    (project.dir / ".env").write_text("DB_PASSWORD=app-pw-9\n")
    project.write(f"instances:\n    Dump:\n        command: {DUMP}\n        env: {{TOKEN: \"x\\uFFFEy\"}}\n")
    r = export(project, tmp_path / "fresh", "--name", "p", check=False)
    assert r.returncode == 2 and ":4: instances.Dump: TOKEN: its value holds a Unicode noncharacter" in r.stderr
    assert len(r.stderr.splitlines()) == 1 and not (tmp_path / "fresh").exists()


def test_dry_run_shows_the_files_but_no_value(project, tmp_path):
    env_project(project)
    out = tmp_path / "units"
    r = export(project, out, "--name", "p", "--dry-run")
    assert not out.exists()
    assert f"==> {out}/p-Dump@.service: would write <==\n" in r.stdout
    assert f"==> {out}/p-Dump.env: would write, mode 0600, values not shown <==\n" in r.stdout
    assert "\nSECRET_LINES=(" in r.stdout and "\nDB_URL=(30 bytes, not shown)\n" in r.stdout
    for secret in SECRETS:
        assert secret not in r.stdout, secret
    assert "dry run, install: cp -r" in r.stdout
    export(project, out, "--name", "p")
    r = export(project, out, "--name", "p", "--dry-run")
    assert f"==> {out}/p-Dump.env: unchanged, mode 0600, values not shown <==\n" in r.stdout
