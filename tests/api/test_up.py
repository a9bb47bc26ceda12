"""`ketch up` (what `make up` runs): a control plane kubectl can use at once, stopped cleanly."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys

import pytest

from kvstore.local_cluster import free_port


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_ketch_up_serves_kubectl_and_stops_every_process(tmp_path):
    port, kv_base = free_port(), random.randrange(40000, 50000, 100)
    up = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "up", "--dir", str(tmp_path / "k"), "--port",
                           str(port), "--kv-base-port", str(kv_base)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True)
    lines = []
    try:
        for line in up.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        kubeconfig = next(line.split("=", 1)[1].strip() for line in lines if "export KUBECONFIG=" in line)
        got = subprocess.run(["kubectl", "get", "namespaces", "-o", "name"], capture_output=True, text=True,
                             timeout=60, env={**os.environ, "KUBECONFIG": kubeconfig,
                                              "KUBECACHEDIR": str(tmp_path / "cache")})
        assert got.returncode == 0, got.stderr
        assert "namespace/default" in got.stdout.split()
    finally:
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=30)
    assert up.returncode == 0, err
    assert "stopped every process" in out
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "k")], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left behind: {leftovers}"
