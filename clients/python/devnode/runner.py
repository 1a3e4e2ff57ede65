"""runner.py: `python3 -m devnode instance module:Class [module:Class ...]` and lymph's
`python3 -m devnode instance --config conf/greeting.yml` (interfaces: {Greeting: {class:
greeting:Greeting}}): imports the interfaces, registers, serves, heartbeats, serves HTTP for a
WebServiceInterface on the shared socket, says READY=1 on NOTIFY_SOCKET and drains on SIGTERM.
Exit status: 0 stopped, 1 runtime failure, 2 usage or config error (one `devnode:` line).
"""
import argparse
import importlib
import logging
import os
import signal
import sys
import threading

from . import _deps

USAGE = "python3 -m devnode instance [--config FILE] [--loglevel LEVEL] [module:Class ...]"


class UsageError(Exception):
    pass


def _fail(text, code):
    sys.stderr.write("devnode: %s\n" % text)
    sys.stderr.flush()
    return code


def load_class(spec, where=""):
    """'module:Class' (or 'module.Class') -> the class."""
    if ":" in spec:
        module, _, name = spec.partition(":")
    else:
        module, _, name = spec.rpartition(".")
    if not module or not name:
        raise UsageError("%s'%s': want module:Class" % (where, spec))
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if _deps.report(e, _deps.CORE + ("werkzeug",)):
            raise SystemExit(1)
        if e.name and module.split(".")[0] == e.name.split(".")[0]:
            raise UsageError("%scannot import %s (for %s): %s; is its folder on PYTHONPATH (PYTHONPATH=services, "
                             "or env: PYTHONPATH in .lymph.yml)?" % (where, module, spec, e))
        raise
    try:
        cls = getattr(mod, name)
    except AttributeError:
        raise UsageError("%smodule %s has no %s (%s)" % (where, module, name, spec))
    return cls


def read_config(path):
    """lymph's per-instance config: {interfaces: {Name: {class: module:Class, ...config}}} ->
    [(name, class spec, config)]."""
    try:
        import yaml
    except ModuleNotFoundError as e:
        _deps.report(e)
        raise SystemExit(1)
    try:
        with open(path) as f:
            doc = yaml.safe_load(f)
    except OSError as e:
        raise UsageError("%s: %s" % (path, e.strerror))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = "%s:%d:%d" % (path, mark.line + 1, mark.column + 1) if mark else path
        raise UsageError("%s: %s" % (where, getattr(e, "problem", None) or e))
    if not isinstance(doc, dict) or not isinstance(doc.get("interfaces"), dict) or not doc["interfaces"]:
        raise UsageError("%s: interfaces: want a map of Name: {class: module:Class}" % path)
    out = []
    for name, conf in doc["interfaces"].items():
        if not isinstance(conf, dict) or not isinstance(conf.get("class"), str):
            raise UsageError("%s: interfaces.%s.class: want module:Class" % (path, name))
        rest = {k: v for k, v in conf.items() if k != "class"}
        out.append((str(name), conf["class"], rest))
    return out


def parse(argv):
    p = argparse.ArgumentParser(prog="python3 -m devnode", usage=USAGE, add_help=True)
    p.add_argument("command", choices=["instance"])
    p.add_argument("--config", "-c", action="append", default=[])
    p.add_argument("--loglevel", default=os.environ.get("DEVNODE_LOGLEVEL", "INFO"))
    p.add_argument("--ip", help=argparse.SUPPRESS)     # lymph's; the node decides
    p.add_argument("--port", help=argparse.SUPPRESS)
    p.add_argument("interfaces", nargs="*")

    def error(message):
        raise UsageError(message)

    p.error = error
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    _deps.under_runner = True
    try:
        args = parse(argv)
    except UsageError as e:
        return _fail("%s (usage: %s)" % (e, USAGE), 2)
    try:
        from . import trace
    except ModuleNotFoundError as e:
        if _deps.report(e):
            return 1
        raise
    level = getattr(logging, str(args.loglevel).upper(), None)
    if not isinstance(level, int):
        return _fail("--loglevel %s: want debug, info, warning or error" % args.loglevel, 2)
    trace.install_stdio()
    trace.install_logging(level)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        specs = []
        for path in args.config:
            specs += read_config(path)
        for spec in args.interfaces:
            specs.append((None, spec, {}))
        if not specs:
            raise UsageError("name an interface (module:Class) or --config FILE")
        classes = [(name, load_class(spec, "%s: " % spec if name is None else ""), conf) for name, spec, conf in specs]
    except UsageError as e:
        return _fail(str(e), 2)
    return run(classes)


def run(classes):
    """Serves `classes` [(name or None, Interface subclass, config)] until SIGTERM/SIGINT."""
    from . import Container
    from .errors import DevnodeError
    from .interface import Interface
    stop = threading.Event()
    signals = []

    def on_signal(signo, frame):
        signals.append(signo)
        stop.set()

    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, on_signal)
    container = Container()
    try:
        for name, cls, conf in classes:
            if not (isinstance(cls, type) and issubclass(cls, Interface)):
                return _fail("%s is not a devnode.Interface" % getattr(cls, "__name__", cls), 2)
            container.install(cls, name, conf)
        container.start()
    except DevnodeError as e:
        container.stop()
        return _fail("%s: %s" % (container.service, e.message or e), 1)
    servers = []
    try:
        for iface in container.interfaces:
            if hasattr(iface, "url_map") and hasattr(iface, "wsgi_app"):
                try:
                    from . import web
                except ModuleNotFoundError as e:
                    container.stop()
                    if _deps.report(e):
                        return 1
                    raise
                servers.append(web.serve(iface))
    except OSError as e:
        container.stop()
        return _fail("%s: cannot serve HTTP: %s" % (container.service, e), 1)
    logging.getLogger("devnode").info("%s.%d serving %s on %s", container.service, container.instance,
                                      ", ".join(i.name for i in container.interfaces), container.core.rpc_endpoint)
    while not stop.wait(1.0):
        pass
    for server in servers:
        server.shutdown()
        server.server_close()
    unconfirmed = container.stop()
    return 1 if unconfirmed else 0
