"""Errors where users expect them: a service or instance name that does not exist is a usage
error naming the known ones (tail, restart, scale, discover), and the commands that talk to a
running node, or read its run dir, never trip over the config's interpolation of an unrelated
service's $(env.X)."""
import json
import subprocess

import pytest

from conftest import DEVNODE, base_env, wait_for

THREE = """\
instances:
    Web:
        command: exec sleep 1000
        numprocesses: 2
    Greeting:
        command: exec sleep 1000
    Listen:
        command: exec sleep 1000
"""
KNOWN = "(known: Greeting, Listen, Web)"


def one_line_error(r, code, message):
    assert (r.returncode, r.stdout, r.stderr) == (code, "", message + "\n"), r


@pytest.mark.parametrize("args,message", [
    (("tail", "-n", "2", "Nope"), f"devnode: tail: no service 'Nope' {KNOWN}"),
    (("tail", "-f", "Web", "Nope"), f"devnode: tail: no service 'Nope' {KNOWN}"),
    (("tail", "-n", "2", "Web.7"), "devnode: tail: Web has no instance 7 (known: Web.0, Web.1)"),
    (("tail", "--trace", "abc", "web"), f"devnode: tail: no service 'web' {KNOWN}"),
    (("restart", "Nope"), f"devnode: restart: no service 'Nope' {KNOWN}"),
    (("restart", "Web.1", "Web.7"), "devnode: restart: Web has no instance 7 (known: Web.0, Web.1)"),
    (("scale", "Nope", "2"), f"devnode: scale: no service 'Nope' {KNOWN}"),
    (("scale", "Web.1", "2"), f"devnode: scale: no service 'Web.1' {KNOWN}"),
    (("discover", "Nope"), "devnode: discover: no service 'Nope' in the registry (known: none)"),
])
def test_unknown_service_or_instance_is_a_usage_error_naming_the_known_ones(project, args, message):
    project.write(THREE)
    node = project.up()
    node.wait_running("Web", 2)
    before = {s["name"]: [i["pid"] for i in s["instances"]] for s in node.status()["services"]}
    one_line_error(project.cli(*args), 2, message)
    # Nothing was done: no restart, no scale.
    after = {s["name"]: [i["pid"] for i in s["instances"]] for s in node.status()["services"]}
    assert after == before


def test_known_names_still_work_and_scaled_to_zero_is_named(project):
    project.write(THREE)
    node = project.up()
    node.wait_running("Web", 2)
    r = project.cli("tail", "-n", "2", "Web.1", "Greeting", "devnode")
    assert r.returncode == 0 and r.stderr == "", r
    assert project.cli("scale", "Greeting", "0").returncode == 0
    node.wait_running("Greeting", 0)
    one_line_error(project.cli("restart", "Greeting.0"), 2,
                   "devnode: restart: Greeting has no instance 0 (known: none: scaled to 0)")


def test_offline_tail_checks_names_against_the_config(project):
    project.write(THREE)
    node = project.up()
    node.wait_running("Web", 2)
    node.stop()
    one_line_error(project.cli("tail", "-n", "2", "Nope"), 2, f"devnode: tail: no service 'Nope' {KNOWN}")
    r = project.cli("tail", "-n", "2", "devnode")
    assert r.returncode == 0 and "stopped 4 instances of 3 services" in r.stdout, r


# ---------------------------------------------------------------- no interpolation beside a node

UNRELATED_ENV = """\
instances:
    Db:
        command: echo "db at $(env.DATABASE_URL) $(var.db.name)"; exec sleep 1000
    Web:
        command: echo web-up; exec sleep 1000
streams:
    book.#: {retain_events: 100}
"""


def test_commands_beside_a_node_ignore_an_unrelated_undefined_variable(project, tmp_path):
    vars_file = tmp_path / "vars.yml"
    vars_file.write_text("db: {name: books}\n")
    project.write(UNRELATED_ENV)
    node = project.up(env=project.node_env(DATABASE_URL="postgres://db", LYMPH_VARS=str(vars_file)))
    node.wait_log(lambda r: r["text"] == "db at postgres://db books")
    env = base_env()  # neither DATABASE_URL nor LYMPH_VARS in this shell
    assert "DATABASE_URL" not in env
    cli = lambda *args: project.cli(*args, env=env)

    def ok(*args):
        r = cli(*args)
        assert r.returncode == 0 and "undefined variable" not in r.stderr, (args, r)
        return r

    # Commands that only talk to the node.
    assert json.loads(ok("status", "--json").stdout)["node"]["pid"] == node.pid
    assert "web-up" in ok("tail", "-n", "5", "Web").stdout
    ok("traces")
    ok("discover")
    ok("emit", "book.added", '{"title": "Dune"}')
    ok("restart", "Web")
    ok("scale", "Web", "2")
    sub = subprocess.Popen([str(DEVNODE), "subscribe", "-c", str(project.config_path), "-n", "1", "book.#"],
                           env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # (emitted until the subscription, which has no "subscribed" signal, sees one)
        wait_for(lambda: ok("emit", "book.read", "{}") and sub.poll() is not None, 10, "subscribe -n 1 to get an event")
        out, err = sub.communicate(timeout=5)
        assert sub.returncode == 0 and "book.read" in out and "undefined variable" not in err, (out, err)
    finally:
        if sub.poll() is None:
            sub.kill()
            sub.wait()
    r = cli("tui")  # no terminal here: the dashboard says so, not the config
    assert (r.returncode, r.stderr) == (2, "devnode: devnode tui needs a terminal; use devnode tail\n"), r
    # A command that reads the config for its streams.
    wait_for(lambda: "book.added" in ok("events").stdout, 10, "the emitted event in `devnode events`")
    ok("stop")
    node.wait_exit(10)
    # With no node: tail and events read the run dir.
    assert "db at postgres://db" in ok("tail", "-n", "100", "Db").stdout
    assert "book.added" in ok("events").stdout
    # `up` itself still needs the variable, and says so.
    r = project.cli("up", env=env)
    assert r.returncode == 2 and "undefined variable $(env.DATABASE_URL)" in r.stderr, r
