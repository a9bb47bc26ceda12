"""Cluster tests need root and network namespaces; without them they are skipped, with the reason."""

import os
from pathlib import Path

import pytest

from orchestrator.lab.hosts import NAME_PREFIX, have_netns, lab_namespaces


def pytest_collection_modifyitems(config, items):
    if have_netns():
        return
    skip = pytest.mark.skip(reason="needs root, ip and nft to create network namespaces (run as root)")
    for item in items:
        if "tests/cluster" in str(item.fspath):
            item.add_marker(skip)


def ours(name: str) -> bool:
    """A lab namespace made by this test run: its creator (kl<pid>-...) is this process, one of its
    descendants, or gone. A live process outside this run (another suite on the machine) owns the rest."""
    pid_text = name[len(NAME_PREFIX):].split("-")[0]
    if not pid_text.isdigit():
        return True
    pid = int(pid_text)
    while pid > 1:
        if pid == os.getpid():
            return True
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return True  # gone: a leftover of this run's children
    return False


def left_behind(before: set[str], kept: set[str] = frozenset()) -> set[str]:
    """This run's lab namespaces made since `before`, other than those still meant to be there."""
    return {name for name in set(lab_namespaces()) - before - kept if ours(name)}


@pytest.fixture(autouse=True)
def no_leftovers():
    """Every cluster test must leave no lab namespace behind, pass or fail."""
    before = set(lab_namespaces())
    yield
    left = left_behind(before)
    assert not left, f"left behind: {left}"
