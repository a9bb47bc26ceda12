"""`ketch up`, `ketch down`, `ketch status`: a whole cluster on this machine, from a cluster file.

`up` writes <dir>/cluster.toml (or uses --config), makes the PKI, creates the hosts (network
namespaces as root, loopback addresses otherwise), runs `ketch node` on every host, an access
proxy on 127.0.0.1 for kubectl, waits until every node is Ready and DNS answers, and records
everything in <dir>/lab.json. `down` stops it all by pid, asks the kubelets and proxies to clean
up what they made (pod namespaces, cgroups, mounts, nft tables), and removes the namespaces.
The same `ketch node` runs on VMs: what `up` does here is the multi-VM path on namespace hosts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.lab import config as cluster_config
from orchestrator.lab import fabric
from orchestrator.lab.cluster_pki import init_cluster_pki
from orchestrator.lab.components import Paths
from orchestrator.lab.config import ClusterConfig
from orchestrator.lab.node import alive, ketch_command, read_run_file, stop

USER_API_PORT = 6443


@dataclass
class LabState:
    directory: Path
    config_path: Path
    lab: str
    netns: bool
    hosts: dict[str, str | None] = field(default_factory=dict)     # host -> namespace (None on loopback)
    supervisors: dict[str, int] = field(default_factory=dict)      # host -> `ketch node` pid
    access: int | None = None                                      # the user's access proxy pid
    api_port: int = USER_API_PORT

    @property
    def path(self) -> Path:
        return self.directory / "lab.json"

    def save(self) -> None:
        scratch = self.path.with_suffix(".tmp")
        scratch.write_text(json.dumps({"config": str(self.config_path), "lab": self.lab, "netns": self.netns,
                                       "hosts": self.hosts, "supervisors": self.supervisors,
                                       "access": self.access, "api_port": self.api_port}, indent=1))
        os.replace(scratch, self.path)

    @classmethod
    def load(cls, directory: Path) -> LabState:
        directory = Path(directory).resolve()
        data = json.loads((directory / "lab.json").read_text())
        return cls(directory, Path(data["config"]), data["lab"], data["netns"], data["hosts"],
                   {k: int(v) for k, v in data["supervisors"].items()}, data.get("access"),
                   data.get("api_port", USER_API_PORT))

    def config(self) -> ClusterConfig:
        return cluster_config.load(self.config_path)


def can_isolate() -> bool:
    return os.geteuid() == 0 and all(shutil.which(t) for t in ("ip", "nsenter", "nft"))


def start_host(state: LabState, config: ClusterConfig, name: str) -> int:
    paths = Paths(config.directory)
    paths.logs(name).mkdir(parents=True, exist_ok=True)
    argv = fabric.enter(state.hosts.get(name)) + ketch_command() + ["node", "--config", str(state.config_path),
                                                                    "--host", name]
    with open(paths.logs(name) / "node.log", "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    state.supervisors[name] = process.pid
    state.save()
    return process.pid


def start_access(state: LabState, config: ClusterConfig) -> int:
    servers = ",".join(f"{h.address}:{config.ports['apiserver']}" for h in config.control_planes)
    argv = ketch_command() + ["lab", "access", "--listen", f"127.0.0.1:{state.api_port}", "--servers", servers]
    if state.netns:
        argv += ["--netns", state.hosts[config.control_planes[0].name]]
    log_dir = Paths(config.directory).root / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / "access.log", "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    state.access = process.pid
    state.save()
    return process.pid


class PortInUse(OSError):
    """The user's API port on this machine is taken (most often by another lab)."""


