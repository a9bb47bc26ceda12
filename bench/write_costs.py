"""What a pod costs the control plane: CPU per write at the API server and the kv store.

    python bench/write_costs.py [--pods 1500] [--in-flight 32] [--watchers 3] [--api-workers 1]
                                [--out bench/results/write_costs.json]

A fresh control plane (3 kv members, one API server) with no components: the load generator
makes, one kind at a time and --in-flight requests at once, the writes a pod brings when it is
scheduled and started on a hollow node (create; binding; the scheduler's Scheduled event; the
kubelet's Running status, a strategic merge patch), then as many node Lease renewals, while
--watchers watches on every pod are open (as the scheduler, the controller manager and
bench/sched.py keep them). For each kind: ops/s, the API server's CPU per op, the kv members'
CPU per op (summed) and Raft entries per op, from /proc and the members' status. Then the cores
the API server and the kv store need for 100, 200 and 300 pods/s with 1,000 nodes' Lease
renewals (100/s), which is what bench/sched.py's burst at 1,000 nodes asks of them: the rest
of the machine is what the scheduler, the controller manager, the hollow nodes and the load
generator can have.
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

from kvstore.client import KVClient
from orchestrator.client import kubeconfig
from orchestrator.client.api import EVENTS, LEASES, PODS, APIClient
from orchestrator.client.events import EventRecorder
from orchestrator.lab.local_plane import LocalControlPlane

ROOT = Path(__file__).resolve().parent.parent
LEASES_PER_S = 100  # 1,000 nodes renewing every 10 s
POD_WRITES = ("create", "binding", "event", "status")
STAMP = "2026-01-01T00:00:00Z"


def pod(i: int) -> dict:
    return {"metadata": {"name": f"cost-{i}", "labels": {"bench": "costs"}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}


def running_status(i: int) -> dict:
    """What a hollow kubelet writes when the pod starts (orchestrator/hollow/nodes.py)."""
    return {"status": {
        "phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.128.0.2", "podIPs": [{"ip": "10.128.0.2"}],
        "startTime": STAMP, "qosClass": "Burstable",
        "conditions": [{"type": t, "status": "True", "lastProbeTime": None, "lastTransitionTime": STAMP}
                       for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
        "containerStatuses": [{"name": "c", "image": "busybox", "imageID": "hollow://busybox", "ready": True,
                               "started": True, "restartCount": 0, "containerID": f"hollow://{i}/c",
                               "state": {"running": {"startedAt": STAMP}}}]}}


async def kv_counts(endpoints: list[str], token: str) -> list[int]:
    """Each member's Raft index (entries appended)."""
    counts = []
    for endpoint in endpoints:
        async with KVClient([endpoint], token) as kv:
            counts.append((await kv.status())["raft_index"])
    return counts


