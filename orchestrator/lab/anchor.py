"""Real etcd (Debian's etcd-server) on loopback: the anchor Ketch is compared with.

Used by the gateway comparison test and by bench/kv.py. Members are started with free ports
and a data dir of the caller's, and stopped by pid.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kvstore.local_cluster import free_port, stop_processes


def etcd_binary() -> str | None:
    return shutil.which("etcd")


@dataclass
class EtcdCluster:
    base_dir: Path
    members: int = 3
    processes: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir)
        self.client_ports = [free_port() for _ in range(self.members)]
        self.peer_ports = [free_port() for _ in range(self.members)]

    @property
    def endpoints(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.client_ports]

    def start(self, timeout_s: float = 30.0) -> None:
        binary = etcd_binary()
        if binary is None:
            raise FileNotFoundError("etcd is not installed (Debian package etcd-server)")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self.processes = [self._spawn(i, binary) for i in range(self.members)]
        deadline = time.monotonic() + timeout_s
        for endpoint in self.endpoints:
            while True:
                try:
                    with urllib.request.urlopen(f"http://{endpoint}/health", timeout=1) as response:
                        if b'"true"' in response.read():
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(f"etcd at {endpoint} did not become healthy")
                time.sleep(0.1)

    def _spawn(self, i: int, binary: str) -> subprocess.Popen:
        initial = ",".join(f"e{j}=http://127.0.0.1:{port}" for j, port in enumerate(self.peer_ports))
        with open(self.base_dir / f"e{i}.log", "ab") as log:
            return subprocess.Popen([
                binary, "--name", f"e{i}", "--data-dir", str(self.base_dir / f"e{i}"),
                "--listen-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--log-level", "warn"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True)

    def kill(self, i: int) -> None:
        """SIGKILL member i (by pid) and reap it."""
        process = self.processes[i]
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def restart(self, i: int) -> None:
        """Start member i again on its data dir (the cluster flags are ignored once it has one)."""
        if self.processes[i].poll() is None:
            raise RuntimeError(f"e{i} is still running (pid {self.processes[i].pid})")
        self.processes[i] = self._spawn(i, etcd_binary())

    def stop(self) -> None:
        stop_processes(self.processes, timeout_s=10)
