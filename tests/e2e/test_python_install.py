"""The Python client installs offline (issue 18): `pip install --no-build-isolation --no-index
./clients/python` into a `python3 -m venv --system-site-packages` venv, with the setuptools
Debian ships; the installed package (not the source tree's) then serves under the node."""
import json
import subprocess

from demohelpers import NodeClient, wait_registered
from pyhelpers import CLIENT_DIR, PY_EXAMPLES, py_env


def test_offline_pip_install_into_a_venv_serves(project, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python3"
    r = subprocess.run([str(python), "-m", "pip", "install", "--no-build-isolation", "--no-index", str(CLIENT_DIR)],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr

    r = subprocess.run([str(python), "-I", "-c", "import devnode, devnode.web; print(devnode.__file__)"],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(str(venv / "lib")), r.stdout + r.stderr
    assert (venv / "bin" / "devnode-instance").exists()

    # Outside devnode the runner says so in one line.
    r = subprocess.run([str(python), "-I", "-m", "devnode", "instance", "x:Y"], capture_output=True, text=True,
                       timeout=60, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and r.stderr.startswith("devnode: "), r.stderr

    # -I: no PYTHONPATH, so the venv's copy runs, not the one `up` puts on PYTHONPATH.
    (project.dir / "greeting.py").write_text((PY_EXAMPLES / "services" / "greeting.py").read_text())
    project.write(f"instances:\n    Greeting:\n        command: {python} -I -m devnode instance greeting:Greeting\n"
                  "        ready: notify\n")
    project.up(env=py_env(project))
    client = NodeClient(project)
    try:
        wait_registered(client, "Greeting", 1, timeout=30)
    finally:
        client.close()
    r = project.cli("request", "Greeting.greet", '{"name": "Venv"}')
    assert (r.returncode, json.loads(r.stdout)) == (0, "Hi, Venv!"), r.stderr
