"""A cluster described in one file (`cluster.toml`), for `ketch up` on one machine and for
`ketch node` on each VM: which host runs what, with which addresses, ports and directories.

    [cluster]
    name = "lab"
    pod_cidr = "10.244.0.0/16"       # each node gets a /24 from it (the controller manager's IPAM)
    service_cidr = "10.96.0.0/16"    # ClusterIPs; the tenth address is the cluster DNS
    dir = "/var/lib/ketch"           # data, logs and PKI on every host (ketch up: the lab directory)

    [[host]]
    name = "cp-1"
    address = "10.77.0.1"
    roles = ["control-plane"]        # kv member, API server, scheduler, controller manager, DNS

    [[host]]
    name = "worker-1"
    address = "10.77.0.11"
    roles = ["worker"]               # kubelet and proxy
    zone = "zone-a"                  # topology.kubernetes.io/zone (optional)

Pure: parsing, validation with one clear message per mistake, rendering, and the command line of
every component on a host. Nothing here starts a process.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROLES = ("control-plane", "worker")
NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
PORTS = {"kv_client": 2379, "kv_peer": 2380, "kv_gateway": 2382, "apiserver": 6443, "kubelet": 10250,
         "proxy_metrics": 10249, "scheduler_metrics": 10259, "manager_metrics": 10257, "dns": 53,
         "dns_metrics": 9153, "cloud_metrics": 10258}


class ConfigError(ValueError):
    """The cluster file is wrong; the message says where and why."""


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    roles: tuple[str, ...]
    zone: str = ""
    runtime: str = ""  # "" = the kubelet chooses (runc as root with runc, process as root, local otherwise)

    @property
    def control_plane(self) -> bool:
        return "control-plane" in self.roles

    @property
    def worker(self) -> bool:
        return "worker" in self.roles


@dataclass(frozen=True)
class ClusterConfig:
    name: str
    directory: Path
    hosts: tuple[HostSpec, ...]
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/16"
    ports: dict[str, int] = field(default_factory=lambda: dict(PORTS))
    proxy_mode: str = "nftables"
    lb_pool: str = ""  # LoadBalancer addresses handed out by the lab cloud controller ("" = none)
    isolation: str = "host"  # "host": each host has its own network (a VM, a namespace); "loopback": one shared
    dns_upstream: str = ""   # where the cluster DNS sends other names: "" = the host's resolv.conf, "none" = refuse

    @property
    def control_planes(self) -> list[HostSpec]:
        return [h for h in self.hosts if h.control_plane]

    @property
    def workers(self) -> list[HostSpec]:
        return [h for h in self.hosts if h.worker]

    @property
    def cluster_dns(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[10])

    @property
    def api_service_ip(self) -> str:
        return str(ipaddress.ip_network(self.service_cidr)[1])

    def host(self, name: str) -> HostSpec:
        for host in self.hosts:
            if host.name == name:
                return host
        raise ConfigError(f"no host {name!r} in the cluster file (hosts: {', '.join(h.name for h in self.hosts)})")

    def api_servers(self) -> list[str]:
        return [f"https://{h.address}:{self.ports['apiserver']}" for h in self.control_planes]

    def kv_endpoints(self) -> list[str]:
        return [f"{h.address}:{self.ports['kv_client']}" for h in self.control_planes]

    def initial_cluster(self) -> str:
        return ",".join(f"{h.name}={h.address}:{self.ports['kv_peer']}" for h in self.control_planes)


def parse(text: str, *, source: str = "cluster.toml") -> ClusterConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: not valid TOML: {err}") from None
    cluster = data.get("cluster") or {}
    if not isinstance(cluster, dict):
        raise ConfigError(f"{source}: [cluster] must be a table")
    hosts = []
    for i, entry in enumerate(data.get("host") or []):
        where = f"{source}: host {i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table ([[host]])")
        unknown = set(entry) - {"name", "address", "roles", "zone", "runtime"}
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        roles = entry.get("roles") or []
        if not isinstance(roles, list) or not roles or any(r not in ROLES for r in roles):
            raise ConfigError(f"{where}: roles must be a non-empty list of {', '.join(ROLES)}")
        hosts.append(HostSpec(str(entry.get("name", "")), str(entry.get("address", "")), tuple(roles),
                              str(entry.get("zone", "")), str(entry.get("runtime", ""))))
    ports = dict(PORTS)
    for key, value in (cluster.get("ports") or {}).items():
        if key not in PORTS or not isinstance(value, int) or not 1 <= value <= 65535:
            raise ConfigError(f"{source}: [cluster.ports] {key} = {value!r} is not a known port or not 1-65535")
        ports[key] = value
    config = ClusterConfig(name=str(cluster.get("name", "lab")), directory=Path(cluster.get("dir", "/var/lib/ketch")),
                           hosts=tuple(hosts), pod_cidr=str(cluster.get("pod_cidr", "10.244.0.0/16")),
                           service_cidr=str(cluster.get("service_cidr", "10.96.0.0/16")), ports=ports,
                           proxy_mode=str(cluster.get("proxy_mode", "nftables")),
                           lb_pool=str(cluster.get("lb_pool", "")),
                           isolation=str(cluster.get("isolation", "host")),
                           dns_upstream=str(cluster.get("dns_upstream", "")))
    validate(config, source)
    return config


def load(path: Path) -> ClusterConfig:
    try:
        return parse(Path(path).read_text(), source=str(path))
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}") from None


def validate(config: ClusterConfig, source: str = "cluster.toml") -> None:
    if not NAME.match(config.name):
        raise ConfigError(f"{source}: cluster name {config.name!r} must be lowercase letters, digits and '-'")
    networks = {}
    for key in ("pod_cidr", "service_cidr", "lb_pool"):
        value = getattr(config, key)
        if key == "lb_pool" and not value:
            continue
        try:
            networks[key] = ipaddress.ip_network(value)
        except ValueError:
            raise ConfigError(f"{source}: {key} {value!r} is not a network such as 10.96.0.0/16") from None
    if networks["pod_cidr"].overlaps(networks["service_cidr"]):
        raise ConfigError(f"{source}: pod_cidr and service_cidr overlap")
    if config.isolation not in ("host", "loopback"):
        raise ConfigError(f"{source}: isolation must be host (VMs, namespaces) or loopback")
    if config.proxy_mode not in ("nftables", "iptables", "userspace"):
        raise ConfigError(f"{source}: proxy_mode must be nftables, iptables or userspace")
    if not config.hosts:
        raise ConfigError(f"{source}: no [[host]] entries")
    seen_names, seen_addresses = set(), set()
    for host in config.hosts:
        if not NAME.match(host.name):
            raise ConfigError(f"{source}: host name {host.name!r} must be lowercase letters, digits and '-' "
                              "(it becomes the node's name)")
        try:
            address = ipaddress.ip_address(host.address)
        except ValueError:
            raise ConfigError(f"{source}: host {host.name}: address {host.address!r} is not an IP address") from None
        if any(address in net for net in networks.values()):
            raise ConfigError(f"{source}: host {host.name}: {address} lies inside a cluster network")
        if host.name in seen_names or host.address in seen_addresses:
            raise ConfigError(f"{source}: host {host.name} ({host.address}) appears twice")
        if host.runtime not in ("", "runc", "process", "local"):
            raise ConfigError(f"{source}: host {host.name}: runtime must be runc, process or local")
        seen_names.add(host.name)
        seen_addresses.add(host.address)
    if not config.control_planes:
        raise ConfigError(f"{source}: no host has the control-plane role")
    if len(config.control_planes) % 2 == 0:
        raise ConfigError(f"{source}: {len(config.control_planes)} control planes: use an odd number, "
                          "so that a majority survives as many failures as possible")


def render(config: ClusterConfig) -> str:
    """The TOML text of a config (what `ketch up` writes, and what a multi-VM operator edits)."""
    lines = ["[cluster]", f'name = "{config.name}"', f'dir = "{config.directory}"',
             f'pod_cidr = "{config.pod_cidr}"', f'service_cidr = "{config.service_cidr}"',
             f'proxy_mode = "{config.proxy_mode}"']
    if config.lb_pool:
        lines.append(f'lb_pool = "{config.lb_pool}"')
    if config.isolation != "host":
        lines.append(f'isolation = "{config.isolation}"')
    if config.dns_upstream:
        lines.append(f'dns_upstream = "{config.dns_upstream}"')
    changed = {k: v for k, v in config.ports.items() if PORTS.get(k) != v}
    if changed:
        lines += ["", "[cluster.ports]"] + [f"{k} = {v}" for k, v in sorted(changed.items())]
    for host in config.hosts:
        lines += ["", "[[host]]", f'name = "{host.name}"', f'address = "{host.address}"',
                  "roles = [" + ", ".join(f'"{r}"' for r in host.roles) + "]"]
        if host.zone:
            lines.append(f'zone = "{host.zone}"')
        if host.runtime:
            lines.append(f'runtime = "{host.runtime}"')
    return "\n".join(lines) + "\n"


def lab(control_planes: int, workers: int, directory: Path, *, netns: bool, name: str = "lab",
        lb_pool: str = "", proxy_mode: str | None = None, runtime: str = "") -> ClusterConfig:
    """The config `ketch up` uses: hosts cp-1.. and worker-1.. on the lab fabric (10.77.0.0/24 in
    namespaces) or on loopback addresses (127.0.1.0/24 without root), zones spread over 3."""
    if not 1 <= control_planes <= 7 or control_planes % 2 == 0:
        raise ConfigError("--control-planes must be 1, 3, 5 or 7")
    if not 0 <= workers <= 50:
        raise ConfigError("--workers must be 0..50")
    base = "10.77.0" if netns else "127.0.1"
    hosts = [HostSpec(f"cp-{i + 1}", f"{base}.{i + 1}", ("control-plane",), f"zone-{'abc'[i % 3]}")
             for i in range(control_planes)]
    hosts += [HostSpec(f"worker-{i + 1}", f"{base}.{101 + i}", ("worker",), f"zone-{'abc'[i % 3]}", runtime)
              for i in range(workers)]
    # On loopback the cluster DNS listens on an unprivileged port (53 needs root); pods there are
    # host processes with the host's resolver anyway, so only `dig -p` reaches it.
    ports = dict(PORTS) if netns else {**PORTS, "dns": 10053}
    config = ClusterConfig(name=name, directory=Path(directory).resolve(), hosts=tuple(hosts), ports=ports,
                           proxy_mode=proxy_mode or ("nftables" if netns else "userspace"),
                           lb_pool=lb_pool or ("10.77.0.200/29" if netns else ""),
                           isolation="host" if netns else "loopback",
                           dns_upstream="none")  # a lab has no way out: other names are refused at once
    validate(config)
    return config
