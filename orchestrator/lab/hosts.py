"""Lab hosts: several "machines" on one machine, and processes run on them.

As root, every host is a network namespace with one interface (eth0, 10.77.0.N/24) on a bridge
inside a "fabric" namespace; nothing at all is configured in the root namespace. Without root,
hosts are 127.0.1.N addresses on loopback (no network faults then).

Names carry a per-run prefix with the creating pid (`kl<pid>-...`; `kl<pid>-2-...` for a second
lab): a run removes leftovers of runs whose pid is gone before it starts, and removes its own at
`close()`, also after a failure.
Processes are started with their output in a log file and stopped by pid.
"""

from __future__ import annotations

import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.processes import alive

NAME_PREFIX = "kl"
_LABS_MADE = itertools.count(1)
SUBNET = "10.77.0"


def have_netns() -> bool:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"  # where Debian keeps ip and nft
    return os.geteuid() == 0 and all(shutil.which(tool, path=path) for tool in ("ip", "nft"))


def _run(*argv: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=30, check=True)


def entering(host) -> list[str]:
    """The prefix that runs a command inside a host's network namespace. nsenter, not `ip netns
    exec`: that one also remounts /sys, which hides the cgroup mounts runc and the kubelet need."""
    return ["nsenter", f"--net=/var/run/netns/{host.netns}"] if host.netns else []


@dataclass
class Host:
    name: str
    address: str
    netns: str | None  # None: a loopback host
    veth: str | None = None  # its interface in the fabric


@dataclass
class LabProcess:
    host: Host
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None


@dataclass
class Lab:
    """Create with `Lab.create(n, work_dir)`; always `close()` (it is a context manager)."""

    work_dir: Path
    hosts: list[Host] = field(default_factory=list)
    processes: list[LabProcess] = field(default_factory=list)
    fabric: str | None = None
    prefix: str = ""

    @classmethod
    def create(cls, count: int, work_dir: Path, *, use_netns: bool | None = None) -> Lab:
        if not 1 <= count <= 200:
            raise ValueError("a lab has 1 to 200 hosts")
        lab = cls(Path(work_dir))
        lab.work_dir.mkdir(parents=True, exist_ok=True)
        number = next(_LABS_MADE)  # two labs of one process side by side need different names
        lab.prefix = f"{NAME_PREFIX}{os.getpid()}" + (f"-{number}" if number > 1 else "")
        if use_netns is None:
            use_netns = have_netns()
        try:
            if use_netns:
                remove_stale_namespaces()
                lab._create_namespaces(count)
            else:
                lab.hosts = [Host(f"h{i + 1}", f"127.0.1.{i + 1}", None) for i in range(count)]
        except BaseException:
            lab.close()
            raise
        return lab

    @property
    def isolated(self) -> bool:
        return self.fabric is not None

    def _create_namespaces(self, count: int) -> None:
        self.fabric = f"{self.prefix}-fab"
        _run("ip", "netns", "add", self.fabric)
        fab = ("ip", "netns", "exec", self.fabric)
        _run(*fab, "ip", "link", "set", "lo", "up")
        _run(*fab, "ip", "link", "add", "br0", "type", "bridge")
        _run(*fab, "ip", "link", "set", "br0", "up")
        for i in range(count):
            host = Host(f"h{i + 1}", f"{SUBNET}.{i + 1}", f"{self.prefix}-h{i + 1}", f"{self.prefix}v{i + 1}")
            _run("ip", "netns", "add", host.netns)
            self.hosts.append(host)
            _run(*fab, "ip", "link", "add", host.veth, "type", "veth", "peer", "name", "eth0", "netns", host.netns)
            _run(*fab, "ip", "link", "set", host.veth, "master", "br0", "up")
            inside = ("ip", "netns", "exec", host.netns)
            _run(*inside, "ip", "link", "set", "lo", "up")
            _run(*inside, "ip", "addr", "add", f"{host.address}/24", "dev", "eth0")
            _run(*inside, "ip", "link", "set", "eth0", "up")

    # --- processes ----------------------------------------------------------------------------

    def start(self, host: Host, name: str, argv: list[str], env: dict | None = None) -> LabProcess:
        log_path = self.work_dir / f"{host.name}-{name}.log"
        log = open(log_path, "ab")
        command = entering(host) + argv
        process = subprocess.Popen(command, stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=env)
        log.close()
        lab_process = LabProcess(host, name, argv, log_path, process)
        self.processes.append(lab_process)
        return lab_process

    def signal(self, process: LabProcess, sig: int) -> None:
        if process.running():
            os.kill(process.pid, sig)

    def stop(self, process: LabProcess, timeout_s: float = 5.0) -> None:
        """SIGCONT (in case it is paused) and SIGTERM; SIGKILL if it does not go."""
        if not process.running():
            return
        os.kill(process.pid, signal.SIGCONT)
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.process.kill()
            process.process.wait()

    def run_in(self, host: Host, *argv: str, input: str | None = None) -> subprocess.CompletedProcess:
        """Run a short command inside a host (or the fabric) and wait for it."""
        return _run(*entering(host), *argv, input=input)

    def in_fabric(self, *argv: str, input: str | None = None) -> subprocess.CompletedProcess:
        if self.fabric is None:
            raise RuntimeError("loopback hosts have no fabric: network faults need root and netns")
        return _run("ip", "netns", "exec", self.fabric, *argv, input=input)

    # --- teardown -----------------------------------------------------------------------------

    def close(self) -> None:
        for process in self.processes:
            try:
                self.stop(process, timeout_s=3)
            except ProcessLookupError:
                pass
        for name in [host.netns for host in self.hosts if host.netns] + [self.fabric] * bool(self.fabric):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)  # its veths go with it

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def lab_namespaces() -> list[str]:
    try:
        listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [line.split()[0] for line in listing.splitlines() if line.startswith(NAME_PREFIX)]


def remove_stale_namespaces() -> list[str]:
    """Remove lab namespaces left by runs whose process is gone (kl<pid>-...)."""
    removed = []
    for name in lab_namespaces():
        pid_text = name[len(NAME_PREFIX):].split("-")[0]
        if pid_text.isdigit() and not alive(int(pid_text)):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            removed.append(name)
    return removed


def wait_port(lab: Lab, host: Host, port: int, timeout_s: float = 20.0) -> None:
    """Wait until something listens on host:port (checked from inside the host)."""
    deadline = time.monotonic() + timeout_s
    probe = f"import socket; socket.create_connection(('{host.address}', {port}), timeout=0.5).close()"
    while True:
        try:
            lab.run_in(host, sys.executable, "-c", probe)
            return
        except subprocess.CalledProcessError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host.address}:{port}") from None
            time.sleep(0.2)