def check_api_port_free(port: int) -> None:
    """Every lab's kubeconfig points at 127.0.0.1:<port>, where its access proxy listens. If that
    port is taken the proxy exits at once and `ketch up` would wait for an API that never
    answers; say so before anything is created."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT left by a stopped lab is fine
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as err:
            raise PortInUse(f"127.0.0.1:{port}, where kubectl reaches a lab, is in use ({err.strerror}): another lab "
                            "is probably running (`ketch status --dir DIR`, `ketch down --dir DIR`)") from None


def create(directory: Path, config: ClusterConfig, config_path: Path, netns: bool) -> LabState:
    """Hosts, PKI and every host's `ketch node`; returns at once (the caller waits for readiness)."""
    check_api_port_free(USER_API_PORT)
    directory = Path(directory).resolve()
    directory.mkdir(parents=True, exist_ok=True)
    lab = fabric.lab_id(directory)
    state = LabState(directory, Path(config_path).resolve(), lab, netns)
    state.save()
    init_cluster_pki(config)
    if netns:
        fabric.create_fabric(lab)
        for index, host in enumerate(config.hosts):
            state.hosts[host.name] = fabric.add_host(lab, config, host.name, index, fabric.subnet_prefix(config))
    else:
        state.hosts = {host.name: None for host in config.hosts}
    state.save()
    for host in config.control_planes:
        start_host(state, config, host.name)
    start_access(state, config)
    for host in config.hosts:
        if not host.control_plane:
            start_host(state, config, host.name)
    return state


