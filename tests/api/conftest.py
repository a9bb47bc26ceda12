"""A real control plane for API tests: a 3-member kv cluster and two API servers (processes),
one per test module, stopped by pid at the end (also on failure). kubectl is the real one."""

from __future__ import annotations

import shutil

import pytest

from orchestrator.lab.local_plane import LocalControlPlane


@pytest.fixture(scope="module")
def plane(tmp_path_factory):
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed (it is on every Ketch machine: /usr/bin/kubectl)")
    control_plane = LocalControlPlane(tmp_path_factory.mktemp("plane"), api_servers=2)
    try:
        control_plane.start()
        yield control_plane
    finally:
        control_plane.stop()
