"""A kv cluster of real member processes on loopback: `make up` runs one, tests run many.

    cluster = LocalCluster(Path(".ketch/kv"), members=3)
    cluster.start()            # writes tokens and the peer secret, starts `ketch kv serve` x N
    cluster.kill(i)            # SIGKILL member i (by pid); cluster.restart(i) brings it back
    cluster.stop()             # SIGTERM every member, SIGKILL what is left, by pid

Each member logs to <dir>/<name>.log. Ports are free ones below the ephemeral range (`free_port`) unless given.
"""

from __future__ import annotations

import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from kvstore.member import new_secret_file


def stop_processes(processes: list[subprocess.Popen], timeout_s: float = 5.0) -> None:
    """SIGCONT (in case one is paused) and SIGTERM to each, then SIGKILL what is left after timeout_s."""
    for process in processes:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGCONT)
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(udp: bool = False) -> int:
    """A loopback port free now (for TCP, and UDP too with udp=True), below the kernel's ephemeral
    range: a port the kernel hands out (bind to 0) can be taken as the local end of an outgoing
    connection before the server that was meant to have it binds (seen as EADDRINUSE when the kv
    members' peer connections started between choosing an API server's port and binding it)."""
    low = _ephemeral_low()
    for _ in range(1000):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue
        try:
            with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as datagram:
                tcp.bind(("127.0.0.1", port))
                if udp:
                    datagram.bind(("127.0.0.1", port))
        except OSError:
            continue
        _handed_out.add(port)
        return port
    raise OSError("no free loopback port below the ephemeral range")


@dataclass
class MemberProcess:
    name: str
    client: str
    peer: str
    data_dir: Path
    log_path: Path
    gateway: str = ""
    process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class LocalCluster:
    base_dir: Path
    members: int = 3
    client_ports: list[int] | None = None
    peer_ports: list[int] | None = None
    gateway_ports: list[int] | None = None
    extra_args: list[str] = field(default_factory=list)
    nodes: list[MemberProcess] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.base_dir = Path(self.base_dir)
        self.token_file = self.base_dir / "tokens"
        self.secret_file = self.base_dir / "peer-secret"
        clients = self.client_ports or [free_port() for _ in range(self.members)]
        peers = self.peer_ports or [free_port() for _ in range(self.members)]
        gateways = self.gateway_ports or [free_port() for _ in range(self.members)]
        self.nodes = [
            MemberProcess(f"m{i + 1}", f"127.0.0.1:{clients[i]}", f"127.0.0.1:{peers[i]}",
                          self.base_dir / f"m{i + 1}", self.base_dir / f"m{i + 1}.log",
                          gateway=f"127.0.0.1:{gateways[i]}")
            for i in range(self.members)
        ]

    @property
    def endpoints(self) -> list[str]:
        return [node.client for node in self.nodes]

    @property
    def gateways(self) -> list[str]:
        return [node.gateway for node in self.nodes]

    @property
    def token(self) -> str:
        return self.token_file.read_text().split()[0]

    def initial_cluster(self) -> str:
        return ",".join(f"{node.name}={node.peer}" for node in self.nodes if node.name not in self.removed)

    def add_node(self) -> int:
        """A new member's place (fresh ports and data dir); start it with restart(i) after
        `ketch kv member add` has told the cluster about its peer address."""
        n = len(self.nodes) + 1
        self.nodes.append(MemberProcess(f"m{n}", f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}",
                                        self.base_dir / f"m{n}", self.base_dir / f"m{n}.log",
                                        gateway=f"127.0.0.1:{free_port()}"))
        return n - 1

    def forget(self, i: int) -> None:
        """Leave member i out of the cluster definition new members are started with."""
        self.removed.add(self.nodes[i].name)

    def start(self) -> None:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self.token_file.exists():
            self.token_file.write_text(secrets.token_hex(16) + "\n")
            self.token_file.chmod(0o600)
        if not self.secret_file.exists():
            new_secret_file(self.secret_file)
        for i in range(len(self.nodes)):
            self.restart(i)

    def command(self, node: MemberProcess) -> list[str]:
        return [sys.executable, "-m", "orchestrator.cli", "kv", "serve", "--name", node.name,
                "--data-dir", str(node.data_dir), "--listen-client", node.client, "--listen-gateway", node.gateway,
                "--initial-cluster", self.initial_cluster(), "--token-file", str(self.token_file),
                "--peer-secret-file", str(self.secret_file), *self.extra_args]

    def restart(self, i: int) -> None:
        node = self.nodes[i]
        if node.running():
            raise RuntimeError(f"{node.name} is still running (pid {node.pid})")
        log = open(node.log_path, "ab")
        node.process = subprocess.Popen(self.command(node), stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def kill(self, i: int, sig: int = signal.SIGKILL) -> None:
        node = self.nodes[i]
        if node.running():
            os.kill(node.pid, sig)
            if sig in (signal.SIGKILL, signal.SIGTERM):
                node.process.wait(timeout=10)

    def pause(self, i: int) -> None:
        self.kill(i, signal.SIGSTOP)

    def resume(self, i: int) -> None:
        self.kill(i, signal.SIGCONT)

    def stop(self) -> None:
        """End every member by pid: SIGCONT (if paused), SIGTERM, then SIGKILL after 5 s."""
        stop_processes([node.process for node in self.nodes if node.process is not None])

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        """Wait until every started member accepts connections on its client and gateway ports.
        A member that exited by itself (a crash, bad config) is an error; see its log."""
        deadline = time.monotonic() + timeout_s
        for node in self.nodes:
            if node.process is None or (node.process.poll() is not None and node.process.returncode < 0):
                continue  # never started, or stopped by a signal on purpose (kill, stop)
            for address in filter(None, (node.client, node.gateway)):
                host, port = address.rsplit(":", 1)
                while True:
                    if not node.running():
                        raise RuntimeError(f"{node.name} exited: see {node.log_path}")
                    try:
                        socket.create_connection((host, int(port)), timeout=0.5).close()
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{node.name} did not open {address}") from None
                        time.sleep(0.05)
