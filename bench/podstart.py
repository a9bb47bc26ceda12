"""Pod startup on real nodes: 30 pods created at once on 2 lab hosts, per runtime.

    sudo python bench/podstart.py [--pods 30] [--runtimes runc,process] [--out bench/results/podstart.json]

For each runtime: a lab (network namespaces) with a control plane on host h1 and two kubelets,
plus a hollow-nodes process with 2 nodes in the same control plane as the anchor (the same API
path with no runtime behind it). Pods (busybox `sleep`, no probes) are created at once; a watch
records when each is observed scheduled, with its sandbox ready (PodReadyToStartContainers),
its container started, Running, and Ready. Reported per runtime: p50/p99 of creation -> Ready,
the median of each stage, the kubelets' own time per runtime call (their
kubelet_runtime_operations_duration_seconds), and the ratio to the hollow anchor measured in
the same run. Goal: p99 <= 2 s with runc (Kubernetes' SLO: p99 <= 5 s).
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.client import kubeconfig  # noqa: E402
from orchestrator.client.api import NODES, PODS, APIClient  # noqa: E402
from tests.cluster.kubelet_lab import KETCH, KUBELET_PORT, KubeletLab  # noqa: E402

STAGES = ("scheduled", "sandbox", "started", "running", "ready")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def pod_manifest(name: str, hollow: bool) -> dict:
    match = {"key": "type", "operator": "In" if hollow else "NotIn", "values": ["hollow"]}
    return {"metadata": {"name": name, "labels": {"bench": "podstart"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                         "nodeSelectorTerms": [{"matchExpressions": [match]}]}}},
                     "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}


def _condition(pod: dict, kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in pod.get("status", {}).get("conditions")
               or [])


def stages_of(pod: dict) -> set[str]:
    seen = set()
    if pod.get("spec", {}).get("nodeName"):
        seen.add("scheduled")
    if _condition(pod, "PodReadyToStartContainers"):
        seen.add("sandbox")
    if any("running" in (s.get("state") or {}) for s in pod.get("status", {}).get("containerStatuses") or []):
        seen.add("started")
    if pod.get("status", {}).get("phase") == "Running":
        seen.add("running")
    if _condition(pod, "Ready"):
        seen.add("ready")
    return seen


async def measure(access, pods: int, hollow: bool, prefix: str) -> dict:
    created: dict[str, float] = {}
    seen: dict[str, dict[str, float]] = {}
    async with APIClient(access, connections=16) as api:
        start_rv = (await api.list(PODS, "default"))["metadata"]["resourceVersion"]
        done = trio.Event()

        async def watch() -> None:
            async for event in api.watch(PODS, "default", resource_version=start_rv, timeout_s=600, bookmarks=False):
                pod, now = event["object"], time.monotonic()
                name = pod["metadata"]["name"]
                if not name.startswith(prefix):
                    continue
                for stage in stages_of(pod):
                    seen.setdefault(name, {}).setdefault(stage, now)
                if sum("ready" in s for s in seen.values()) >= pods:
                    done.set()
                    return

        async def create(name: str) -> None:
            created[name] = time.monotonic()
            await api.create(PODS, "default", pod_manifest(name, hollow))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(watch)
            await trio.sleep(0.5)
            async with trio.open_nursery() as creators:
                for i in range(pods):
                    creators.start_soon(create, f"{prefix}{i}")
            with trio.move_on_after(180):
                await done.wait()
            nursery.cancel_scope.cancel()
        for name in list(created):
            await api.delete(PODS, "default", name, grace_period_s=0 if hollow else 1)
    ready = [seen[n]["ready"] - created[n] for n in created if "ready" in seen.get(n, {})]
    stage_medians, previous = {}, None
    for stage in STAGES:
        deltas = [seen[n][stage] - (seen[n][previous] if previous else created[n]) for n in created
                  if stage in seen.get(n, {}) and (previous is None or previous in seen[n])]
        stage_medians[stage] = percentile(deltas, 0.5)
        previous = stage
    return {"pods": pods, "ready": len(ready), "p50_s": percentile(ready, 0.5), "p99_s": percentile(ready, 0.99),
            "stage_median_s": stage_medians}


SCRAPE = ("import ssl,sys,urllib.request\n"
          "c=ssl.create_default_context(cafile=sys.argv[1]);c.check_hostname=False;c.load_cert_chain(sys.argv[2],sys.argv[3])\n"
          "print(urllib.request.urlopen(sys.argv[4],context=c,timeout=10).read().decode())")


def kubelet_costs(cluster: KubeletLab) -> dict[str, float]:
    """Mean seconds per runtime call over both kubelets, from their /metrics (read with the API
    server's kubelet client certificate, from inside each host)."""
    totals: dict[str, list[float]] = {}
    pki = cluster.pki
    for node in cluster.nodes:
        url = f"https://{cluster.host_of(node).address}:{KUBELET_PORT}/metrics"
        text = cluster.run_in(node, sys.executable, "-c", SCRAPE, str(pki / "ca.crt"),
                              str(pki / "apiserver-kubelet-client.crt"), str(pki / "apiserver-kubelet-client.key"),
                              url).stdout
        for line in text.splitlines():
            if line.startswith("kubelet_runtime_operations_duration_seconds_sum") or \
                    line.startswith("kubelet_runtime_operations_duration_seconds_count"):
                name, value = line.rsplit(" ", 1)
                op = name.split('operation_type="')[1].split('"')[0]
                totals.setdefault(op, [0.0, 0.0])[0 if "_sum" in name else 1] += float(value)
    return {op: total / count for op, (total, count) in sorted(totals.items()) if count}


def run_runtime(runtime: str, pods: int, work: Path) -> dict:
    """A lab for this runtime; the measuring runs inside host h1 (the API server is only there)."""
    cluster = KubeletLab.create(work / runtime, workers=2, runtime=runtime)
    try:
        cluster.lab.start(cluster.control_host, "hollow", KETCH + [
            "hollow-nodes", "--kubeconfig", str(cluster.pki / "admin.kubeconfig"), "--count", "2", "--prefix",
            "hollow-", "--heartbeat-seconds", "1"])
        done = cluster.run_in("h1", sys.executable, str(Path(__file__).resolve()), "--measure",
                              str(cluster.pki / "admin.kubeconfig"), "--pods", str(pods), timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"measuring failed: {done.stderr[-2000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["kubelet_call_mean_s"] = kubelet_costs(cluster)
        return result
    finally:
        cluster.close()


async def measure_both(kubeconfig_path: str, pods: int) -> dict:
    access = kubeconfig.load(kubeconfig_path)
    async with APIClient(access) as api:
        with trio.fail_after(60):
            while sum(1 for n in (await api.list(NODES))["items"] if n.get("spec", {}).get("podCIDR")) < 4:
                await trio.sleep(0.5)
    anchor = await measure(access, pods, hollow=True, prefix="anchor-")
    real = await measure(access, pods, hollow=False, prefix="real-")
    real["anchor"] = anchor
    real["ratio_p99_to_anchor"] = real["p99_s"] / anchor["p99_s"] if anchor["p99_s"] else float("nan")
    return real


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--runtimes", default="runc,process")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "podstart.json")
    parser.add_argument("--measure", metavar="KUBECONFIG", help=argparse.SUPPRESS)  # the part run inside h1
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(trio.run(measure_both, args.measure, args.pods)))
        return 0
    if os.geteuid() != 0:
        print("bench/podstart.py needs root (lab hosts are network namespaces; runc)", file=sys.stderr)
        return 2
    results = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "runtimes": {}}
    with tempfile.TemporaryDirectory(prefix="ketch-podstart-") as scratch:
        for runtime in args.runtimes.split(","):
            results["runtimes"][runtime] = run_runtime(runtime, args.pods, Path(scratch))
    print(f"{'runtime':<9} {'ready':>6} {'p50 s':>7} {'p99 s':>7} {'anchor p99':>11} {'ratio':>6}  stages (median s)")
    for runtime, r in results["runtimes"].items():
        stages = " ".join(f"{k}={v:.2f}" for k, v in r["stage_median_s"].items())
        print(f"{runtime:<9} {r['ready']:>3}/{r['pods']:<2} {r['p50_s']:>7.2f} {r['p99_s']:>7.2f} "
              f"{r['anchor']['p99_s']:>11.2f} {r['ratio_p99_to_anchor']:>6.1f}  {stages}")
        print("          kubelet calls (mean s): " + " ".join(f"{k}={v:.3f}" for k, v in
                                                             r["kubelet_call_mean_s"].items()))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
