"""`ketch apiserver --workers N` (issue 17): N processes serve one port; a worker that dies is
started again while the others keep serving; stopping the supervisor stops them all, and a
supervisor killed outright takes its workers with it."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from orchestrator.lab.local_plane import LocalControlPlane
from orchestrator.processes import alive


def worker_pids(log_text: str) -> list[int]:
    return [int(pid) for pid in re.findall(r"event=worker_started worker=\d+ pid=(\d+)", log_text)]


def wait(what, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while not (value := what()):
        assert time.monotonic() < deadline, f"timed out waiting for {what.__doc__ or what}"
        time.sleep(0.1)
    return value


@pytest.fixture
def plane(tmp_path):
    control = LocalControlPlane(tmp_path, kv_members=1, api_workers=3)
    try:
        control.start()
        yield control
    finally:
        control.stop()


def test_three_workers_serve_one_port_and_a_killed_one_comes_back(plane):
    log = plane.base_dir / "apiserver-0.log"

    def listening() -> list[int]:
        """every worker listening (each logs its pid)"""
        pids = [int(p) for p in re.findall(r"event=listening address=\S+ pid=(\d+)", log.read_text())]
        return pids if len(set(pids)) == 3 else []
    first = wait(listening)
    assert set(first) == set(worker_pids(log.read_text()))
    plane.kubectl("create", "namespace", "spread")
    for i in range(12):  # each kubectl run is a new connection, spread by the kernel
        plane.kubectl("create", "configmap", f"c{i}", "-n", "spread")

    victim = first[0]
    os.kill(victim, signal.SIGKILL)
    names = plane.kubectl("get", "configmaps", "-n", "spread", "-o", "name").stdout.split()
    assert len([n for n in names if n.startswith("configmap/c")]) == 12  # the others kept serving
    wait(lambda: len(worker_pids(log.read_text())) == 4)  # started again
    wait(lambda: len(set(re.findall(r"event=listening address=\S+ pid=(\d+)", log.read_text()))) == 4)
    assert re.search(rf"event=worker_exited worker=\d pid={victim} status=-9", log.read_text())

    supervisor = plane.processes[0]
    supervisor.send_signal(signal.SIGTERM)
    supervisor.wait(timeout=15)
    live = [pid for pid in worker_pids(log.read_text()) if alive(pid)]
    assert supervisor.returncode == 0 and not live, live


def test_workers_do_not_outlive_a_killed_supervisor(plane):
    log = plane.base_dir / "apiserver-0.log"
    pids = wait(lambda: (lambda p: p if len(p) == 3 else [])(worker_pids(log.read_text())))
    supervisor = plane.processes[0]
    os.kill(supervisor.pid, signal.SIGKILL)
    supervisor.wait(timeout=5)
    wait(lambda: not [pid for pid in pids if alive(pid)], 15)
