"""The control socket after the node was stopped (SIGSTOP: a debugger, a laptop lid, a VM
pause) and continued: what clients sent meanwhile is read and answered. Before, an expiry tick
that came due during the stop read ZMQ_EVENTS as the node ran again, which took the edge of
ZMQ_FD, and the node never woke for the waiting requests (about one stop in five)."""
import os
import signal
import time

import msgpack
import zmq

CONFIG = "instances:\n    Idle:\n        command: exec sleep 1000\n"
STOPS = 10


def test_requests_sent_while_the_node_was_stopped_are_answered(project):
    project.write(CONFIG)
    node = project.up()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect((project.run_dir / "endpoint").read_text().strip())
        sock.send_multipart([b"1", b"ping", msgpack.packb({"id": 0})])
        assert sock.poll(5000), "no answer before any stop"
        sock.recv_multipart()
        for k in range(1, STOPS + 1):
            os.kill(node.pid, signal.SIGSTOP)
            try:
                sock.send_multipart([b"1", b"ping", msgpack.packb({"id": k})])
                # The fault itself: stopped past the node's 1 s expiry ticks, so they are due
                # the moment it runs again.
                time.sleep(1.2)
            finally:
                os.kill(node.pid, signal.SIGCONT)
            assert sock.poll(10000), f"the ping sent during stop {k} of {STOPS} was never answered"
            _, rtype, body = sock.recv_multipart()
            assert (rtype, msgpack.unpackb(body, raw=False)) == (b"ok", {"id": k})
    finally:
        sock.close()
        ctx.term()
