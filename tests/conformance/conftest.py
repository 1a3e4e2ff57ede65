"""Fixtures of the conformance suite (README.md): clusters of adapters under a real node.
A module's `cluster` starts once for its tests (a node per test would cost the suite's time);
`make_cluster` gives a test a node of its own when it changes what others would see."""
import os

import pytest

from harness import C_ADAPTER, DEVNODE, start_cluster, stop_cluster


@pytest.fixture(scope="session", autouse=True)
def _built():
    for path in (DEVNODE, C_ADAPTER):
        if not os.access(path, os.X_OK):
            pytest.exit(f"build first: `make all` (need {path})", returncode=2)


@pytest.fixture(scope="module")
def cluster(request, tmp_path_factory):
    """The module's SERVICES (and STREAMS) under one node for all its tests."""
    c = start_cluster(tmp_path_factory.mktemp("cluster"), request.module.SERVICES,
                      getattr(request.module, "STREAMS", None))
    yield c
    leftovers = stop_cluster(c)
    if leftovers:
        pytest.fail(f"processes left running after the module: {leftovers}")


@pytest.fixture
def make_cluster(tmp_path):
    """make_cluster(services, streams=None): a node of the test's own, stopped after it."""
    made = []

    def make(services, streams=None, wait=True):
        c = start_cluster(tmp_path / f"node{len(made)}", services, streams, wait)
        made.append(c)
        return c
    yield make
    leftovers = []
    for c in made:
        leftovers += stop_cluster(c)
    if leftovers:
        pytest.fail(f"processes left running after the test: {leftovers}")
