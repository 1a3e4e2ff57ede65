"""The interpreter trap: a service run by a python3 that lacks zmq, msgpack or werkzeug (a pyenv
build first on PATH, a venv without system site packages) gets one line saying which interpreter
ran and what to install, instead of a bare ModuleNotFoundError. No third-party import here."""
import sys

#: module name -> (Debian package, pip package)
PACKAGES = {
    "zmq": ("python3-zmq", "pyzmq"),
    "msgpack": ("python3-msgpack", "msgpack"),
    "werkzeug": ("python3-werkzeug", "werkzeug"),
    "yaml": ("python3-yaml", "PyYAML"),
}


def missing_line(module):
    """The one line for a missing `module` (a key of PACKAGES)."""
    deb, pip = PACKAGES.get(module, (module, module))
    exe = sys.executable or "python3"
    version = "%d.%d.%d" % sys.version_info[:3]
    hint = ""
    if exe != "/usr/bin/python3":
        hint = "; or run the service with /usr/bin/python3 (Debian's, which has them)"
    return ("devnode: this service ran %s (Python %s), which has no module '%s': "
            "apt-get install %s (for /usr/bin/python3), or %s -m pip install %s into it%s"
            % (exe, version, module, deb, exe, pip, hint))


def report(error, stream=None):
    """Writes the line for a ModuleNotFoundError of one of our dependencies; returns True when
    it was one (the caller then exits or re-raises)."""
    name = getattr(error, "name", None) or ""
    name = name.split(".")[0]
    if name not in PACKAGES:
        return False
    stream = stream or sys.stderr
    try:
        stream.write(missing_line(name) + "\n")
        stream.flush()
    except Exception:
        pass
    return True
