"""The command table (cli/main.c, one entry per cli/cmd_*.c) is the one source of `devnode help`,
of every command's --help and of its option errors, and docs/cli.md's table agrees with it:
every command answers --help with its usage and exit 0, an unknown option with one
`devnode: COMMAND: ...` line plus the usage and exit 2, and the global options (-c, --json,
--color) may come before or after the command's name."""
import re
import subprocess

import pytest

from conftest import DEVNODE, ROOT, base_env

ONE = """\
instances:
    Web:
        command: exec sleep 1000
"""

# Operands that make each command that needs a node get as far as looking for it.
NODE_ARGS = {
    "status": [], "restart": ["Web"], "reload": [], "scale": ["Web", "2"], "stop": [], "start": ["Web"],
    "emit": ["greeted"], "subscribe": ["greeted"], "tui": [], "attach": ["Web.0"],
}
# Commands that need the node only without a remote registry (backends.registry): the same exit
# and line when there is neither.
NODE_OR_REGISTRY_ARGS = {"discover": []}


def run(*args, cwd=None):
    return subprocess.run([str(DEVNODE), *map(str, args)], capture_output=True, text=True, timeout=30,
                          env=base_env(), cwd=cwd, stdin=subprocess.DEVNULL)


def help_table():
    """`devnode help`: {(name, alias...): summary}."""
    r = run("help")
    assert r.returncode == 0 and r.stderr == "", r
    block = r.stdout.split("commands:\n", 1)[1].split("\n\n", 1)[0]
    table = {}
    for line in block.splitlines():
        m = re.match(r"^  ([\w-]+(?:, [\w-]+)*) +(\S.*)$", line)
        assert m, line
        table[tuple(m.group(1).split(", "))] = m.group(2)
    return table


def docs_table():
    """docs/cli.md's command table: {(name, alias...): summary}, backticks dropped."""
    text = (ROOT / "docs" / "cli.md").read_text()
    table = {}
    for line in text.splitlines():
        m = re.match(r"^\| (\[`[^|]*) \| (.*) \|$", line)
        if m:
            names = tuple(re.findall(r"`([^`]+)`", m.group(1)))
            table[names] = m.group(2).replace("`", "")
    assert table, "docs/cli.md has no command table"
    return table


def commands():
    return [names[0] for names in help_table()]


def every_name():
    return [name for names in help_table() for name in names]


def test_help_and_the_docs_table_list_the_same_commands_and_summaries():
    assert docs_table() == help_table()


@pytest.mark.parametrize("name", every_name())
def test_every_command_answers_help_with_its_usage(name):
    expected = run("help", name)
    assert expected.returncode == 0 and expected.stdout.split("\n")[0].split(" ")[:3] == ["usage:", "devnode", name], expected
    for flag in ("--help", "-h"):
        r = run(name, flag)
        assert (r.returncode, r.stdout, r.stderr) == (0, expected.stdout, ""), (flag, r)


@pytest.mark.parametrize("name", commands())
def test_every_command_refuses_an_unknown_option_in_one_line_plus_usage(name):
    usage = run("help", name).stdout.splitlines()[0]
    for bad in ("--no-such-option", "-Z"):
        r = run(name, bad, "-c", "/nonexistent/.lymph.yml")
        assert (r.returncode, r.stdout) == (2, ""), r
        assert r.stderr == f"devnode: {name}: unknown option '{bad}'\n{usage}\n", r


@pytest.mark.parametrize("args,message", [
    (("stop", "--timeout"), "devnode: stop: option '--timeout' needs a value"),
    (("tail", "-n"), "devnode: tail: option '-n' needs a value"),
    (("status", "--json=yes"), "devnode: status: option '--json' takes no value"),
    (("tail", "--loss"), "devnode: tail: ambiguous option '--loss'"),
    (("check", "--json"), "devnode: check: unknown option '--json'"),
    (("stop", "--color=never"), "devnode: stop: unknown option '--color'"),
])
def test_option_values_are_checked_by_the_table(args, message):
    r = run(*args)
    assert r.returncode == 2 and r.stdout == "", r
    first, usage = r.stderr.splitlines()
    assert first == message and usage.split(" ")[:3] == ["usage:", "devnode", args[0]], r


def test_help_for_an_unknown_command_is_a_usage_error():
    r = run("help", "nope")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "devnode: unknown command 'nope' (see `devnode help`)\n")


def test_global_options_before_or_after_the_command(project, tmp_path):
    project.write(ONE)
    cfg = str(project.config_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    after = run("check", "-c", cfg, cwd=elsewhere)
    assert after.returncode == 0 and after.stdout.startswith(f"{cfg}: ok, 1 service"), after
    for args in (("-c", cfg, "check"), (f"--config={cfg}", "check"), ("--config", cfg, "check"),
                 (f"-c{cfg}", "check")):
        r = run(*args, cwd=elsewhere)
        assert (r.returncode, r.stdout, r.stderr) == (0, after.stdout, after.stderr), (args, r)
    # --json before the command goes to the command that reports; a command that does not refuses it.
    r = run("--json", "-c", cfg, "status", cwd=elsewhere)
    assert r.returncode == 1 and "no node running" in r.stderr, r
    r = run("--json", "-c", cfg, "check", cwd=elsewhere)
    assert r.returncode == 2 and r.stderr.startswith("devnode: check: unknown option '--json'\n"), r
    r = run("--bogus", "check", cwd=elsewhere)
    assert r.returncode == 2 and r.stderr.startswith("devnode: unknown option '--bogus'"), r


def test_commands_that_need_a_node_say_so_and_exit_1_without_one(project):
    project.write(ONE)
    needing = {name for name in commands() if "needs the project's running node" in run("help", name).stdout}
    assert needing == set(NODE_ARGS), "list the operands of a new command that needs a node in NODE_ARGS"
    for name, operands in {**NODE_ARGS, **NODE_OR_REGISTRY_ARGS}.items():
        r = project.cli(name, *operands)
        assert r.returncode == 1 and "no node running" in r.stderr and r.stderr.count("\n") == 1, (name, r)
