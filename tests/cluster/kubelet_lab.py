"""A real cluster on lab hosts for the kubelet's tests: host h1 runs a kv member, the API server
(on h1's address), the controller manager and the scheduler; every other host runs `ketch
kubelet` in its own network namespace with a real runtime. kubectl runs inside h1. Node names
carry the lab's per-run prefix, so pod namespaces (`<node>-<key>`) are lab namespaces that the
cluster conftest checks are gone afterwards. close() stops everything by pid and asks each
kubelet to remove what it made (`ketch kubelet --cleanup`)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kvstore.local_cluster import LocalCluster
from kvstore.member import new_secret_file
from orchestrator.lab.hosts import Lab, LabProcess, entering, wait_port
from orchestrator.pki import certs

API_PORT = 6443
KUBELET_PORT = 10250
KETCH = [sys.executable, "-m", "orchestrator.cli"]


@dataclass
class KubeletLab:
    lab: Lab
    work: Path
    runtime: str
    kubelets: dict[str, LabProcess] = field(default_factory=dict)
    control: dict[str, LabProcess] = field(default_factory=dict)

    @classmethod
    def create(cls, work: Path, workers: int = 2, runtime: str = "runc") -> KubeletLab:
        lab = Lab.create(workers + 1, work / "lab", use_netns=True)
        cluster = cls(lab, work, runtime)
        try:
            cluster._start_control_plane()
            for host in lab.hosts[1:]:
                cluster.start_kubelet(cluster.node_name(host))
            cluster.wait(lambda: cluster.ready_nodes() == workers, 90, "every node Ready with a pod CIDR")
        except BaseException:
            cluster.close()
            raise
        return cluster

    # --- names and places -----------------------------------------------------------------------

    @property
    def control_host(self):
        return self.lab.hosts[0]

    @property
    def pki(self) -> Path:
        return self.work / "pki"

    def node_name(self, host) -> str:
        return f"{self.lab.prefix}-{host.name}"

    def host_of(self, node: str):
        return next(h for h in self.lab.hosts if self.node_name(h) == node)

    @property
    def nodes(self) -> list[str]:
        return [self.node_name(h) for h in self.lab.hosts[1:]]

    def root_dir(self, node: str) -> Path:
        return self.work / "kubelet" / node

    # --- the control plane --------------------------------------------------------------------

    def _start_control_plane(self) -> None:
        h1 = self.control_host
        certs.init(self.pki, f"https://{h1.address}:{API_PORT}")
        kv = LocalCluster(self.work / "kv", 1)
        kv.base_dir.mkdir(parents=True, exist_ok=True)
        kv.token_file.write_text(secrets.token_hex(16) + "\n")
        new_secret_file(kv.secret_file)
        self.kv_endpoint = kv.endpoints[0]
        self.control["kv"] = self.lab.start(h1, "kv", kv.command(kv.nodes[0]))
        host, port = self.kv_endpoint.rsplit(":", 1)
        probe = f"import socket; socket.create_connection(('{host}', {port}), timeout=0.5).close()"
        self.wait(lambda: self.run_in("h1", sys.executable, "-c", probe).returncode == 0, 20, "the kv member")
        self.kv_token_file = kv.token_file
        self.start_apiserver()
        pki = self.pki
        self.control["controller-manager"] = self.lab.start(h1, "controller-manager", KETCH + [
            "controller-manager", "--kubeconfig", str(pki / "controller-manager.kubeconfig"),
            "--node-monitor-grace-seconds", "8", "--local-path-root", str(self.work / "local-path"),
            "--horizontal-pod-autoscaler-sync-seconds", "5"])
        self.control["scheduler"] = self.lab.start(h1, "scheduler", KETCH + [
            "scheduler", "--kubeconfig", str(pki / "scheduler.kubeconfig")])

    def apiserver_argv(self) -> list[str]:
        pki = self.pki
        return KETCH + ["apiserver", "--kv-endpoints", self.kv_endpoint, "--kv-token-file", str(self.kv_token_file),
                        "--bind", f"{self.control_host.address}:{API_PORT}", "--tls-cert", str(pki / "apiserver.crt"),
                        "--tls-key", str(pki / "apiserver.key"), "--token-file", str(pki / "tokens.csv")]

    def start_apiserver(self) -> None:
        self.control["apiserver"] = self.lab.start(self.control_host, "apiserver", self.apiserver_argv())
        wait_port(self.lab, self.control_host, API_PORT)

    def stop_apiserver(self) -> None:
        self.lab.stop(self.control.pop("apiserver"))

    # --- kubelets -------------------------------------------------------------------------------

    def kubelet_argv(self, node: str) -> list[str]:
        host, pki = self.host_of(node), self.pki
        return KETCH + ["kubelet", "--kubeconfig", str(pki / f"node-{node}.kubeconfig"), "--node-name", node,
                        "--node-ip", host.address, "--root-dir", str(self.root_dir(node)), "--runtime", self.runtime,
                        "--image-store", str(self.work / "images"), "--port", str(KUBELET_PORT),
                        "--tls-cert", str(pki / f"kubelet-{node}.crt"), "--tls-key", str(pki / f"kubelet-{node}.key"),
                        "--client-ca", str(pki / "ca.crt"), "--cluster-cidr", "10.244.0.0/16",
                        "--heartbeat-seconds", "1"]

    def start_kubelet(self, node: str) -> LabProcess:
        if not (self.pki / f"node-{node}.kubeconfig").exists():
            certs.add_node(self.pki, node)
            certs.kubelet_serving(self.pki, node, self.host_of(node).address)
        process = self.lab.start(self.host_of(node), f"kubelet-{len(self.kubelets)}", self.kubelet_argv(node))
        self.kubelets[node] = process
        return process

    def kill_kubelet(self, node: str, sig: int) -> None:
        process = self.kubelets.pop(node)
        os.kill(process.pid, sig)
        process.process.wait(timeout=20)

    # --- asking the cluster -----------------------------------------------------------------------

    def kubectl_env(self, cache: str = "kubectl-cache") -> dict[str, str]:
        return {**os.environ, "KUBECONFIG": str(self.pki / "admin.kubeconfig"), "KUBECACHEDIR": str(self.work / cache)}

    def kubectl_argv(self, *args: str, binary: str = "kubectl") -> list[str]:
        """kubectl (or another minor's binary) inside h1, where the API server's address is."""
        return ["ip", "netns", "exec", self.control_host.netns, binary, *args]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 60, binary: str = "kubectl") -> subprocess.CompletedProcess:
        cache = "kubectl-cache" if binary == "kubectl" else f"kubectl-cache-{Path(binary).name}"
        result = subprocess.run(self.kubectl_argv(*args, binary=binary), input=input, capture_output=True,
                                text=True, timeout=timeout, env=self.kubectl_env(cache))
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def json(self, *args: str) -> dict:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def apply(self, manifest: dict) -> None:
        self.kubectl("apply", "-f", "-", input=json.dumps(manifest))

    def pod(self, name: str) -> dict | None:
        result = self.kubectl("get", "pod", name, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def pods(self, selector: str) -> list[dict]:
        return self.json("get", "pods", "-l", selector)["items"]

    def ready_nodes(self) -> int:
        items = self.json("get", "nodes")["items"] if self.kubectl("get", "nodes", check=False).returncode == 0 \
            else []
        return sum(1 for n in items if (n.get("spec") or {}).get("podCIDR") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions") or []))

    def run_in(self, node: str, *argv: str, timeout: float = 20) -> subprocess.CompletedProcess:
        host = self.host_of(node) if node in self.nodes else self.control_host
        return subprocess.run([*entering(host), *argv], capture_output=True, text=True,
                              timeout=timeout)

    @staticmethod
    def wait(what, timeout_s: float = 60.0, description: str = "", interval_s: float = 0.5):
        deadline = time.monotonic() + timeout_s
        while True:
            value = what()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout_s} s waiting for {description or what}")
            time.sleep(interval_s)

    # --- the end ----------------------------------------------------------------------------------

    def close(self) -> None:
        for node in list(self.kubelets):
            self.lab.stop(self.kubelets.pop(node), timeout_s=5)
        for host in self.lab.hosts[1:]:
            node = self.node_name(host)
            if self.root_dir(node).exists():
                subprocess.run([*entering(host), *KETCH, "kubelet", "--node-name", node,
                                "--root-dir", str(self.root_dir(node)), "--runtime", self.runtime,
                                "--image-store", str(self.work / "images"), "--cleanup"],
                               capture_output=True, timeout=60)
        self.lab.close()
