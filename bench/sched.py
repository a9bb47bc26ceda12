"""Scheduling throughput and pod startup latency on hollow nodes.

    python bench/sched.py [--nodes 100,500] [--pods 500] [--rate 50[,150,300,0]] [--api-workers 1]
                          [--out bench/results/sched.json]

For each node count: a fresh control plane (3 kv members, an API server, the controller manager,
the scheduler) and one hollow-nodes process with that many nodes (4 cpu, 8Gi, 110 pods each).
Pods (10m cpu) are created at --rate per second; a watch records when each one is bound
(spec.nodeName set) and when it is Running. Reports scheduling throughput (bound pods per
second, from the first creation to the last binding) and creation -> bound and creation ->
Running latency (p50, p99), and the CPU each process used over the run (cores: CPU seconds over
wall seconds, an API server's workers included). --rate 0 is a burst: every pod created at
once, 64 requests in flight. --rate backlog is the scheduler's own throughput: the scheduler is
stopped (SIGTERM: it hands its lease back) while the pods are created as in a burst, then a new
one starts with all of them pending; throughput is counted from its first binding to its last,
and CPU from its start. Reference points printed alongside: kube-scheduler's CI floor of 270
pods/s at 5,000 nodes (scheduler_perf) and the SLO of pod startup p99 <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import trio
from procstat import cpu_seconds, plane_processes  # bench/procstat.py, beside this script

from kvstore.local_cluster import stop_processes
from orchestrator.client import kubeconfig
from orchestrator.client.api import PODS, APIClient
from orchestrator.lab.local_plane import LocalControlPlane

ROOT = Path(__file__).resolve().parent.parent
BACKLOG = "backlog"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def measure(plane: LocalControlPlane, nodes: int, pods: int, rate: float | str,
                  scheduler_args: tuple[str, ...] = ()) -> dict:
    """rate 0: every pod created at once (a burst), as fast as the API server takes them;
    "backlog": the same, with no scheduler until every pod exists."""
    backlog = rate == BACKLOG
    access = kubeconfig.load(plane.kubeconfig())
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    running: dict[str, float] = {}
    async with APIClient(access, connections=8) as api:  # the nodes are Ready: start_components waited
        start_rv = (await api.list(PODS, "default"))["metadata"]["resourceVersion"]

        async def watch() -> None:
            async for event in api.watch(PODS, "default", resource_version=start_rv, timeout_s=600, bookmarks=False):
                pod = event["object"]
                name, now = pod["metadata"]["name"], time.monotonic()
                if (pod.get("spec") or {}).get("nodeName"):
                    bound.setdefault(name, now)
                if (pod.get("status") or {}).get("phase") == "Running":
                    running.setdefault(name, now)
                if len(running) >= pods:
                    return

        async def create(i: int) -> None:
            name = f"bench-{i}"
            created[name] = time.monotonic()
            await api.create(PODS, "default", {"metadata": {"name": name, "labels": {"bench": "sched"}},
                                               "spec": {"containers": [{"name": "c", "image": "busybox", "resources": {
                                                   "requests": {"cpu": "10m", "memory": "16Mi"}}}]}})
        processes = plane_processes(plane)
        if backlog:
            pid = processes.pop("scheduler")
            scheduler = next(p for p in plane.processes if p.pid == pid)
            stop_processes([scheduler])
            plane.processes.remove(scheduler)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await trio.sleep(0.5)
            cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
            began = time.monotonic()
            async with trio.open_nursery() as creators:
                slots = trio.Semaphore(64)  # a burst: 64 creations in flight at once

                async def create_in_slot(i: int) -> None:
                    async with slots:
                        await create(i)
                for i in range(pods):
                    creators.start_soon(create_in_slot, i)
                    if rate and not backlog:
                        await trio.sleep(max(0.0, began + (i + 1) / rate - time.monotonic()))
            if backlog:
                began = time.monotonic()  # wall and CPU from here: the scheduler's drain
                cpu_before = {name: cpu_seconds(pid) for name, pid in processes.items()}
                processes["scheduler"] = plane.start_scheduler(*scheduler_args).pid
                cpu_before["scheduler"] = 0.0
            with trio.move_on_after(180):
                while len(running) < pods:
                    await trio.sleep(0.2)
            wall = time.monotonic() - began
            cpu = {name: round((cpu_seconds(pid) - cpu_before[name]) / wall, 2) for name, pid in processes.items()}
            nursery.cancel_scope.cancel()
    to_bound = [bound[n] - created[n] for n in created if n in bound]
    to_running = [running[n] - created[n] for n in created if n in running]
    first = min(bound.values(), default=began) if backlog else min(created.values(), default=began)
    span = (max(bound.values()) - first) if bound else float("nan")
    return {"nodes": nodes, "pods": pods, "rate": rate, "bound": len(to_bound), "running": len(to_running),
            "throughput_pods_per_s": round(len(to_bound) / span, 1) if bound else 0,
            "first_binding_after_s": round(min(bound.values()) - began, 2) if backlog and bound else None,
            "bound_p50_ms": round(1000 * percentile(to_bound, 0.5), 1),
            "bound_p99_ms": round(1000 * percentile(to_bound, 0.99), 1),
            "running_p50_ms": round(1000 * percentile(to_running, 0.5), 1),
            "running_p99_ms": round(1000 * percentile(to_running, 0.99), 1),
            "cpu_cores": cpu}


def run_one(nodes: int, pods: int, rate: float | str, api_workers: int, profile: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="ketch-bench-sched-") as work:
        plane = LocalControlPlane(Path(work), api_workers=api_workers)
        try:
            plane.start()
            scheduler_args = ("--profile",) if profile else ()
            plane.start_components(nodes, controller_args=("--cluster-cidr", "10.128.0.0/9"), ready_timeout_s=120,
                                   scheduler_args=scheduler_args)
            return {**trio.run(measure, plane, nodes, pods, rate, scheduler_args), "api_workers": api_workers}
        finally:
            plane.stop()
            if profile:  # the scheduler logs its plugin times when it stops
                for log in Path(work).glob("scheduler-*.log"):
                    text = log.read_text()
                    print(f"--- {nodes} nodes, rate {rate}: scheduler plugin times\n"
                          f"{text[text.rfind('event=plugin_times'):]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="100,500")
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--rate", default="50", help="pods created per second, comma-separated for a sweep; "
                        "0 = all at once (a burst); backlog = all created with no scheduler running, then a "
                        "new one started")
    parser.add_argument("--api-workers", type=int, default=1, help="`apiserver --workers` (default 1)")
    parser.add_argument("--profile", action="store_true", help="run the scheduler with --profile and print its "
                        "time per plugin after each run (the timing itself costs the scheduler some CPU)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sched.json")
    args = parser.parse_args()
    rows = [run_one(int(n), args.pods, r if r == BACKLOG else float(r), args.api_workers, args.profile)
            for n in args.nodes.split(",") for r in args.rate.split(",")]
    print(f"{'nodes':>6} {'pods':>6} {'rate/s':>7} {'bound':>6} {'sched pods/s':>13} {'bound p50 ms':>13} "
          f"{'bound p99 ms':>13} {'run p50 ms':>11} {'run p99 ms':>11}  CPU cores used, per process")
    for r in rows:
        cpu = " ".join(f"{name}={cores}" for name, cores in sorted(r["cpu_cores"].items(), key=lambda kv: -kv[1]))
        rate = "burst" if r["rate"] == 0 else r["rate"]
        print(f"{r['nodes']:>6} {r['pods']:>6} {rate:>7} {r['bound']:>6} {r['throughput_pods_per_s']:>13} "
              f"{r['bound_p50_ms']:>13} {r['bound_p99_ms']:>13} {r['running_p50_ms']:>11} {r['running_p99_ms']:>11}  "
              f"{cpu}")
    print("reference: kube-scheduler CI floor 270 pods/s at 5,000 nodes; SLO pod startup p99 <= 5,000 ms; "
          f"{os.cpu_count()} CPUs here")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(), "rows": rows},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
