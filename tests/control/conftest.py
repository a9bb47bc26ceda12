"""The whole control plane as processes: kv cluster, API server, controller manager, scheduler and
5 hollow nodes (heartbeat 1 s), one per test module; everything stopped by pid at the end."""

from __future__ import annotations

import json
import shutil
import time

import pytest

from orchestrator.lab.local_plane import LocalControlPlane


class Cluster:
    def __init__(self, plane: LocalControlPlane) -> None:
        self.plane = plane

    def kubectl(self, *args, **kw):
        return self.plane.kubectl(*args, **kw)

    def json(self, *args) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def wait(self, what, timeout_s: float = 60.0, interval_s: float = 0.5):
        deadline = time.monotonic() + timeout_s
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {what.__doc__ or what}")
            time.sleep(interval_s)

    def pods(self, selector: str) -> list[dict]:
        return self.json("get", "pods", "-l", selector)["items"]

    def component(self, *args: str):
        return self.plane.start_component(args[0], *args)

    def lease_holder(self, lease: str) -> str:
        return self.json("get", "lease", "-n", "kube-system", lease)["spec"].get("holderIdentity") or ""

    def leader_process(self, lease: str, not_among=()):
        """The process of this plane holding the kube-system lease (its identity ends in -PID),
        once one outside not_among holds it."""
        def found():
            holder = self.lease_holder(lease)
            return next((p for p in self.plane.processes if p not in not_among and p.poll() is None
                         and holder.endswith(f"-{p.pid}")), None)
        return self.wait(found, 30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    plane = LocalControlPlane(tmp_path_factory.mktemp("control"), api_workers=2)
    try:
        plane.start()
        plane.start_components(5, heartbeat_s=1, hollow_args=("--cpu", "2", "--memory", "4Gi"),
                               controller_args=("--node-monitor-grace-seconds", "4", "--pod-eviction-seconds", "2"))
        yield Cluster(plane)
    finally:
        plane.stop()
