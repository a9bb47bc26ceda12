"""Cluster tests need root and network namespaces; without them they are skipped, with the reason."""

import pytest

from orchestrator.lab.hosts import have_netns, lab_namespaces


def pytest_collection_modifyitems(config, items):
    if have_netns():
        return
    skip = pytest.mark.skip(reason="needs root, ip and nft to create network namespaces (run as root)")
    for item in items:
        if "tests/cluster" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every cluster test must leave no lab namespace behind, pass or fail."""
    before = set(lab_namespaces())
    yield
    assert set(lab_namespaces()) <= before, f"left behind: {set(lab_namespaces()) - before}"
