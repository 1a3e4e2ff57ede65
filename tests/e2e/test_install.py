"""`make install PREFIX=...` (issue 21, item 6): the binary, devnode(1), the completions and
the Python client land under the prefix, and the installed devnode runs a project folder that
has nothing to do with the clone, found on PATH like any installed program."""
import os
import shutil
import subprocess

import pytest

from conftest import ROOT, Node, base_env, wait_for

PRINTS_PORT = 'echo "port=$PORT"; exec sleep 1000'


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("prefix")
    r = subprocess.run(["make", "-s", "install", f"PREFIX={prefix}"], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return prefix, r.stdout


def test_install_puts_every_part_under_the_prefix(prefix):
    p, out = prefix
    assert os.access(p / "bin" / "devnode", os.X_OK)
    for rel in ("share/man/man1/devnode.1", "share/bash-completion/completions/devnode",
                "share/zsh/site-functions/_devnode", "share/fish/vendor_completions.d/devnode.fish"):
        assert (p / rel).stat().st_size > 0, rel
    assert (p / "share/bash-completion/completions/devnode").read_text() == subprocess.run(
        [str(p / "bin" / "devnode"), "completion", "bash"], capture_output=True, text=True, check=True).stdout
    if (ROOT / "clients" / "python" / "devnode").is_dir():
        assert (p / "share/devnode/python/devnode/__init__.py").is_file()
        assert "installed the Python package devnode in" in out
    else:
        assert "the Python client is not installed" in out
    assert f"installed devnode in {p}/bin" in out


@pytest.mark.skipif(not shutil.which("man"), reason="man is not installed on this machine")
def test_installed_man_page_renders(prefix):
    p, _ = prefix
    r = subprocess.run(["man", "-l", str(p / "share/man/man1/devnode.1")], capture_output=True, text=True,
                       timeout=60, env=base_env(MANPAGER="cat", PAGER="cat", MANWIDTH="100"))
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "DEVNODE(1)" in text and "devnode up [-c PATH]" in text and "devnode import procfile" in text
    assert "EXIT STATUS" in text


def test_installed_devnode_runs_a_project_outside_the_clone(prefix, project):
    p, _ = prefix
    assert ROOT not in project.dir.parents
    (project.dir / "Procfile").write_text(f"web: {PRINTS_PORT}\n")
    project.config_path = project.dir / "Procfile"
    env = project.node_env(PATH=f"{p}/bin:/usr/bin:/bin")
    out_path = project.dir / "node-out.txt"
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(["devnode", "up", "--no-tui"], cwd=project.dir, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    node = Node(project, proc, out_path, project.marker)
    project.nodes.append(node)
    cli_env = base_env(PATH=f"{p}/bin:/usr/bin:/bin")

    def installed(*args):
        return subprocess.run(["devnode", *args], cwd=project.dir, env=cli_env, capture_output=True, text=True,
                              timeout=30)

    def running():
        assert node.alive(), node.describe()
        r = installed("status")
        return r.returncode == 0 and "web.0" in r.stdout and "running" in r.stdout and r.stdout
    wait_for(running, 15, lambda: f"web.0 running; {node.describe()}")
    wait_for(lambda: "web.0   | port=5000" in node.output(), 15, lambda: node.describe())
    r = installed("stop")
    assert r.returncode == 0, r.stderr
    assert node.wait_exit() == 0
