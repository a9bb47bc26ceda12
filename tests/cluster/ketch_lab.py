"""A whole lab for a test module: `ketch up --detach` on entry, `ketch down` on exit, then a check
that nothing of the lab is left (namespaces, processes naming its directory, mounts). Shared by the
cluster test modules that need real control planes, kubelets, proxies and DNS."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from orchestrator.lab import cluster as lab_cluster

KETCH = [sys.executable, "-m", "orchestrator.cli"]
UP_TIMEOUT_S = 400


@contextmanager
def ketch_up(directory: Path, *up_args: str):
    """Yields (LabState, the output of `ketch up`)."""
    up = subprocess.run([*KETCH, "up", "--dir", str(directory), "--detach", *up_args], capture_output=True,
                        text=True, timeout=UP_TIMEOUT_S)
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        yield lab_cluster.LabState.load(directory), up.stdout
    finally:
        state = lab_cluster.LabState.load(directory) if (directory / "lab.json").exists() else None
        down = subprocess.run([*KETCH, "down", "--dir", str(directory)], capture_output=True, text=True, timeout=120)
        assert down.returncode == 0 or state is None, down.stderr
        namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        assert state is None or state.lab not in namespaces, f"namespaces left: {namespaces}"
        assert not subprocess.run(["pgrep", "-f", str(directory)], capture_output=True, text=True).stdout.split()
        assert str(directory) not in Path("/proc/mounts").read_text()


def wait_for(what, timeout_s: float, description: str, interval_s: float = 1.0):
    """what()'s first truthy value; AssertionError naming what was awaited after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = what()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {description}")
