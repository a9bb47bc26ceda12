"""`ketch up` in loopback mode (any user): a control plane with hollow nodes that kubectl can use at
once, the commands it prints work as pasted, `ketch status` shows it, and `ketch down` stops every
process it started."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

KETCH = [sys.executable, "-m", "orchestrator.cli"]


def ketch(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*KETCH, *args], capture_output=True, text=True, timeout=timeout)


def printed_command(output: str, start: str) -> str:
    """The command ketch printed that begins with `start`, its continuation lines joined."""
    lines = output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip().startswith(start))
    command = lines[first].strip()
    while command.endswith("\\"):
        first += 1
        command = command[:-1] + lines[first].strip()
    return command


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_ketch_up_in_loopback_serves_kubectl_and_down_stops_every_process(tmp_path):
    lab = tmp_path / "lab"
    up = ketch("up", "--dir", str(lab), "--isolation", "loopback", "--control-planes", "1", "--workers", "0",
               "--hollow", "2", "--detach", timeout=180)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        exports = [line.split("=", 1)[1].strip() for line in up.stdout.splitlines() if "export KUBECONFIG=" in line]
        assert exports, up.stdout
        env = {**os.environ, "KUBECONFIG": exports[0], "KUBECACHEDIR": str(tmp_path / "cache")}

        def kubectl(command: str) -> subprocess.CompletedProcess:
            return subprocess.run(command, shell=True, capture_output=True, text=True, timeout=60, env=env)
        nodes = kubectl("kubectl get nodes")
        assert nodes.returncode == 0 and nodes.stdout.count(" Ready ") == 2, nodes.stdout + nodes.stderr
        created = kubectl(printed_command(up.stdout, "kubectl create deployment"))
        assert "deployment.apps/hello created" in created.stdout, created.stderr
        ready = ""
        for _ in range(60):  # the pods are scheduled onto the hollow nodes and reported running
            ready = kubectl("kubectl get deploy hello -o jsonpath={.status.readyReplicas}").stdout
            if ready == "1":
                break
            time.sleep(1)
        assert ready == "1"
        status = ketch("status", "--dir", str(lab))
        assert status.returncode == 0 and "apiserver" in status.stdout, status.stdout + status.stderr
    finally:
        down = ketch("down", "--dir", str(lab))
    assert down.returncode == 0, down.stdout + down.stderr
    leftovers = subprocess.run(["pgrep", "-f", str(lab)], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left behind: {leftovers}"
    # the data stays for the next `ketch up` (as `docker compose down` keeps volumes), and says so
    assert "ketch up --dir" in down.stdout and (lab / "kv").is_dir() and (lab / "pki").is_dir()
    purged = ketch("down", "--dir", str(lab), "--purge")
    assert purged.returncode == 0, purged.stdout + purged.stderr
    assert not lab.exists() or not {"kv", "pki", "lab.json"} & {p.name for p in lab.iterdir()}


def test_ketch_up_refuses_at_once_when_the_port_kubectl_uses_is_taken(tmp_path):
    """Every lab's kubeconfig points at 127.0.0.1:6443; with that port taken (another lab), `ketch up`
    used to start everything and then wait 240 s for an API that could never answer."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        holder.bind(("127.0.0.1", 6443))
        holder.listen()
    except OSError:
        pass  # another lab holds it: the very situation under test
    lab = tmp_path / "lab"
    try:
        up = ketch("up", "--dir", str(lab), "--isolation", "loopback", "--control-planes", "1", "--workers", "0",
                   "--detach", timeout=60)
    finally:
        holder.close()
    output = up.stdout + up.stderr
    assert up.returncode == 1 and "127.0.0.1:6443" in output and "in use" in output, output
    assert not (lab / "lab.json").exists(), "nothing was started"
