"""Unit tests of the Python client's back-end settings (clients/python/devnode/registry.py): the
registry URL read with common/zkurl.c's rules, DEVNODE_IP, the session timeout, and
DEVNODE_EVENTS checked (never repeating its password). The registry itself is tested against a real
ZooKeeper in tests/e2e/test_zkwire.py.
Run: /usr/bin/python3 -m pytest -q clients/python/tests"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from devnode import InvalidArgument  # noqa: E402
from devnode.registry import Backends, parse_url  # noqa: E402


@pytest.mark.parametrize("url, hosts, chroot", [
    ("zookeeper://zk", "zk:2181", "/lymph"),
    ("zookeeper://zk1:2182,10.0.0.2", "zk1:2182,10.0.0.2:2181", "/lymph"),
    ("zookeeper://zk/", "zk:2181", ""),
    ("zookeeper://zk/devnode/staging", "zk:2181", "/devnode/staging"),
])
def test_registry_urls_read_as_zkurl_reads_them(url, hosts, chroot):
    assert parse_url(url) == (hosts, chroot)


@pytest.mark.parametrize("url, why", [
    ("http://zk:2181", "zookeeper://"),
    ("zookeeper://zk:0", "the port must be a number from 1 to 65535"),
    ("zookeeper://zk:x", "the port must be a number from 1 to 65535"),
    ("zookeeper://user@zk", "no user info"),
    ("zookeeper://zk/a//b", "is not a path"),
    ("zookeeper://zk/a/../b", "is not a path"),
    ("zookeeper://,zk", "is not a host name"),
])
def test_bad_registry_urls_say_what_is_wrong(url, why):
    with pytest.raises(InvalidArgument) as e:
        parse_url(url)
    assert why in str(e.value)


def test_unset_means_the_nodes_registry_on_loopback():
    b = Backends({})
    assert (b.registry, b.ip, b.session_ms) == (None, "127.0.0.1", 5000)


def test_settings_are_read_and_checked():
    b = Backends({"DEVNODE_REGISTRY": "zookeeper://zk/x", "DEVNODE_IP": "10.1.2.3",
                  "DEVNODE_REGISTRY_SESSION_MS": "1500"})
    assert (b.registry, b.ip, b.session_ms) == ("zookeeper://zk/x", "10.1.2.3", 1500)
    for env, why in [({"DEVNODE_REGISTRY": "zk:2181"}, "DEVNODE_REGISTRY: registry URL"),
                     ({"DEVNODE_IP": "0.0.0.0"}, "DEVNODE_IP=0.0.0.0: want the IPv4 address"),
                     ({"DEVNODE_IP": "host.local"}, "DEVNODE_IP=host.local"),
                     ({"DEVNODE_REGISTRY_SESSION_MS": "50"}, "from 200 to 600000")]:
        with pytest.raises(InvalidArgument) as e:
            Backends(env)
        assert why in str(e.value), env


def test_an_events_back_end_is_checked_and_never_repeated():
    assert Backends({"DEVNODE_EVENTS": "amqp://guest:guest@h:5672/%2F"}).events == "amqp://guest:guest@h:5672/%2F"
    for url, why in (("http://guest:s3cret@h/", "not an AMQP URL"), ("amqps://guest:s3cret@h/", "amqps://")):
        with pytest.raises(InvalidArgument) as e:
            Backends({"DEVNODE_EVENTS": url})
        assert why in str(e.value) and "s3cret" not in str(e.value), str(e.value)
