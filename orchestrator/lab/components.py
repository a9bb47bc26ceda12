"""What runs on a host of a cluster file, and with which flags (pure).

Control-plane hosts: a kv member, an API server, the scheduler and the controller manager (each
with a standby on the other control planes, by leader election), cluster DNS and the lab cloud
controller. Workers: an API access proxy on 127.0.0.1 that fails over between the API servers
(the per-node proxy kubespray runs), the kubelet and the proxy. Every component gets the same
flags on one machine as on a VM: only the addresses differ.

Files under the cluster directory (`paths`): pki/ (shared; on VMs copied by the operator),
kv/<host>/, kubelet/<host>/, logs/<host>/<component>.log, run/<host>.json, volumes/.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.lab.config import ClusterConfig, HostSpec

LOCAL_API_PORT = 6443  # the access proxy's port on a worker's loopback


@dataclass(frozen=True)
class Component:
    name: str
    argv: list[str]
    health: str = ""      # HOST:PORT that accepts a TCP connection once the component serves ("" = none)


@dataclass(frozen=True)
class Paths:
    root: Path

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    def kv(self, host: str) -> Path:
        return self.root / "kv" / host

    def kubelet(self, host: str) -> Path:
        return self.root / "kubelet" / host

    def logs(self, host: str) -> Path:
        return self.root / "logs" / host

    def run_file(self, host: str) -> Path:
        return self.root / "run" / f"{host}.json"

    @property
    def volumes(self) -> Path:
        return self.root / "volumes"

    def kubeconfig(self, role: str, host: str | None = None) -> Path:
        """A role's kubeconfig; with host, the copy that points at that host's own API endpoint."""
        return self.pki / (f"{role}@{host}.kubeconfig" if host else f"{role}.kubeconfig")


def api_endpoint(config: ClusterConfig, host: HostSpec) -> str:
    """Where components on `host` reach the API: their own API server on a control plane, the
    local access proxy on a worker."""
    if host.control_plane:
        return f"https://{host.address}:{config.ports['apiserver']}"
    return f"https://127.0.0.1:{LOCAL_API_PORT}"  # per host, or the lab's one access proxy on a shared loopback


def components(config: ClusterConfig, host: HostSpec, ketch: list[str], config_path: Path | None = None) \
        -> list[Component]:
    """The host's components in start order. `ketch` is how to run the ketch command; config_path
    is the cluster file (the lab cloud controller rereads its host list)."""
    paths, ports, a = Paths(config.directory), config.ports, host.address
    out: list[Component] = []
    if host.control_plane:
        out.append(Component("kv", [*ketch, "kv", "serve", "--name", host.name, "--data-dir", str(paths.kv(host.name)),
                                    "--listen-client", f"{a}:{ports['kv_client']}",
                                    "--listen-gateway", f"{a}:{ports['kv_gateway']}",
                                    "--initial-cluster", config.initial_cluster(),
                                    "--token-file", str(paths.pki / "kv-tokens"),
                                    "--peer-secret-file", str(paths.pki / "kv-peer-secret")],
                             f"{a}:{ports['kv_client']}"))
        out.append(Component("apiserver", [*ketch, "apiserver", "--kv-endpoints", ",".join(config.kv_endpoints()),
                                           "--kv-token-file", str(paths.pki / "kv-tokens"),
                                           "--bind", f"{a}:{ports['apiserver']}",
                                           "--tls-cert", str(paths.pki / "apiserver.crt"),
                                           "--tls-key", str(paths.pki / "apiserver.key"),
                                           "--token-file", str(paths.pki / "tokens.csv"),
                                           "--service-cidr", config.service_cidr],
                             f"{a}:{ports['apiserver']}"))
        out.append(Component("scheduler", [*ketch, "scheduler", "--kubeconfig",
                                           str(paths.kubeconfig("scheduler", host.name)),
                                           "--metrics-bind", f"{a}:{ports['scheduler_metrics']}",
                                           "--identity", host.name], f"{a}:{ports['scheduler_metrics']}"))
        out.append(Component("controller-manager", [*ketch, "controller-manager", "--kubeconfig",
                                                    str(paths.kubeconfig("controller-manager", host.name)),
                                                    "--cluster-cidr", config.pod_cidr,
                                                    "--metrics-bind", f"{a}:{ports['manager_metrics']}",
                                                    "--identity", host.name], f"{a}:{ports['manager_metrics']}"))
        out.append(Component("dns", [*ketch, "dns", "--kubeconfig", str(paths.kubeconfig("proxy", host.name)),
                                     "--bind", f"{a}:{ports['dns']}",
                                     "--metrics-bind", f"{a}:{ports['dns_metrics']}",
                                     *(["--upstream", config.dns_upstream] if config.dns_upstream else [])],
                             f"{a}:{ports['dns_metrics']}"))
        if config.lb_pool and config_path is not None:
            out.append(Component("cloud-controller-manager", [
                *ketch, "cloud-controller-manager", "--kubeconfig",
                str(paths.kubeconfig("controller-manager", host.name)), "--config", str(config_path),
                "--metrics-bind", f"{a}:{ports['cloud_metrics']}", "--identity", host.name],
                f"{a}:{ports['cloud_metrics']}"))
    if host.worker:
        if not host.control_plane and config.isolation == "host":
            out.append(Component("api-access", [*ketch, "lab", "access", "--listen", f"127.0.0.1:{LOCAL_API_PORT}",
                                                "--servers", ",".join(f"{h.address}:{ports['apiserver']}"
                                                                      for h in config.control_planes)],
                                 f"127.0.0.1:{LOCAL_API_PORT}"))
        kubelet = [*ketch, "kubelet", "--kubeconfig", str(paths.kubeconfig(f"node-{host.name}", host.name)),
                   "--node-name", host.name, "--node-ip", a, "--root-dir", str(paths.kubelet(host.name)),
                   "--cluster-dns", config.cluster_dns, "--cluster-cidr", config.pod_cidr,
                   "--port", str(ports["kubelet"]),
                   "--tls-cert", str(paths.pki / f"kubelet-{host.name}.crt"),
                   "--tls-key", str(paths.pki / f"kubelet-{host.name}.key"),
                   "--client-ca", str(paths.pki / "ca.crt")]
        if host.runtime:
            kubelet += ["--runtime", host.runtime]
        if host.zone:
            kubelet += ["--node-labels", f"topology.kubernetes.io/zone={host.zone}"]
        out.append(Component("kubelet", kubelet, f"{a}:{ports['kubelet']}"))
        out.append(Component("proxy", [*ketch, "proxy", "--kubeconfig", str(paths.kubeconfig("proxy", host.name)),
                                       "--node-name", host.name, "--mode", config.proxy_mode,
                                       *(["--bind-address", a] if config.proxy_mode == "userspace" else []),
                                       "--cluster-cidr", config.pod_cidr, "--service-cidr", config.service_cidr,
                                       "--metrics-bind", f"{a}:{ports['proxy_metrics']}"],
                             f"{a}:{ports['proxy_metrics']}"))
    return out


def kubeconfig_roles(config: ClusterConfig, host: HostSpec) -> list[str]:
    """The kubeconfigs a host's components read (each pointing at api_endpoint(host))."""
    roles = []
    if host.control_plane:
        roles += ["scheduler", "controller-manager", "proxy", "admin"]
    if host.worker:
        roles += [f"node-{host.name}", "proxy", "admin"]
    return list(dict.fromkeys(roles))
