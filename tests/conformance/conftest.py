"""Fixtures of the conformance suite (README.md): clusters of adapters under a real node.
A module's `cluster` starts once for its tests (a node per test would cost the suite's time);
`make_cluster` gives a test a node of its own when it changes what others would see.
Both run on the test's `backend` (harness.BACKENDS): a module's BACKENDS, or a test's
@pytest.mark.backends(...), say which; the default is the embedded node alone."""
import os

import pytest

from harness import BACKENDS, C_ADAPTER, DEVNODE, Backend, start_cluster, stop_cluster
# the real servers (tests/e2e/backends.py): started by the first test that needs one
from backends import rabbitmq, zookeeper  # noqa: E402,F401


def pytest_configure(config):
    config.addinivalue_line("markers", "backends(*names): the back ends (harness.BACKENDS) a test runs on")


def pytest_generate_tests(metafunc):
    """Every scenario is run once per back end it names, the module's clusters once per back end."""
    if "backend" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("backends")
    names = list(marker.args) if marker else list(getattr(metafunc.module, "BACKENDS", ["embedded"]))
    unknown = [n for n in names if n not in BACKENDS]
    if unknown:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: no back end {unknown} in harness.BACKENDS")
    metafunc.parametrize("backend", names, indirect=True, scope="module")


@pytest.fixture(scope="session")
def zk_reader(zookeeper):
    """The test's own kazoo session on the ZooKeeper fixture, to read registrations as lymph does."""
    from kazoo.client import KazooClient
    k = KazooClient(hosts=zookeeper.hosts)
    k.start(timeout=15)
    yield k
    k.stop()
    k.close()


@pytest.fixture(scope="module")
def backend(request):
    """The harness.Backend of the test's parameter, its servers started (once per run) if needed."""
    name = getattr(request, "param", "embedded")
    servers = {key: request.getfixturevalue(fixture) for key, fixture in BACKENDS[name].items()}
    kazoo = request.getfixturevalue("zk_reader") if "registry" in servers else None
    return Backend(name, servers, kazoo)


@pytest.fixture(scope="session", autouse=True)
def _built():
    for path in (DEVNODE, C_ADAPTER):
        if not os.access(path, os.X_OK):
            pytest.exit(f"build first: `make all` (need {path})", returncode=2)


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory, backend):
    """The module's SERVICES (and STREAMS) under one node for all its tests (per back end)."""
    c = start_cluster(tmp_path_factory.mktemp("cluster"), request.module.SERVICES,
                      getattr(request.module, "STREAMS", None), backend=backend)
    yield c
    leftovers = stop_cluster(c)
    if leftovers:
        pytest.fail(f"processes left running after the module: {leftovers}")


@pytest.fixture
def make_cluster(tmp_path, backend):
    """make_cluster(services, streams=None): a node of the test's own, stopped after it."""
    made = []

    def make(services, streams=None, wait=True):
        c = start_cluster(tmp_path / f"node{len(made)}", services, streams, wait, backend=backend)
        made.append(c)
        return c
    yield make
    leftovers = []
    for c in made:
        leftovers += stop_cluster(c)
    if leftovers:
        pytest.fail(f"processes left running after the test: {leftovers}")
