"""Helpers for the end-to-end tests of the Python client (clients/python, issue 18): projects
whose services run `python3 -m devnode instance` under the real node, with Debian's python3
first on PATH (the one with python3-zmq, python3-msgpack and python3-werkzeug)."""
import os
import shutil
import subprocess

from conftest import ROOT

PY_EXAMPLES = ROOT / "examples" / "python"
CLIENT_DIR = ROOT / "clients" / "python"


def py_env(project, **extra):
    """The node's environment with /usr/bin first: `python3` in commands is Debian's."""
    env = project.node_env(**extra)
    env["PATH"] = "/usr/bin:/bin:" + env.get("PATH", "")
    return env


def copy_examples(project):
    """examples/python's services/ and conf/ into the project dir."""
    for sub in ("services", "conf"):
        shutil.copytree(PY_EXAMPLES / sub, project.dir / sub, dirs_exist_ok=True)


def curl(port, path, headers=()):
    """One request with the real curl: (status, body, {header: value} lower-cased)."""
    cmd = ["curl", "-s", "-i", "--max-time", "10"]
    for h in headers:
        cmd += ["-H", h]
    r = subprocess.run(cmd + [f"http://127.0.0.1:{port}{path}"], capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    head, _, body = r.stdout.replace("\r\n", "\n").partition("\n\n")
    lines = head.split("\n")
    status = int(lines[0].split()[1])
    headers_out = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers_out[k.strip().lower()] = v.strip()
    return status, body, headers_out


def write_service(project, name, text):
    p = project.dir / "services" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def py_config(services, sockets=None, streams=None):
    """A .lymph.yml from {name: (spec, count, {key: value})}: each runs `python3 -m devnode
    instance SPEC` with PYTHONPATH=services, ready: notify, a short stop_timeout."""
    lines = ["instances:"]
    for name, (spec, count, *extra) in services.items():
        lines += [f"    {name}:", f"        command: python3 -m devnode instance {spec}",
                  f"        numprocesses: {count}", "        ready: notify", "        stop_timeout: 3"]
        for k, v in (extra[0] if extra else {}).items():
            lines.append(f"        {k}: {v}")
        lines += ["        env:", "            PYTHONPATH: services"]
    if sockets:
        lines.append("sockets:")
        for name, port in sockets.items():
            lines += [f"    {name}:", f"        port: {port}"]
    if streams:
        lines.append("streams:")
        for pattern, keep in streams.items():
            lines += [f"    '{pattern}':", f"        retain_events: {keep}"]
    return "\n".join(lines) + "\n"


def has_module(python, module):
    return subprocess.run([python, "-c", f"import {module}"], capture_output=True).returncode == 0


def env_without(*names):
    return {k: v for k, v in os.environ.items() if k not in names}
