"""Config loading through the binary: a bad .lymph.yml stops `up` with one precise line and
exit 2 before anything runs; `check` reports what would run."""
import fcntl
import subprocess
from pathlib import Path

import pytest

from conftest import DEVNODE, base_env, marked_pids

# Every otherwise valid service leaves evidence if it ever runs.
RUNS = "touch spawned-$DEVNODE_SERVICE; exec sleep 1000"


def line_col(text, needle, occurrence=1, value=None):
    """1-based line of the `occurrence`-th line containing needle, and the column of `value`
    (or of needle) on it."""
    seen = 0
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            seen += 1
            if seen == occurrence:
                return n, line.index(value if value is not None else needle) + 1
    raise AssertionError(f"{needle!r} not in config")


def lock_is_free(run_dir):
    lock = Path(run_dir) / "node.lock"
    if not lock.exists():
        return True
    with open(lock, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
    return True


def run_up(project, *args, env_extra=None):
    env = project.node_env(**(env_extra or {}))
    return subprocess.run([str(DEVNODE), "up", "-c", ".lymph.yml", *args], cwd=project.dir, env=env,
                          capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)


def assert_refused(project, result, path, line, col, key, message):
    """Exit 2, one stderr line `devnode: PATH:LINE:COL: KEY: message...`, nothing started."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected exactly one error line, got {lines!r}"
    prefix = f"devnode: {path}:{line}:" + (f"{col}:" if col is not None else "")
    assert lines[0].startswith(prefix), f"{lines[0]!r} does not start with {prefix!r}"
    if key is not None:
        assert f": {key}: " in lines[0], f"key path {key!r} missing from {lines[0]!r}"
    assert message in lines[0], f"{message!r} not in {lines[0]!r}"
    assert result.stdout == "", f"nothing should reach stdout: {result.stdout!r}"
    assert not list(project.dir.glob("spawned-*")), "a worker ran although the config is invalid"
    assert marked_pids(project.marker) == [], "a process was left running"
    assert lock_is_free(project.run_dir), "node.lock is held after a refused start"
    assert not (project.run_dir / "logs" / "devnode.jsonl").exists(), "a log was started"


SVC = f"""instances:
    Greeting:
        command: {RUNS}
"""

CASES = {
    # name: (config, needle for the line, occurrence, value for the column, key path, message)
    "yaml_syntax": (
        "instances:\n    Greeting:\n      command: exec sleep 1000\n     numprocesses: 2\n",
        "numprocesses", 1, "numprocesses", None, "YAML syntax error: did not find expected key"),
    "yaml_unclosed_flow": (
        "instances:\n    Greeting:\n        command: [exec, sleep\n    Other:\n        command: x\n",
        "Other", 1, None, None, "YAML syntax error"),
    "unknown_service_key": (
        SVC + "        bogus: 1\n", "bogus", 1, "bogus", "instances.Greeting.bogus", "unknown key"),
    "unknown_top_level_key": (
        SVC + "instancez: {}\n", "instancez", 1, "instancez", "instancez", "unknown key"),
    "numprocesses_not_integer": (
        SVC + "        numprocesses: three\n", "numprocesses", 1, "three",
        "instances.Greeting.numprocesses", 'must be an integer, got "three"'),
    "env_is_a_list": (
        SVC + "        env: [a, b]\n", "env:", 1, "[", "instances.Greeting.env", "must be a map"),
    "bad_restart_policy": (
        SVC + "        restart: sometimes\n", "restart:", 1, "sometimes",
        "instances.Greeting.restart", 'must be always, on-failure or never, got "sometimes"'),
    "bad_stop_timeout_unit": (
        SVC + "        stop_timeout: 5m\n", "stop_timeout", 1, "5m",
        "instances.Greeting.stop_timeout", '"5m"'),
    "bad_stop_signal": (
        SVC + "        stop_signal: BOGUS\n", "stop_signal", 1, "BOGUS",
        "instances.Greeting.stop_signal", '"BOGUS"'),
    "negative_count": (
        SVC + "        numprocesses: -1\n", "numprocesses", 1, "-1",
        "instances.Greeting.numprocesses", "must be a non-negative integer, got -1"),
    "empty_command": (
        SVC + "    Empty:\n        command: \"\"\n", 'command: ""', 1, '""',
        "instances.Empty.command", "must not be empty"),
    "blank_command": (
        SVC + "    Blank:\n        command: '   '\n", "command: '", 1, "'",
        "instances.Blank.command", "must not be empty"),
    "missing_command": (
        SVC + "    NoCmd:\n        numprocesses: 2\n", "NoCmd", 1, "NoCmd",
        "instances.NoCmd", 'missing required key "command"'),
    "duplicate_service": (
        SVC + f"    Greeting:\n        command: {RUNS}\n", "Greeting:", 2, "Greeting",
        "instances.Greeting", "duplicate key (first defined at line 2)"),
    "duplicate_env_name": (
        SVC + "        env:\n            A: 1\n            A: 2\n", "A: 2", 1, "A",
        "instances.Greeting.env.A", "duplicate key (first defined at line 5)"),
    "undefined_env_variable": (
        SVC.replace("exec sleep", "exec $(env.DEVNODE_E2E_NOPE) sleep"), "command:", 1, "touch",
        "instances.Greeting.command", "undefined variable $(env.DEVNODE_E2E_NOPE)"),
    "var_without_vars_file": (
        SVC + "        env: {DB: $(var.db.host)}\n", "env:", 1, "$(var",
        "instances.Greeting.env.DB", "undefined variable $(var.db.host)"),
    "socket_port_and_path": (
        SVC + "sockets:\n    Web: {port: 4080, path: x.sock}\n", "Web:", 1, "path:",
        "sockets.Web.path", "not both"),
    "unknown_socket_reference": (
        SVC + "        sockets: [Nope]\n", "sockets: [Nope]", 1, "Nope",
        "instances.Greeting.sockets[0]", 'no socket named "Nope"'),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_config_error_refused_before_anything_runs(project, case):
    config, needle, occurrence, value, key, message = CASES[case]
    project.write(config)
    line, col = line_col(config, needle, occurrence, value)
    if value is None:  # libyaml's own column; only the line is ours to check
        col = None
    result = run_up(project)
    assert_refused(project, result, ".lymph.yml", line, col, key, message)
    # `check` refuses the same file with the same line (here the path is the absolute one).
    check = project.cli("check", env=base_env())
    assert check.returncode == 2, check.stdout
    assert check.stdout == ""
    expected = result.stderr.replace("devnode: .lymph.yml:", f"devnode: {project.config_path}:", 1)
    assert check.stderr == expected


def test_undefined_var_in_vars_file(project):
    config = SVC + "        env:\n            HOST: $(var.db.host)\n            PORT: $(var.db.port)\n"
    project.write(config, {"vars.yml": "db:\n  host: h1\n"})
    line, col = line_col(config, "PORT:", 1, "$(var")
    result = run_up(project, "--vars", "vars.yml")
    assert_refused(project, result, ".lymph.yml", line, col, "instances.Greeting.env.PORT",
                   "undefined variable $(var.db.port)")


def test_undefined_env_var_with_vars_file_given(project):
    """A vars file does not make $(env.X) optional: the env reference is still named."""
    config = SVC + "        env:\n            HOST: $(var.db.host)\n            TOKEN: x_$(env.DEVNODE_E2E_TOKEN)\n"
    project.write(config, {"vars.yml": "db:\n  host: h1\n"})
    line, col = line_col(config, "TOKEN:", 1, "x_")
    result = run_up(project, "--vars", "vars.yml")
    assert_refused(project, result, ".lymph.yml", line, col, "instances.Greeting.env.TOKEN",
                   "undefined variable $(env.DEVNODE_E2E_TOKEN)")


def test_vars_file_syntax_error_names_the_vars_file(project):
    project.write(SVC + "        env: {DB: $(var.db.host)}\n", {"vars.yml": "db: [\n"})
    result = run_up(project, "--vars", "vars.yml")
    assert_refused(project, result, "vars.yml", 2, None, None, "YAML syntax error")


def test_missing_vars_file(project):
    project.write(SVC)
    result = run_up(project, "--vars", "nope.yml")
    assert result.returncode == 2
    assert result.stderr.strip() == "devnode: nope.yml: cannot read: No such file or directory"
    assert not list(project.dir.glob("spawned-*"))
    assert lock_is_free(project.run_dir)


def test_interpolation_resolves_env_and_vars(project):
    config = ("instances:\n    Greeting:\n        command: exec sleep $(var.sleep.seconds)\n"
              "        numprocesses: $(env.DEVNODE_E2E_COUNT)\n"
              "        env: {DB: \"$(var.db.host):$(var.db.port)\", RAW: $(date)}\n")
    project.write(config, {"vars.yml": "db:\n  host: h1\n  port: 5432\nsleep:\n  seconds: 1000\n"})
    env = base_env(DEVNODE_E2E_COUNT="2")
    r = project.cli("check", "--vars", "vars.yml", env=env)
    assert r.returncode == 0, r.stderr
    assert "ok, 1 service, 2 instances, 0 sockets" in r.stdout
    assert "      $ exec sleep 1000\n" in r.stdout
    assert "      DB=h1:5432  (env:, line 5)\n" in r.stdout
    assert "      RAW=$(date)  (env:, line 5)\n" in r.stdout


def test_check_ok_output(project):
    (project.dir / "sub").mkdir()
    project.write(
        "instances:\n"
        "    Greeting:\n"
        "        command: exec sleep 1000\n"
        "        numprocesses: 3\n"
        "        stop_signal: INT\n"
        "        stop_timeout: 500ms\n"
        "        restart: on-failure\n"
        "        cwd: sub\n"
        "        env: {A: \"1\", B: yes}\n"
        "    Web:\n"
        "        command: exec sleep 1000\n"
        "        numprocesses: 2\n"
        "        ready: {log: 'listening on', timeout: 5s}\n"
        "sockets:\n"
        "    Web: {port: 4080}\n"
        "logs: {buffer_lines: 200000, file_max_mb: 64, keep_files: 5}\n"
        "streams: {book.#: {retain_events: 1000}}\n"
        "container: {image: x}\n")
    r = project.cli("check")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"{project.config_path}: ok, 2 services, 5 instances, 1 socket"
    assert lines[1] == f"  Greeting x3  restart=on-failure stop=INT/0.5s cwd={project.dir / 'sub'}"
    assert lines[2] == "      $ exec sleep 1000"
    assert lines[3:5] == ["      A=1  (env:, line 9)", "      B=yes  (env:, line 9)"]
    assert lines[5] == "      ready: when started"
    assert lines[6] == "      PORT 5000-5002 (block 5000-5099)"
    assert lines[7] == f"  Web x2  restart=always stop=TERM/10.0s cwd={project.dir}"
    assert lines[9] == "      ready: a line matching /listening on/, timeout 5.0s"
    assert lines[10] == "      PORT 4080 (the port of socket Web)"
    assert "streams:" in lines and "  book.#  retain_events=1000" in lines
    assert "sockets:" in lines and "  Web  127.0.0.1:4080" in lines
    assert any("container" in l and "ignored" in l for l in lines), r.stdout
    # check starts nothing and takes no lock.
    assert not (project.run_dir / "logs").exists()
    assert lock_is_free(project.run_dir)
    assert marked_pids(project.marker) == []


def test_check_finds_config_in_parent_dir(project):
    project.write(SVC)
    sub = project.dir / "deeper" / "still"
    sub.mkdir(parents=True)
    r = subprocess.run([str(DEVNODE), "check"], cwd=sub, env=base_env(), capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{project.config_path}: ok, 1 service, 1 instance, 0 sockets")


def test_no_config_anywhere(tmp_path):
    r = subprocess.run([str(DEVNODE), "up"], cwd=tmp_path, env=base_env(), capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 2
    assert "no .lymph.yml" in r.stderr and str(tmp_path) in r.stderr
    assert not (tmp_path / ".devnode").exists()


def test_missing_config_file_says_cannot_read_as_documented(project):
    project.write(SVC)
    result = run_up(project, "-c", "nope.yml")
    assert result.returncode == 2
    assert result.stderr.strip() == "devnode: nope.yml: cannot read: No such file or directory"
    assert lock_is_free(project.run_dir)


def test_ready_log_pattern_with_a_stacked_repetition_is_refused(project):
    # glibc's regcomp needs memory exponential in such a stack; POSIX leaves it undefined.
    project.write("instances:\n    W:\n        command: exec sleep 1000\n        ready: {log: 'up+++'}\n")
    result = run_up(project)
    assert_refused(project, result, ".lymph.yml", 4, 22, "instances.W.ready.log",
                   "not a valid regular expression: a repetition (*, +, ? or {n}) repeated")
