"""Scheduling throughput and pod startup latency on hollow nodes.

    python bench/sched.py [--nodes 100,500] [--pods 500] [--rate 50] [--out bench/results/sched.json]

For each node count: a fresh control plane (3 kv members, an API server, the controller manager,
the scheduler) and one hollow-nodes process with that many nodes (4 cpu, 8Gi, 110 pods each).
Pods (10m cpu) are created at --rate per second; a watch records when each one is bound
(spec.nodeName set) and when it is Running. Reports scheduling throughput (bound pods per
second, from the first creation to the last binding) and creation -> bound and creation ->
Running latency (p50, p99). Reference points printed alongside: kube-scheduler's CI floor of
270 pods/s at 5,000 nodes (scheduler_perf) and the SLO of pod startup p99 <= 5 s.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import trio

from orchestrator.client import kubeconfig
from orchestrator.client.api import NODES, PODS, APIClient
from orchestrator.lab.local_plane import LocalControlPlane

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


async def measure(plane: LocalControlPlane, nodes: int, pods: int, rate: float) -> dict:
    access = kubeconfig.load(plane.kubeconfig())
    created: dict[str, float] = {}
    bound: dict[str, float] = {}
    running: dict[str, float] = {}
    async with APIClient(access, connections=8) as api:
        deadline = time.monotonic() + 120
        while len([n for n in (await api.list(NODES, label_selector="type=hollow"))["items"]
                   if (n.get("spec") or {}).get("podCIDR")]) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError("the hollow nodes did not all register with a pod CIDR")
            await trio.sleep(1)
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
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await trio.sleep(0.5)
            began = time.monotonic()
            async with trio.open_nursery() as creators:
                for i in range(pods):
                    creators.start_soon(create, i)
                    await trio.sleep(max(0.0, began + (i + 1) / rate - time.monotonic()))
            with trio.move_on_after(120):
                while len(running) < pods:
                    await trio.sleep(0.2)
            nursery.cancel_scope.cancel()
    to_bound = [bound[n] - created[n] for n in created if n in bound]
    to_running = [running[n] - created[n] for n in created if n in running]
    span = (max(bound.values()) - min(created.values())) if bound else float("nan")
    return {"nodes": nodes, "pods": pods, "rate": rate, "bound": len(to_bound), "running": len(to_running),
            "throughput_pods_per_s": round(len(to_bound) / span, 1) if bound else 0,
            "bound_p50_ms": round(1000 * percentile(to_bound, 0.5), 1),
            "bound_p99_ms": round(1000 * percentile(to_bound, 0.99), 1),
            "running_p50_ms": round(1000 * percentile(to_running, 0.5), 1),
            "running_p99_ms": round(1000 * percentile(to_running, 0.99), 1)}


def run_one(nodes: int, pods: int, rate: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="ketch-bench-sched-") as work:
        plane = LocalControlPlane(Path(work))
        try:
            plane.start()
            pki = plane.pki_dir
            plane.start_component("controller-manager", "controller-manager", "--kubeconfig",
                                  str(pki / "controller-manager.kubeconfig"), "--cluster-cidr", "10.128.0.0/9")
            plane.start_component("scheduler", "scheduler", "--kubeconfig", str(pki / "scheduler.kubeconfig"))
            plane.start_component("hollow-nodes", "hollow-nodes", "--kubeconfig", str(pki / "admin.kubeconfig"),
                                  "--count", str(nodes))
            return trio.run(measure, plane, nodes, pods, rate)
        finally:
            plane.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", default="100,500")
    parser.add_argument("--pods", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="pods created per second")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "sched.json")
    args = parser.parse_args()
    rows = [run_one(int(n), args.pods, args.rate) for n in args.nodes.split(",")]
    print(f"{'nodes':>6} {'pods':>6} {'rate/s':>7} {'bound':>6} {'sched pods/s':>13} {'bound p50 ms':>13} "
          f"{'bound p99 ms':>13} {'run p50 ms':>11} {'run p99 ms':>11}")
    for r in rows:
        print(f"{r['nodes']:>6} {r['pods']:>6} {r['rate']:>7} {r['bound']:>6} {r['throughput_pods_per_s']:>13} "
              f"{r['bound_p50_ms']:>13} {r['bound_p99_ms']:>13} {r['running_p50_ms']:>11} {r['running_p99_ms']:>11}")
    print("reference: kube-scheduler CI floor 270 pods/s at 5,000 nodes; SLO pod startup p99 <= 5,000 ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"python": platform.python_version(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
