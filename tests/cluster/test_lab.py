"""Lab hosts and network faults on real network namespaces and nftables."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from orchestrator.lab.hosts import Lab, lab_namespaces, remove_stale_namespaces
from orchestrator.lab.nemesis import Nemesis

PROBE = "import socket,sys; socket.create_connection((sys.argv[1], 8000), timeout=float(sys.argv[2])).close()"


def reachable(lab: Lab, source, target, timeout_s: float = 5.0) -> bool:
    """Can source connect to target within timeout_s? Tries again after a refusal, as a
    client would: right after a heal the neighbour entry the partition left FAILED makes the
    first connect fail fast (EHOSTUNREACH) until ARP is answered again."""
    deadline = time.monotonic() + timeout_s
    while True:
        attempt = max(0.2, min(1.0, deadline - time.monotonic()))
        try:
            lab.run_in(source, sys.executable, "-c", PROBE, target.address, str(attempt))
            return True
        except subprocess.CalledProcessError:
            if time.monotonic() >= deadline:
                return False


def serve(lab: Lab, host):
    from orchestrator.lab.hosts import wait_port
    server = lab.start(host, "http", [sys.executable, "-m", "http.server", "8000", "--bind", host.address])
    wait_port(lab, host, 8000)
    return server


def test_hosts_reach_each_other_and_nothing_is_left(tmp_path):
    with Lab.create(3, tmp_path) as lab:
        assert lab.isolated and len(set(h.address for h in lab.hosts)) == 3
        serve(lab, lab.hosts[0])
        assert reachable(lab, lab.hosts[1], lab.hosts[0])
        names = {h.netns for h in lab.hosts} | {lab.fabric}
        assert names <= set(lab_namespaces())
    assert not names & set(lab_namespaces())


def test_the_root_namespace_is_never_configured(tmp_path):
    before = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    with Lab.create(2, tmp_path):
        during = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True).stdout
    assert during == before


def test_a_failure_inside_the_lab_still_removes_it(tmp_path):
    with pytest.raises(RuntimeError):
        with Lab.create(2, tmp_path) as lab:
            names = {h.netns for h in lab.hosts}
            raise RuntimeError("the test failed halfway")
    assert not names & set(lab_namespaces())


def test_leftovers_of_dead_runs_are_removed(tmp_path):
    subprocess.run(["ip", "netns", "add", "kl999999-h1"], check=True)  # pid 999999 is not running
    try:
        assert "kl999999-h1" in remove_stale_namespaces()
    finally:
        subprocess.run(["ip", "netns", "del", "kl999999-h1"], capture_output=True)


def test_partition_one_way_loss_and_heal(tmp_path):
    with Lab.create(3, tmp_path) as lab:
        a, b, c = lab.hosts
        serve(lab, a)
        serve(lab, b)
        nemesis = Nemesis(lab, tmp_path / "faults.jsonl")
        try:
            nemesis.partition([a], [b, c])
            assert not reachable(lab, b, a, 1) and not reachable(lab, a, b, 1)
            nemesis.heal_all()
            assert reachable(lab, b, a)
            nemesis.partition([a], [b], one_way=True)  # a stops hearing b; SYNs from b are lost
            assert not reachable(lab, b, a, 1)
            nemesis.heal_all()
            nemesis.loss(a, 100)
            assert not reachable(lab, c, a, 1)
        finally:
            nemesis.heal_all()
        assert reachable(lab, c, a)
        log = (tmp_path / "faults.jsonl").read_text()
        assert '"event": "partition"' in log and '"event": "loss"' in log
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    assert "ketch_chaos" not in tables  # nothing in the root namespace, ever
