"""The interpreter trap: a service run by a python3 that lacks zmq, msgpack or werkzeug (a pyenv
build first on PATH, a venv without system site packages) gets one line saying which interpreter
ran and what to install, instead of a bare ModuleNotFoundError. No third-party import here."""
import importlib.util
import sys

#: module name -> (Debian package, pip package)
PACKAGES = {
    "zmq": ("python3-zmq", "pyzmq"),
    "msgpack": ("python3-msgpack", "msgpack"),
    "werkzeug": ("python3-werkzeug", "werkzeug"),
    "yaml": ("python3-yaml", "PyYAML"),
}
CORE = ("zmq", "msgpack")
#: set by the runner, which reports a missing module itself where it imports the service
under_runner = False


def _missing(first, also):
    out = [first]
    for m in also:
        if m not in out:
            try:
                if importlib.util.find_spec(m) is None:
                    out.append(m)
            except (ImportError, ValueError):
                out.append(m)
    return out


def missing_line(modules):
    """The one line for the missing `modules` (keys of PACKAGES)."""
    exe = sys.executable or "python3"
    version = "%d.%d.%d" % sys.version_info[:3]
    debs = " ".join(PACKAGES.get(m, (m, m))[0] for m in modules)
    pips = " ".join(PACKAGES.get(m, (m, m))[1] for m in modules)
    hint = ""
    if exe != "/usr/bin/python3":
        hint = "; or run the service with /usr/bin/python3 (Debian's, which has them)"
    return ("devnode: this service ran %s (Python %s), which has no module %s: "
            "apt-get install %s (for /usr/bin/python3), or %s -m pip install %s into it%s"
            % (exe, version, ", ".join("'%s'" % m for m in modules), debs, exe, pips, hint))


def report(error, also=CORE, stream=None):
    """Writes the line for a ModuleNotFoundError of one of our dependencies (naming every one of
    `also` that is missing too); returns True when it was one (the caller exits or re-raises)."""
    name = (getattr(error, "name", None) or "").split(".")[0]
    if name not in PACKAGES:
        return False
    stream = stream or sys.stderr
    try:
        stream.write(missing_line(_missing(name, also)) + "\n")
        stream.flush()
    except Exception:
        pass
    return True