def run_in_host(state: LabState, host: str, argv: list[str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(fabric.enter(state.hosts.get(host)) + argv, capture_output=True, text=True, **kw)


def cleanup_worker(state: LabState, config: ClusterConfig, host: str) -> None:
    """What a kubelet and a proxy leave behind on purpose (running pods survive a kubelet restart):
    removed with their own cleanup commands, inside the host."""
    paths = Paths(config.directory)
    for argv in (ketch_command() + ["kubelet", "--cleanup", "--node-name", host,
                                    "--root-dir", str(paths.kubelet(host))],
                 ketch_command() + ["proxy", "--cleanup", "--node-name", host]):
        run_in_host(state, host, argv, timeout=120)


def destroy(state: LabState) -> list[str]:
    """Stop everything by pid, clean the workers, remove the namespaces. Returns what was removed."""
    config = state.config()
    if state.access:
        stop([state.access], grace_s=3)
    stop([pid for pid in state.supervisors.values() if alive(pid)])
    paths = Paths(config.directory)
    leftovers = [entry["pid"] for host in config.hosts
                 for entry in read_run_file(paths.run_file(host.name)).get("components") or [] if alive(entry["pid"])]
    stop(leftovers, grace_s=3)
    for host in config.workers:
        cleanup_worker(state, config, host.name)
    removed = fabric.remove_all(state.lab) if state.netns else []
    state.supervisors, state.access = {}, None
    state.save()
    return removed


STATE = ("lab.json", "cluster.toml", "kv", "kubelet", "pki", "logs", "run", "volumes", "kubectl-cache")


def mount_points() -> list[Path]:
    """Every mount point this process sees (field 5 of /proc/self/mountinfo, octal escapes undone)."""
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            field = line.split()[4]
            points.append(Path(field.encode().decode("unicode_escape")))
    return points


def purge(directory: Path) -> list[str]:
    """After `destroy`: delete the cluster's state (kv data, certificates, kubelet and volume
    directories, logs, the cluster file up wrote), so the next `up` makes a new cluster. Only
    what `up` makes is touched; the directory goes too if nothing else is left in it."""
    root = Path(directory).resolve()
    mounted = [m for m in mount_points() if m == root or root in m.parents]
    if mounted:  # a volume still mounted (a hostPath bind): deleting through it would delete its source
        raise OSError(f"not deleting {directory}: still mounted under it: {', '.join(map(str, mounted))}")
    removed = []
    for name in STATE:
        path = Path(directory) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(name)
    with contextlib.suppress(OSError):
        Path(directory).rmdir()
    return removed


def wait_until(what, timeout_s: float, interval_s: float = 0.5, progress=None):
    deadline = time.monotonic() + timeout_s
    while True:
        value = what()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {getattr(what, '__doc__', '') or what}")
        if progress:
            progress()
        time.sleep(interval_s)


def kubectl_env(state: LabState) -> dict[str, str]:
    """The environment kubectl needs to act as the lab's admin (also for a long-running `kubectl -w`)."""
    return {**os.environ, "KUBECONFIG": str(Paths(state.directory).kubeconfig("admin")),
            "KUBECACHEDIR": str(state.directory / "kubectl-cache")}


def kubectl(state: LabState, *args: str, timeout: float = 30, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=timeout, env=kubectl_env(state),
                          input=input)


def ready_nodes(state: LabState) -> set[str]:
    result = kubectl(state, "get", "nodes", "-o", "json")
    if result.returncode != 0:
        return set()
    ready = set()
    for node in json.loads(result.stdout).get("items") or []:
        if any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or []):
            ready.add(node["metadata"]["name"])
    return ready


def dns_answers(state: LabState, config: ClusterConfig) -> bool:
    """The cluster DNS resolves kubernetes.default from a worker: through the kube-dns Service in
    a namespace lab, at the first control plane's DNS port on loopback (no ClusterIPs there)."""
    server, port = (config.cluster_dns, 53) if state.netns else (config.control_planes[0].address,
                                                                 config.ports["dns"])
    probe = [sys.executable, "-c", "import sys, dns.message, dns.query; "
             "q = dns.message.make_query('kubernetes.default.svc.cluster.local', 'A'); "
             f"sys.exit(0 if dns.query.udp(q, '{server}', port={port}, timeout=1).answer else 1)"]
    host = (config.workers or config.control_planes)[0].name
    return run_in_host(state, host, probe, timeout=10).returncode == 0


def describe(state: LabState, config: ClusterConfig) -> list[str]:
    lines = []
    for host in config.hosts:
        run = read_run_file(Paths(config.directory).run_file(host.name))
        names = ", ".join(f"{c['name']} ({c['pid']})" for c in run.get("components") or [])
        where = state.hosts.get(host.name) or "loopback"
        lines.append(f"  {host.name:12} {host.address:12} {where}: {names}")
    return lines


def add_worker(state: LabState, zone: str = "") -> str:
    """A new worker host: next name and address, its secrets, its namespace, its `ketch node`."""
    config = state.config()
    numbers = [int(h.name.rsplit("-", 1)[1]) for h in config.workers if h.name.rsplit("-", 1)[-1].isdigit()]
    number = max(numbers, default=0) + 1
    base = config.hosts[0].address.rsplit(".", 1)[0]
    name = f"worker-{number}"
    host = cluster_config.HostSpec(name, f"{base}.{100 + number}", ("worker",),
                                   zone or f"zone-{'abc'[(number - 1) % 3]}")
    config = cluster_config.ClusterConfig(**{**config.__dict__, "hosts": config.hosts + (host,)})
    cluster_config.validate(config)
    state.config_path.write_text(cluster_config.render(config))
    init_cluster_pki(config)
    if state.netns:
        state.hosts[name] = fabric.add_host(state.lab, config, name, len(config.hosts) - 1,
                                            fabric.subnet_prefix(config))
    else:
        state.hosts[name] = None
    state.save()
    start_host(state, config, name)
    return name


def remove_worker(state: LabState, name: str) -> None:
    config = state.config()
    host = config.host(name)
    if not host.worker or host.control_plane:
        raise cluster_config.ConfigError(f"{name} is not a worker")
    supervisor = state.supervisors.pop(name, None)
    if supervisor:
        stop([supervisor])
    leftovers = [e["pid"] for e in read_run_file(Paths(config.directory).run_file(name)).get("components") or []
                 if alive(e["pid"])]
    stop(leftovers, grace_s=3)
    cleanup_worker(state, config, name)
    if state.netns:
        fabric.remove_host(state.lab, name)
    state.hosts.pop(name, None)
    remaining = cluster_config.ClusterConfig(**{**config.__dict__,
                                                "hosts": tuple(h for h in config.hosts if h.name != name)})
    state.config_path.write_text(cluster_config.render(remaining))
    state.save()
