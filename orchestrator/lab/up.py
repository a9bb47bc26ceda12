"""`ketch up`: a control plane on this machine until Ctrl-C: 3 kv members, an API server, the
controller manager, the scheduler and --nodes hollow nodes (so pods really get scheduled and
reach Running; there is no container runtime behind them yet).

    ketch up [--dir .ketch] [--port 6443] [--nodes 3]

Data, logs, the PKI and kubeconfigs go under --dir; a second run reuses them (same CA, tokens
and kv data). It prints the kubectl line to use. Every process is stopped by pid on Ctrl-C.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import trio


def add_up_parser(subparsers) -> None:
    up = subparsers.add_parser("up", help="run a local control plane (kv cluster + API server) until Ctrl-C")
    up.add_argument("--dir", type=Path, default=Path(".ketch"))
    up.add_argument("--port", type=int, default=6443, help="the API server's port on 127.0.0.1")
    up.add_argument("--nodes", type=int, default=3, help="hollow nodes to run (0: none)")
    up.add_argument("--kv-base-port", type=int, default=2379,
                    help="kv member i takes client port BASE+10i (0: any free ports)")
    up.set_defaults(func=run_up)


def run_up(args) -> int:
    from orchestrator.lab.local_plane import LocalControlPlane

    stop: list[bool] = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    ports = [args.kv_base_port + 10 * i for i in range(3)] if args.kv_base_port else None
    plane = LocalControlPlane(args.dir, api_ports=[args.port], kv_client_ports=ports)
    try:
        plane.start()
        plane.start_components(args.nodes)
        kubeconfig = plane.kubeconfig().resolve()
        print(f"Ketch: 3 kv members ({','.join(plane.kv.endpoints)}), an API server on {plane.servers[0]}, "
              f"the controller manager, the scheduler and {args.nodes} hollow nodes")
        print(f"  data, logs and PKI under {args.dir}/ (kubeconfigs per role in {plane.pki_dir}/)")
        print("Try, in another shell:")
        print(f"  export KUBECONFIG={kubeconfig}")
        print("  kubectl get namespaces")
        print("  kubectl create deployment web --image=nginx --dry-run=client -o yaml | kubectl apply -f -")
        print("  kubectl get all,nodes -o wide")
        print("Ctrl-C stops everything.", flush=True)
        while not stop:
            if any(p.poll() is not None for p in plane.processes) or not all(n.running() for n in plane.kv.nodes):
                print(f"a process exited (see the logs in {args.dir}/); stopping", file=sys.stderr)
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError, trio.TooSlowError, OSError, ValueError) as err:
        print(f"ketch up: {err}", file=sys.stderr)
        return 1
    finally:
        plane.stop()
        print("stopped every process", flush=True)
    return 0
