"""What the kubelet reads about its host (adapter): CPUs, memory, disk, kernel and OS, the node's
address, and the whole node's CPU time and memory in use for /stats/summary."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

from orchestrator.kubelet.nodeinfo import HostFacts
from orchestrator.kubelet.stats import Sample

ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x"}


def _read(path: str, default: str = "") -> str:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return default


def meminfo() -> dict[str, int]:
    out = {}
    for line in _read("/proc/meminfo").splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            out[key] = int(parts[0]) * (1024 if len(parts) > 1 and parts[1] == "kB" else 1)
    return out


def os_image() -> str:
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip('"')
    return platform.system()


def node_ip() -> str:
    """The address this host uses to reach the outside (what a kubelet picks without --node-ip):
    the source address of a route towards a public address, else the hostname's, else loopback."""
    for target in ("10.255.255.255", "192.0.2.1"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))  # no packet is sent: connect only picks a route
                address = probe.getsockname()[0]
                if address and not address.startswith("0."):
                    return address
        except OSError:
            continue
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def host_facts(root_dir: Path, *, ip: str | None, port: int, runtime_version: str, max_pods: int,
               hostname: str | None = None) -> HostFacts:
    stats = os.statvfs(root_dir)
    return HostFacts(hostname=hostname or socket.gethostname(), node_ip=ip or node_ip(),
                     cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                     memory_bytes=meminfo().get("MemTotal", 0), ephemeral_storage_bytes=stats.f_blocks * stats.f_frsize,
                     kernel_version=platform.release(), os_image=os_image(),
                     architecture=ARCHITECTURES.get(platform.machine(), platform.machine()),
                     machine_id=_read("/etc/machine-id"), boot_id=_read("/proc/sys/kernel/random/boot_id"),
                     runtime_version=runtime_version, max_pods=max_pods, port=port)


def node_sample() -> Sample:
    """Cumulative CPU time of the whole host (busy jiffies of /proc/stat) and memory in use."""
    fields = _read("/proc/stat").splitlines()[0].split()[1:] if _read("/proc/stat") else []
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    values = [int(v) for v in fields]
    busy = sum(values) - (values[3] + values[4] if len(values) > 4 else 0)  # all but idle and iowait
    memory = meminfo()
    used = memory.get("MemTotal", 0) - memory.get("MemAvailable", 0)
    return Sample(busy * 1_000_000_000 // ticks, max(0, used))