async def measure(plane: LocalControlPlane, pods: int, in_flight: int, watchers: int) -> list[dict]:
    access = kubeconfig.load(plane.kubeconfig())
    processes = plane_processes(plane)
    api_pids = [pid for name, pid in processes.items() if name == "apiserver"]
    kv_pids = [pid for name, pid in processes.items() if name.startswith("kv ")]
    token = plane.kv.token_file.read_text().split()[0]
    rows: list[dict] = []
    created: dict[int, dict] = {}
    async with APIClient(access, connections=8) as api, APIClient(access, connections=watchers or 1) as watch_api:

        async def watch() -> None:
            async for _ in watch_api.watch(PODS, None, timeout_s=600, bookmarks=False):
                pass

        async def run_kind(kind: str, op) -> None:
            entries_before = await kv_counts(plane.kv.endpoints, token)
            api_before, kv_before = sum(map(cpu_seconds, api_pids)), sum(map(cpu_seconds, kv_pids))
            began = time.monotonic()
            async with trio.open_nursery() as nursery:
                slots = trio.Semaphore(in_flight)

                async def one(i: int) -> None:
                    async with slots:
                        await op(i)
                for i in range(pods):
                    nursery.start_soon(one, i)
            wall = time.monotonic() - began
            await trio.sleep(0.5)  # the members apply, the watchers drain
            entries = [after - before for before, after in
                       zip(entries_before, await kv_counts(plane.kv.endpoints, token), strict=True)]
            rows.append({"kind": kind, "ops_per_s": round(pods / wall, 1),
                         "api_cpu_ms_per_op": round(1000 * (sum(map(cpu_seconds, api_pids)) - api_before) / pods, 3),
                         "kv_cpu_ms_per_op": round(1000 * (sum(map(cpu_seconds, kv_pids)) - kv_before) / pods, 3),
                         "raft_entries_per_op": round(max(entries) / pods, 2)})
            print(f"{kind:8} {rows[-1]['ops_per_s']:8} ops/s  API {rows[-1]['api_cpu_ms_per_op']:.2f} ms/op  "
                  f"kv {rows[-1]['kv_cpu_ms_per_op']:.2f} ms/op", flush=True)

        async def create(i: int) -> None:
            created[i] = await api.create(PODS, "default", pod(i))

        async def bind(i: int) -> None:
            await api.bind(created[i], f"node-{i % 1000}")

        recorder = EventRecorder(api, "default-scheduler")

        async def event(i: int) -> None:
            recorder.record(created[i], "Pod", "Normal", "Scheduled",
                            f"Successfully assigned default/cost-{i} to node-{i % 1000}")
            await api.create(EVENTS, "default", recorder.receive.receive_nowait())

        async def status(i: int) -> None:
            await api.patch(PODS, "default", f"cost-{i}", running_status(i),
                            content_type="application/strategic-merge-patch+json", subresource="status")

        async def lease(i: int) -> None:
            await api.patch(LEASES, "kube-node-lease", f"node-{i % 100}",
                            {"spec": {"holderIdentity": f"node-{i % 100}", "leaseDurationSeconds": 40,
                                      "renewTime": f"2026-01-01T00:00:{i % 60:02d}.{i:06d}Z"}})

        async with trio.open_nursery() as nursery:
            for _ in range(watchers):
                nursery.start_soon(watch)
            await trio.sleep(0.5)
            for kind, op in zip(POD_WRITES, (create, bind, event, status), strict=True):
                await run_kind(kind, op)
            for n in range(100):
                await api.create(LEASES, "kube-node-lease", {"metadata": {"name": f"node-{n}"},
                                                             "spec": {"holderIdentity": f"node-{n}"}})
            await run_kind("lease", lease)
            nursery.cancel_scope.cancel()
    return rows


def budget(rows: list[dict], pods_per_s: int) -> dict:
    by_kind = {r["kind"]: r for r in rows}
    cores = {}
    for part in ("api", "kv"):
        per_pod = sum(by_kind[k][f"{part}_cpu_ms_per_op"] for k in POD_WRITES)
        cores[part] = round((pods_per_s * per_pod + LEASES_PER_S * by_kind["lease"][f"{part}_cpu_ms_per_op"]) / 1000, 2)
    return {"pods_per_s": pods_per_s, "api_cores": cores["api"], "kv_cores": cores["kv"],
            "both_cores": round(cores["api"] + cores["kv"], 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pods", type=int, default=1500)
    parser.add_argument("--in-flight", type=int, default=32)
    parser.add_argument("--watchers", type=int, default=3)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "write_costs.json")
    args = parser.parse_args()
    if not 1 <= args.pods <= 20_000 or not 1 <= args.in_flight <= 256 or not 0 <= args.watchers <= 100:
        parser.error("1 <= --pods <= 20000, 1 <= --in-flight <= 256, 0 <= --watchers <= 100")
    with tempfile.TemporaryDirectory(prefix="ketch-bench-costs-") as work:
        plane = LocalControlPlane(Path(work), api_workers=args.api_workers)
        try:
            plane.start()
            rows = trio.run(measure, plane, args.pods, args.in_flight, args.watchers)
        finally:
            plane.stop()
    budgets = [budget(rows, rate) for rate in (100, 200, 300)]
    print(f"\n{'write':8} {'ops/s':>8} {'API CPU ms/op':>14} {'kv CPU ms/op':>13} {'raft entries/op':>16}")
    for r in rows:
        print(f"{r['kind']:8} {r['ops_per_s']:8} {r['api_cpu_ms_per_op']:14} {r['kv_cpu_ms_per_op']:13} "
              f"{r['raft_entries_per_op']:16}")
    print(f"\n{'pods/s':>7} {'API cores':>10} {'kv cores':>9} {'both':>6}   (+ {LEASES_PER_S} Lease renewals/s; "
          f"{os.cpu_count()} CPUs here)")
    for b in budgets:
        print(f"{b['pods_per_s']:7} {b['api_cores']:10} {b['kv_cores']:9} {b['both_cores']:6}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"python": platform.python_version(), "cpus": os.cpu_count(), "pods": args.pods,
              "in_flight": args.in_flight, "watchers": args.watchers, "api_workers": args.api_workers,
              "rows": rows, "budgets": budgets}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
