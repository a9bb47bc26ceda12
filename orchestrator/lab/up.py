"""`ketch up`, `ketch down`, `ketch status`, `ketch logs`, `ketch node`, `ketch lab ...`: the lab's
commands as users type them.

    ketch up [--control-planes 3] [--workers 2] [--hollow N] [--dir .ketch]
             [--isolation netns|loopback] [--detach] [--config cluster.toml]
    ketch down [--dir .ketch]
    ketch status [--dir .ketch]
    ketch logs HOST COMPONENT [-f] [--dir .ketch]
    ketch lab exec HOST [--dir .ketch] -- CMD...

`up` shows its progress live (rich), then what runs where and how to use it. Without --detach it
stays until Ctrl-C and then takes everything down; with it, `ketch down` does.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.lab import cluster
from orchestrator.lab import config as cluster_config
from orchestrator.lab.components import Paths
from orchestrator.lab.node import alive, read_run_file

READY_TIMEOUT_S = 240


def add_up_parser(subparsers) -> None:
    up = subparsers.add_parser("up", help="bring up a whole cluster on this machine (hosts, control planes, workers)")
    up.add_argument("--dir", type=Path, default=Path(".ketch"), help="lab directory: data, logs, PKI (default .ketch)")
    up.add_argument("--control-planes", type=int, default=3)
    up.add_argument("--workers", type=int, default=2)
    up.add_argument("--hollow", type=int, default=0, help="hollow nodes as well (for scheduling at scale)")
    up.add_argument(
        "--isolation",
        choices=["netns", "loopback"],
        default=None,
        help="netns: hosts are network namespaces (root); loopback: 127.0.1.x addresses (default without root)",
    )
    up.add_argument("--config", type=Path, help="a cluster file instead of --control-planes/--workers")
    up.add_argument("--detach", action="store_true", help="return once the cluster is ready; `ketch down` stops it")
    up.add_argument("--demo", action="store_true",
                    help="then run a web Deployment and Service and ask the Service by name from a pod")
    up.add_argument(
        "--runtime", choices=["runc", "process", "local"], help="the kubelets' runtime (default: automatic)"
    )
    up.set_defaults(func=run_up)
    down = subparsers.add_parser("down", help="stop a lab: its processes, namespaces and what its kubelets made go; "
                                 "the cluster's data stays for the next `ketch up` (--purge: it goes too)")
    down.add_argument("--dir", type=Path, default=Path(".ketch"))
    down.add_argument("--purge", action="store_true", help="also delete the cluster's state (kv data, certificates, "
                      "logs): the next `ketch up` makes a new cluster")
    down.set_defaults(func=run_down)
    status = subparsers.add_parser("status", help="hosts, components, pids, health and the kv leader of a lab")
    status.add_argument("--dir", type=Path, default=Path(".ketch"))
    status.set_defaults(func=run_status)
    logs = subparsers.add_parser("logs", help="a component's log on a lab host")
    logs.add_argument("host")
    logs.add_argument("component")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--dir", type=Path, default=Path(".ketch"))
    logs.set_defaults(func=run_logs)
    node = subparsers.add_parser("node", help="run what a cluster file assigns to one host (on a VM or a lab host)")
    node.add_argument("--config", type=Path, required=True)
    node.add_argument("--host", required=True)
    node.add_argument("--systemd-unit", action="store_true",
                      help="print a systemd unit that runs this host's `ketch node` (for VMs), and exit")
    node.set_defaults(func=run_node_command)


def add_lab_parser(subparsers) -> None:
    lab = subparsers.add_parser("lab", help="work inside a lab: exec on a host, API access proxy")
    sub = lab.add_subparsers(dest="lab_command", metavar="COMMAND", required=True)
    execute = sub.add_parser("exec", help="run a command inside a lab host")
    execute.add_argument("host")
    execute.add_argument("argv", nargs="+", metavar="-- CMD")
    execute.add_argument("--dir", type=Path, default=Path(".ketch"))
    execute.set_defaults(func=run_exec)
    access = sub.add_parser("access", help="a TCP proxy to the API servers with failover")
    access.add_argument("--listen", required=True)
    access.add_argument("--servers", required=True)
    access.add_argument("--netns", help="enter this lab namespace after binding the listener")
    access.set_defaults(func=run_access_command)
    add = sub.add_parser("add-worker", help="add a worker host to a running lab")
    add.add_argument("--dir", type=Path, default=Path(".ketch"))
    add.add_argument("--zone", default="")
    add.set_defaults(func=run_add_worker)
    remove = sub.add_parser("remove-worker", help="take a worker host out of a running lab")
    remove.add_argument("host")
    remove.add_argument("--dir", type=Path, default=Path(".ketch"))
    remove.set_defaults(func=run_remove_worker)


def run_node_command(args) -> int:
    from orchestrator.lab.node import run_node, systemd_unit
    if args.systemd_unit:
        try:
            print(systemd_unit(args.config, args.host), end="")
        except cluster_config.ConfigError as err:
            print(f"ketch node: {err}", file=sys.stderr)
            return 2
        return 0
    return run_node(args)


def run_add_worker(args) -> int:
    try:
        state = cluster.LabState.load(args.dir)
        name = cluster.add_worker(state, args.zone)
    except (OSError, ValueError, KeyError, cluster_config.ConfigError, subprocess.SubprocessError) as err:
        print(f"ketch lab add-worker: {err}", file=sys.stderr)
        return 2
    print(f"added {name}; it joins as a Node once its kubelet registers (kubectl get nodes -w)")
    return 0


def run_remove_worker(args) -> int:
    try:
        state = cluster.LabState.load(args.dir)
        cluster.remove_worker(state, args.host)
    except (OSError, ValueError, KeyError, cluster_config.ConfigError) as err:
        print(f"ketch lab remove-worker: {err}", file=sys.stderr)
        return 2
    print(f"removed {args.host}; the lab cloud controller deletes its Node")
    return 0


def run_access_command(args) -> int:
    from orchestrator.lab.access import run_access

    return run_access(args)


def _config(args, netns: bool) -> tuple[cluster_config.ClusterConfig, Path]:
    directory = args.dir.resolve()
    path = directory / "cluster.toml"
    if args.config:
        config = cluster_config.load(args.config)
        config = cluster_config.ClusterConfig(**{**config.__dict__, "directory": directory})
    else:
        config = cluster_config.lab(
            args.control_planes, args.workers, directory, netns=netns, runtime=args.runtime or ""
        )
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text(cluster_config.render(config))
    return config, path


def run_up(args) -> int:
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    console = Console(stderr=True)
    netns = cluster.can_isolate() if args.isolation is None else args.isolation == "netns"
    if netns and not cluster.can_isolate():
        print("ketch up: --isolation netns needs root, ip, nsenter and nft; use --isolation loopback", file=sys.stderr)
        return 2
    if (args.dir / "lab.json").exists() and _lab_running(args.dir):
        print(
            f"ketch up: a lab already runs from {args.dir} (`ketch status --dir {args.dir}`, "
            f"`ketch down --dir {args.dir}`)",
            file=sys.stderr,
        )
        return 2
    try:
        config, path = _config(args, netns)
    except cluster_config.ConfigError as err:
        print(f"ketch up: {err}", file=sys.stderr)
        return 2
    started = time.monotonic()
    steps: dict[str, str] = {}

    def board() -> Table:
        table = Table(
            title=f"ketch up: {len(config.control_planes)} control planes, {len(config.workers)} workers "
            f"({'network namespaces' if netns else 'loopback'})",
            show_header=False,
        )
        for step, state in steps.items():
            table.add_row(step, state)
        table.add_row("elapsed", f"{time.monotonic() - started:.0f} s")
        return table

    state = None
    try:
        with Live(board(), console=console, refresh_per_second=4, transient=False) as live:

            def mark(step: str, text: str) -> None:
                steps[step] = text
                live.update(board())

            mark("hosts, PKI, processes", "starting")
            state = cluster.create(args.dir, config, path, netns)
            mark("hosts, PKI, processes", f"[green]{len(config.hosts)} hosts")
            mark("API servers", "waiting")
            cluster.wait_until(
                lambda: cluster.kubectl(state, "get", "--raw", "/readyz").returncode == 0,
                READY_TIMEOUT_S,
                progress=lambda: live.update(board()),
            )
            mark("API servers", "[green]serving")
            if args.hollow:
                _start_hollow(state, config, args.hollow)
            wanted = {h.name for h in config.workers}
            if wanted or args.hollow:
                mark("nodes Ready", "waiting")

                def nodes_ready() -> bool:
                    ready = cluster.ready_nodes(state)
                    steps["nodes Ready"] = f"{len(ready)}/{len(wanted) + args.hollow}"
                    return wanted <= ready and len(ready) >= len(wanted) + args.hollow

                cluster.wait_until(nodes_ready, READY_TIMEOUT_S, progress=lambda: live.update(board()))
                mark("nodes Ready", f"[green]{len(wanted) + args.hollow}")
            if config.workers:
                mark("cluster DNS", "waiting")
                cluster.wait_until(
                    lambda: cluster.dns_answers(state, config), READY_TIMEOUT_S, progress=lambda: live.update(board())
                )
                mark("cluster DNS", "[green]answers")
    except (TimeoutError, OSError, subprocess.SubprocessError, cluster_config.ConfigError) as err:
        console.print(f"[red]ketch up: {err}[/red]")
        if state is not None:
            console.print(f"logs under {args.dir}/logs/; taking the lab down")
            cluster.destroy(state)
        return 1
    except KeyboardInterrupt:
        if state is not None:
            cluster.destroy(state)
        return 130
    if args.demo and config.workers:
        from orchestrator.lab.demo import DemoFailed, run_demo
        try:
            seconds = run_demo(state)
            print(f"The Service answered {seconds:.0f} s after the manifest was applied "
                  f"({time.monotonic() - started:.0f} s after `ketch up` started).", flush=True)
        except (DemoFailed, subprocess.SubprocessError) as err:
            print(f"ketch up: the demo failed: {err} (the cluster stays up; see ketch logs)", file=sys.stderr)
    _print_usage(state, config, time.monotonic() - started, args.detach)
    if args.detach:
        return 0
    return _stay_until_interrupted(state)


def _start_hollow(state, config, count: int) -> None:
    paths = Paths(config.directory)
    host = config.control_planes[0].name
    argv = (
        cluster.fabric.enter(state.hosts.get(host))
        + cluster.ketch_command()
        + ["hollow-nodes", "--kubeconfig", str(paths.kubeconfig("admin", host)), "--count", str(count)]
    )
    with open(paths.logs(host) / "hollow-nodes.log", "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
    state.supervisors[f"{host}/hollow-nodes"] = process.pid
    state.save()


def _lab_running(directory: Path) -> bool:
    try:
        state = cluster.LabState.load(directory)
    except (OSError, ValueError, KeyError):
        return False
    return any(alive(pid) for pid in state.supervisors.values())


def _print_usage(state, config, seconds: float, detached: bool) -> None:
    kubeconfig = Paths(config.directory).kubeconfig("admin")
    print(f"Ketch is up in {seconds:.0f} s: {len(config.control_planes)} control planes, {len(config.workers)} workers")
    print("\n".join(cluster.describe(state, config)))
    print("Use it, from any shell on this machine:")
    print(f"  export KUBECONFIG={kubeconfig}")
    print("  kubectl get nodes -o wide")
    if state.netns:
        print("  kubectl create deployment hello --image=busybox --replicas=3 -- sh -c \\")
        print("      'echo hello from $(hostname) > /tmp/index.html; exec httpd -f -p 80 -h /tmp'")
        print("  kubectl expose deployment hello --port=80")
    else:  # pods share this machine's network: one unprivileged port, reached through a NodePort
        print("  kubectl create deployment hello --image=busybox -- httpd -f -p 8080")
        print("  kubectl expose deployment hello --port=80 --target-port=8080 --type=NodePort")
    ketch = _ketch_command()
    print(f"  {ketch} status --dir {state.directory}")
    print(f"  {ketch} logs HOST COMPONENT --dir {state.directory}")
    print(f"  {ketch} lab exec {config.hosts[-1].name} --dir {state.directory} -- ip addr")
    print(f"Stop it: {ketch + ' down --dir ' + str(state.directory) if detached else 'Ctrl-C'}", flush=True)


def _ketch_command() -> str:
    """`ketch` when the shell finds it, else the path of the one running (e.g. .venv/bin/ketch)."""
    beside = Path(sys.executable).parent / "ketch"
    if shutil.which("ketch") or not beside.exists():
        return "ketch"
    return str(beside)


def _stay_until_interrupted(state) -> int:
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    cluster.destroy(state)
    print("stopped every process and removed the lab's namespaces", flush=True)
    return 0


def run_down(args) -> int:
    try:
        state = cluster.LabState.load(args.dir)
    except (OSError, ValueError, KeyError):
        print(f"ketch down: no lab in {args.dir} (no lab.json)", file=sys.stderr)
        return 2
    removed = cluster.destroy(state)
    print(f"stopped every process{'; removed ' + str(len(removed)) + ' namespaces' if removed else ''}")
    if args.purge:
        try:
            deleted = cluster.purge(args.dir)
        except OSError as err:
            print(f"ketch down --purge: {err}", file=sys.stderr)
            return 1
        print(f"deleted the cluster's state in {args.dir}: {', '.join(deleted)}")
    else:
        print(f"the cluster's data stays in {args.dir}: `ketch up --dir {args.dir}` starts it again, objects and all "
              f"(`ketch down --purge` deletes it)")
    return 0


def run_status(args) -> int:
    try:
        state = cluster.LabState.load(args.dir)
        config = state.config()
    except (OSError, ValueError, KeyError, cluster_config.ConfigError) as err:
        print(f"ketch status: no lab in {args.dir} ({err})", file=sys.stderr)
        return 2
    paths = Paths(config.directory)
    print(f"{'HOST':12} {'ADDRESS':12} {'COMPONENT':20} {'PID':>8} {'STATE':8}")
    for host in config.hosts:
        supervisor = state.supervisors.get(host.name)
        print(
            f"{host.name:12} {host.address:12} {'node (supervisor)':20} {supervisor or '-':>8} "
            f"{'running' if supervisor and alive(supervisor) else 'stopped':8}"
        )
        for entry in read_run_file(paths.run_file(host.name)).get("components") or []:
            print(
                f"{'':12} {'':12} {entry['name']:20} {entry['pid']:>8} "
                f"{'running' if alive(entry['pid']) else 'exited':8}"
            )
    cp = config.control_planes[0]
    kv = cluster.run_in_host(
        state,
        cp.name,
        cluster.ketch_command()
        + [
            "kv",
            "status",
            "-w",
            "json",
            "--endpoints",
            ",".join(config.kv_endpoints()),
            "--token-file",
            str(paths.pki / "kv-tokens"),
        ],
        timeout=15,
    )
    print(f"kv: {kv.stdout.strip() or kv.stderr.strip()}")
    nodes = cluster.kubectl(state, "get", "nodes")
    print(nodes.stdout.strip() or nodes.stderr.strip())
    return 0


def run_logs(args) -> int:
    path = Paths(args.dir.resolve()).logs(args.host) / f"{args.component}.log"
    if not path.exists():
        print(
            f"ketch logs: no log {path} (components: node, kv, apiserver, scheduler, controller-manager, dns, "
            "api-access, kubelet, proxy)",
            file=sys.stderr,
        )
        return 2
    if args.follow:
        os.execvp("tail", ["tail", "-n", "+1", "-f", str(path)])
    sys.stdout.write(path.read_text(errors="replace"))
    return 0


def run_exec(args) -> int:
    try:
        state = cluster.LabState.load(args.dir)
    except (OSError, ValueError, KeyError):
        print(f"ketch lab exec: no lab in {args.dir}", file=sys.stderr)
        return 2
    if args.host not in state.hosts:
        print(f"ketch lab exec: no host {args.host!r} (hosts: {', '.join(state.hosts)})", file=sys.stderr)
        return 2
    argv = [a for a in args.argv if a != "--"] if args.argv[:1] == ["--"] else args.argv
    command = cluster.fabric.enter(state.hosts[args.host]) + argv
    os.execvp(command[0], command)
    return 0
