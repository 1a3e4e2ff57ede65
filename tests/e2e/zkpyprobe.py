"""zkpyprobe: drives the Python client's ZooKeeper registry (clients/python/devnode/registry.py,
on kazoo) the way build/helpers/zkreg_probe drives lib/zkregistry.c, so one e2e test checks both:
one command a line on stdin, one JSON line of answer on stdout.
    register SERVICE ID ENDPOINT   (ID is the C probe's; the Python client makes its own)
    lookup SERVICE                 {"ok":true,"instances":[{"id","endpoint","wire"}...]}
    stats                          {"ok":true,"session_id":...}
    quit
Usage: zkpyprobe.py URL SESSION_TIMEOUT_MS (PYTHONPATH naming clients/python). The first line
says the session is up (or why not, exit 1)."""
import json
import os
import sys

from devnode.errors import DevnodeError
from devnode.registry import ZookeeperRegistry


def say(**answer):
    sys.stdout.write(json.dumps(answer, sort_keys=True) + "\n")
    sys.stdout.flush()


def session_id(reg):
    cid = reg.zk.client_id
    return cid[0] if cid else 0


def main():
    url, session_ms = sys.argv[1], int(sys.argv[2])
    try:
        reg = ZookeeperRegistry(url, session_ms)
    except DevnodeError as e:
        say(ok=False, error=str(e))
        return 1
    say(ok=True, session_id=session_id(reg))
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "register" and len(words) == 4:
                iid, _ = reg.register(words[1], words[3], "127.0.0.1", os.getpid())
                say(ok=True, id=iid)
            elif words[0] == "lookup" and len(words) == 2:
                insts = [{"id": d.get("id"), "endpoint": d.get("endpoint"), "wire": d.get("wire")}
                         for d in reg.lookup(words[1])]
                say(ok=True, instances=insts)
            elif words[0] == "stats":
                say(ok=True, session_id=session_id(reg))
            elif words[0] == "quit":
                break
            else:
                say(ok=False, error="unknown command: " + line.strip())
        except DevnodeError as e:
            say(ok=False, error=str(e))
    reg.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
