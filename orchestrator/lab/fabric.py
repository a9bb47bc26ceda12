"""A lab's hosts that outlive the command that made them (`ketch up --detach`, then `ketch down`):
network namespaces on a bridge inside a fabric namespace, or loopback addresses without root.

Names derive from the lab's directory (`lab_id`), not from a process id, so a later `ketch down`
finds them and a crashed run's leftovers are recognised: fabric `ketch-<id>-fab`, hosts
`ketch-<id>-<host>`, fabric-side veths `k<id[:6]><index>` (interface names stop at 15
characters). Nothing is configured in the machine's own namespace. Processes enter a host with
`nsenter --net` (not `ip netns exec`, which remounts /sys and hides the cgroup hierarchies the
kubelet's runtime needs).
"""

from __future__ import annotations

import hashlib
import ipaddress
import subprocess
from pathlib import Path

from orchestrator.lab.config import ClusterConfig

PREFIX = "ketch-"


def lab_id(directory: Path) -> str:
    return hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:8]


def fabric_name(lab: str) -> str:
    return f"{PREFIX}{lab}-fab"


def host_namespace(lab: str, host: str) -> str:
    return f"{PREFIX}{lab}-{host}"


def veth_name(lab: str, index: int) -> str:
    return f"k{lab[:6]}{index}"


def enter(netns: str | None) -> list[str]:
    """The argv prefix that runs a command inside a host's network namespace (none on loopback)."""
    return ["nsenter", f"--net=/var/run/netns/{netns}"] if netns else []


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)


def namespaces() -> list[str]:
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
    return [line.split()[0] for line in listing.splitlines() if line.strip()]


def create_fabric(lab: str, prefixlen: int = 24) -> str:
    fabric = fabric_name(lab)
    if fabric not in namespaces():
        _run("ip", "netns", "add", fabric)
        inside = ("ip", "netns", "exec", fabric)
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "link", "add", "br0", "type", "bridge")
        _run(*inside, "ip", "link", "set", "br0", "up")
    return fabric


def add_host(lab: str, config: ClusterConfig, name: str, index: int, prefixlen: int = 24) -> str:
    """A host namespace with eth0 (its address) on the fabric bridge, forwarding on (pods route through it)."""
    host = config.host(name)
    netns = host_namespace(lab, name)
    fabric = fabric_name(lab)
    if netns in namespaces():
        return netns
    _run("ip", "netns", "add", netns)
    veth = veth_name(lab, index)
    _run("ip", "netns", "exec", fabric, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
         "netns", netns)
    _run("ip", "netns", "exec", fabric, "ip", "link", "set", veth, "master", "br0", "up")
    inside = ("ip", "netns", "exec", netns)
    _run(*inside, "ip", "link", "set", "lo", "up")
    _run(*inside, "ip", "addr", "add", f"{host.address}/{prefixlen}", "dev", "eth0")
    _run(*inside, "ip", "link", "set", "eth0", "up")
    _run(*inside, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    return netns


def remove_host(lab: str, name: str) -> None:
    subprocess.run(["ip", "netns", "del", host_namespace(lab, name)], capture_output=True)  # its veth goes too


def remove_all(lab: str) -> list[str]:
    """Every namespace of the lab: hosts, fabric, and pod namespaces named after its hosts."""
    removed = []
    for name in namespaces():
        if name.startswith(f"{PREFIX}{lab}-"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)
            removed.append(name)
    return removed


def subnet_prefix(config: ClusterConfig) -> int:
    """The smallest prefix that holds every host address of the fabric (at most /24)."""
    addresses = [ipaddress.ip_address(h.address) for h in config.hosts]
    network = ipaddress.ip_network(f"{addresses[0]}/24", strict=False)
    return 24 if all(a in network for a in addresses) else 16
