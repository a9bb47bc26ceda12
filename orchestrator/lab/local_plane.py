"""A control plane on one machine: a kv cluster, a PKI and one or more API servers, as processes.

Tests and `ketch up` use it. Everything it starts is stopped by pid in `stop()`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from kvstore.local_cluster import LocalCluster, free_port, stop_processes
from orchestrator.pki import certs as pki


@dataclass
class LocalControlPlane:
    base_dir: Path
    kv_members: int = 3
    api_servers: int = 1
    api_ports: list[int] | None = None
    api_workers: int = 1  # processes per API server (`apiserver --workers`)
    kv_client_ports: list[int] | None = None
    processes: list[subprocess.Popen] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir)
        self.pki_dir = self.base_dir / "pki"
        ports = self.kv_client_ports
        self.kv = LocalCluster(self.base_dir / "kv", self.kv_members, client_ports=ports)
        self.ports = self.api_ports or [free_port() for _ in range(self.api_servers)]

    @property
    def servers(self) -> list[str]:
        return [f"https://127.0.0.1:{port}" for port in self.ports]

    def kubeconfig(self, role: str = "admin", server: str | None = None) -> Path:
        """The role's kubeconfig; with server, a copy that points at that API server instead."""
        path = self.pki_dir / f"{role}.kubeconfig"
        if server is None or server == self.servers[0]:
            return path
        copy = self.pki_dir / f"{role}-{server.rsplit(':', 1)[1]}.kubeconfig"
        copy.write_text(path.read_text().replace(self.servers[0], server))
        return copy

    def start(self) -> None:
        self.kv.start()
        self.kv.wait_ready()
        if not (self.pki_dir / "tokens.csv").exists():
            pki.init(self.pki_dir, self.servers[0])
        pki.ensure_service_account_key(self.pki_dir)
        for i in range(len(self.ports)):
            self.start_api(i)
        for port in self.ports:
            self.wait_port(port)

    def add_api_server(self, *extra: str) -> str:
        """Another API server on the same kv cluster (extra: its flags); returns its URL."""
        self.ports.append(free_port())
        self.start_api(len(self.ports) - 1, *extra)
        self.wait_port(self.ports[-1])
        return self.servers[-1]

    def api_command(self, i: int) -> list[str]:
        return [sys.executable, "-m", "orchestrator.cli", "apiserver", "--kv-endpoints", ",".join(self.kv.endpoints),
                "--kv-token-file", str(self.kv.token_file), "--bind", f"127.0.0.1:{self.ports[i]}",
                "--tls-cert", str(self.pki_dir / "apiserver.crt"), "--tls-key", str(self.pki_dir / "apiserver.key"),
                "--token-file", str(self.pki_dir / "tokens.csv"),
                "--service-account-key-file", str(self.pki_dir / pki.SERVICE_ACCOUNT_KEY),
                "--workers", str(self.api_workers)]

    def start_api(self, i: int, *extra: str) -> subprocess.Popen:
        log = open(self.base_dir / f"apiserver-{i}.log", "ab")
        process = subprocess.Popen(self.api_command(i) + list(extra), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
        log.close()
        self.processes.append(process)
        return process

    def wait_port(self, port: int, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if any(p.poll() is not None for p in self.processes):
                raise RuntimeError(f"an API server exited: see {self.base_dir}/apiserver-*.log")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no API server on port {port}") from None
                time.sleep(0.1)

    def start_component(self, name: str, *args: str) -> subprocess.Popen:
        """A control plane component (`ketch scheduler|controller-manager|hollow-nodes ...`),
        stopped with the rest."""
        log = open(self.base_dir / f"{name}-{len(self.processes)}.log", "ab")
        process = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", *args], stdout=log, stderr=log,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        self.processes.append(process)
        return process

    def start_components(self, hollow_nodes: int = 3, heartbeat_s: float = 10.0, *,
                         controller_args: tuple[str, ...] = (), hollow_args: tuple[str, ...] = (),
                         scheduler_args: tuple[str, ...] = (), ready_timeout_s: float = 60.0) -> None:
        """The controller manager, the scheduler and (if hollow_nodes) one hollow-nodes process,
        each with its extra flags; returns once the hollow nodes are Ready with a pod CIDR."""
        pki = self.pki_dir
        self.start_component("controller-manager", "controller-manager", "--kubeconfig",
                             str(pki / "controller-manager.kubeconfig"), *controller_args)
        self.start_scheduler(*scheduler_args)
        if hollow_nodes:
            self.start_component("hollow-nodes", "hollow-nodes", "--kubeconfig", str(pki / "admin.kubeconfig"),
                                 "--count", str(hollow_nodes), "--heartbeat-seconds", str(heartbeat_s), *hollow_args)
            trio.run(self.wait_for_nodes, hollow_nodes, ready_timeout_s)

    def start_scheduler(self, *args: str) -> subprocess.Popen:
        """`ketch scheduler` with the scheduler's kubeconfig and extra flags."""
        return self.start_component("scheduler", "scheduler", "--kubeconfig",
                                    str(self.pki_dir / "scheduler.kubeconfig"), *args)

    async def wait_for_nodes(self, count: int, timeout_s: float = 60.0) -> None:
        """Until `count` nodes are registered, Ready and given a pod CIDR (pods can run on them)."""
        from orchestrator.client import kubeconfig
        from orchestrator.client.api import (
            NODES,
            APIClient,
            APIStatusError,
            Unreachable,
        )

        def usable(node: dict) -> bool:
            ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                        for c in (node.get("status") or {}).get("conditions") or [])
            return ready and bool((node.get("spec") or {}).get("podCIDR"))
        async with APIClient(kubeconfig.load(self.kubeconfig())) as api:
            with trio.fail_after(timeout_s):
                while True:
                    try:
                        if sum(usable(n) for n in (await api.list(NODES))["items"]) >= count:
                            return
                    except (APIStatusError, Unreachable):
                        pass
                    if any(p.poll() is not None for p in self.processes):
                        raise RuntimeError(f"a component exited: see {self.base_dir}/*.log")
                    await trio.sleep(0.3)

    def stop(self) -> None:
        stop_processes(self.processes)
        self.kv.stop()

    def kubectl(self, *args: str, role: str = "admin", input: str | None = None, check: bool = True,
                timeout: float = 60, env: dict | None = None, binary: str = "kubectl",
                cache_dir: Path | None = None) -> subprocess.CompletedProcess:
        """Run kubectl (or another kubectl binary) as `role`; cache_dir: its discovery cache."""
        environment = {**os.environ, "KUBECONFIG": str(self.kubeconfig(role)),
                       "KUBECACHEDIR": str(cache_dir or self.base_dir / "kubectl-cache"), **(env or {})}
        result = subprocess.run([binary, *args], input=input, capture_output=True, text=True, timeout=timeout,
                                env=environment)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result
