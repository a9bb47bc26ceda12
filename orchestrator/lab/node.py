"""`ketch node --config cluster.toml --host NAME`: start what the cluster file assigns to this host
and keep them until SIGTERM (the same on a VM, under systemd, as inside a lab namespace).

Each component is its own process with its log in logs/<host>/<component>.log; its pid, command
line and log go to run/<host>.json (written atomically after every change), which `ketch status`,
`ketch logs` and the chaos tools read. A component that exits is logged, not restarted: faults
are the chaos tool's to inject and to heal, and on a VM systemd restarts `ketch node` itself.
On SIGTERM every component gets SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import trio

from orchestrator.lab import config as cluster_config
from orchestrator.lab.components import Component, Paths, components
from orchestrator.processes import alive

log = logging.getLogger("ketch.node")
STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 60.0


@dataclass
class Running:
    name: str
    pid: int
    argv: list[str]
    log: str
    health: str
    started: float


def write_run_file(path: Path, host: str, running: list[Running]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps({"host": host, "supervisor": os.getpid(),
                                   "components": [asdict(r) for r in running]}, indent=1))
    os.replace(scratch, path)


def read_run_file(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {"components": []}


def start_component(component: Component, log_dir: Path, env: dict | None = None) -> Running:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{component.name}.log"
    with open(log_path, "ab") as out:
        process = subprocess.Popen(component.argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL,
                                   start_new_session=True, env=env)
    return Running(component.name, process.pid, component.argv, str(log_path), component.health, time.time())


def wait_serving(address: str, pid: int, timeout_s: float = READY_TIMEOUT_S) -> bool:
    """True once something accepts TCP on address; False if the process died first or time ran out."""
    if not address:
        return alive(pid)
    host, _, port = address.rpartition(":")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not alive(pid):
            return False
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.2)
    return False


def stop(pids: list[int], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM every process (its whole session), then SIGKILL what is left after the grace period."""
    for pid in pids:
        for sig in (signal.SIGCONT, signal.SIGTERM):  # a paused process must run to hear SIGTERM
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        _reap()
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    _reap()


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def systemd_unit(config_path: Path, host_name: str) -> str:
    """A unit that runs `ketch node` for one host of a cluster file (copied to each VM)."""
    config = cluster_config.load(config_path)
    host = config.host(host_name)
    roles = ", ".join(host.roles)
    return f"""[Unit]
Description=Ketch node {host.name} ({roles}) of cluster {config.name}
Documentation=ketch node --help
After=network-online.target
Wants=network-online.target

[Service]
ExecStart={sys.executable} -m orchestrator.cli node --config {Path(config_path).resolve()} --host {host.name}
Restart=on-failure
RestartSec=2
KillMode=mixed
TimeoutStopSec=30
LimitNOFILE=65536

[Install]
WantedBy=multi-user.target
"""


def ketch_command() -> list[str]:
    return [sys.executable, "-m", "orchestrator.cli"]


def run_node(args) -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO,
                        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")
    try:
        config = cluster_config.load(args.config)
        host = config.host(args.host)
    except cluster_config.ConfigError as err:
        print(f"ketch node: {err}", file=sys.stderr)
        return 2
    paths = Paths(config.directory)
    missing = [p for p in (paths.pki / "ca.crt", paths.pki / "tokens.csv") if not p.exists()]
    if missing:
        print(f"ketch node: {missing[0]} is missing: run `ketch pki init --config {args.config}` once and "
              f"copy {paths.pki} to every host", file=sys.stderr)
        return 2
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    signal.signal(signal.SIGINT, lambda *_: stopping.append(1))
    running: list[Running] = []
    run_file = paths.run_file(host.name)
    try:
        for component in components(config, host, ketch_command(), Path(args.config).resolve()):
            if stopping:
                break
            started = start_component(component, paths.logs(host.name))
            running.append(started)
            write_run_file(run_file, host.name, running)
            if not wait_serving(component.health, started.pid):
                log.error("event=component_failed host=%s component=%s log=%s", host.name, component.name,
                          started.log)
                print(f"ketch node: {component.name} on {host.name} did not start; see {started.log}",
                      file=sys.stderr)
                return 1
            log.info("event=component_serving host=%s component=%s pid=%d", host.name, component.name, started.pid)
        if host.control_plane:
            from orchestrator.lab.cluster_services import ensure_cluster_services
            if trio.run(ensure_cluster_services, str(paths.kubeconfig("admin", host.name)), config):
                log.info("event=cluster_services_registered dns=%s api=%s", config.cluster_dns, config.api_service_ip)
            else:
                log.error("event=kube_dns_not_registered (the API did not take the kube-dns Service)")
        reported: set[int] = set()
        while not stopping:
            current = read_run_file(run_file).get("components") or []  # chaos may have restarted some
            for entry in current:
                if not alive(entry["pid"]) and entry["pid"] not in reported:
                    reported.add(entry["pid"])
                    log.warning("event=component_exited host=%s component=%s pid=%d", host.name, entry["name"],
                                entry["pid"])
            _reap()
            time.sleep(0.5)
    finally:
        pids = [entry["pid"] for entry in read_run_file(run_file).get("components") or []]
        stop(list(reversed(pids)))
        log.info("event=stopped host=%s", host.name)
    return 0
