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
        initial = ",".join(f"e{i}=http://127.0.0.1:{port}" for i, port in enumerate(self.peer_ports))
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for i in range(self.members):
            log = open(self.base_dir / f"e{i}.log", "ab")
            self.processes.append(subprocess.Popen([
                binary, "--name", f"e{i}", "--data-dir", str(self.base_dir / f"e{i}"),
                "--listen-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--advertise-client-urls", f"http://127.0.0.1:{self.client_ports[i]}",
                "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[i]}",
                "--initial-cluster", initial, "--initial-cluster-state", "new",
                "--log-level", "warn"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                start_new_session=True))
            log.close()
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

    def stop(self) -> None:
        stop_processes(self.processes, timeout_s=10)
