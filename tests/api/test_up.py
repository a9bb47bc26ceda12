"""`ketch up` (what `make up` runs): a control plane kubectl can use at once, stopped cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from kvstore.local_cluster import free_port


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_ketch_up_serves_kubectl_and_stops_every_process(tmp_path):
    up = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "up", "--dir", str(tmp_path / "k"), "--port",
                           str(free_port()), "--kv-base-port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True)
    lines = []
    try:
        for line in up.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        exports = [line.split("=", 1)[1].strip() for line in lines if "export KUBECONFIG=" in line]
        assert exports, (
            f"ketch up printed no KUBECONFIG: {''.join(lines)}{up.stderr.read() if up.poll() is not None else ''}"
        )
        kubeconfig = exports[0]
        env = {**os.environ, "KUBECONFIG": kubeconfig, "KUBECACHEDIR": str(tmp_path / "cache")}
        tried = [line.strip() for line in lines if line.strip().startswith("kubectl ")]
        assert len(tried) == 3, lines
        answers = [
            subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60, env=env)
            for command in tried
        ]  # the commands it prints, as a user pastes them
        assert all(a.returncode == 0 for a in answers), [a.stderr for a in answers]
        assert "default" in answers[0].stdout and "deployment.apps/web created" in answers[1].stdout
        assert "deployment.apps/web" in answers[2].stdout and "node/hollow-0" in answers[2].stdout
        ready = ""
        for _ in range(60):  # the deployment's pod is scheduled onto a hollow node and runs
            ready = subprocess.run(
                ["kubectl", "get", "deploy", "web", "-o", "jsonpath={.status.readyReplicas}"],
                capture_output=True,
                text=True,
                timeout=30,
                env=env,
            ).stdout
            if ready == "1":
                break
            time.sleep(1)
        assert ready == "1"
    finally:
        up.send_signal(signal.SIGTERM)
        out, err = up.communicate(timeout=30)
    assert up.returncode == 0, err
    assert "stopped every process" in out
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path / "k")], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left behind: {leftovers}"
