"""Proxy sync time and network programming latency (root; run under flock /tmp/ketch-heavy.lock).

    python bench/proxy.py [--services 100,1000,5000] [--endpoints 3] [--partials 40]
                          [--latency-services 1000] [--changes 100] [--out bench/results/proxy.json]

Sync time, for each service count (each service one TCP port, every other one a NodePort, with
--endpoints endpoints spread over three nodes), inside a throwaway network namespace, through the
proxy's own state and modes (what `ketch proxy` runs per sync: plans, rules, text, the tool):
- full sync: the first sync, then full syncs again (the table replaced), p50 of the repeats;
- the floor, measured in the same run: `nft -f` alone (or `iptables-restore` alone) loading the
  very text the full sync produced; the ratio full / floor is the proxy's own overhead;
- partial sync: one endpoint of one service removed or added back, from the EndpointSlice
  change recorded to the rules applied, p50 and p99 over --partials changes, with the floor
  of the tool alone re-applying one such partial transaction.
Network programming latency: a real control plane (1 kv member, an API server), --latency-services
Services with EndpointSlices, and `ketch proxy --netns` (nftables mode); then --changes
EndpointSlice updates, each stamped with endpoints.kubernetes.io/last-change-trigger-time, one
every 0.25 s; each latency (trigger time -> rules applied) is read from the proxy's log.
Goals: 1,000 services full sync <= 0.5 s; endpoint change -> rules p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from netproxy.modes import IptablesMode, NftMode  # noqa: E402
from netproxy.nft import full_text, run_nft  # noqa: E402
from netproxy.state import ProxyState  # noqa: E402

NODES = ("n1", "n2", "n3")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


def objects(count: int, endpoints: int, start: int = 0) -> list[dict]:
    out = []
    for i in range(start, start + count):
        name = f"svc{i}"
        port = {"name": "http", "port": 80, "protocol": "TCP", **({"nodePort": 30000 + i % 2700} if i % 2 else {})}
        out.append({"metadata": {"namespace": "bench", "name": name},
                    "spec": {"type": "NodePort" if i % 2 else "ClusterIP",
                             "clusterIP": f"10.96.{(i + 1) // 250}.{(i + 1) % 250 + 1}", "ports": [port]}})
        out.append(slice_object(name, [pod_ip(i, j) for j in range(endpoints)]))
    return out


def pod_ip(service: int, j: int) -> str:
    n = service * 8 + j
    return f"10.{244 + n // 62500}.{(n // 250) % 250}.{n % 250 + 2}"


def slice_object(name: str, ips: list[str], trigger: str | None = None) -> dict:
    meta = {"namespace": "bench", "name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}}
    if trigger:
        meta["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": trigger}
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "nodeName": NODES[k % 3], "conditions": {"ready": True}}
                          for k, ip in enumerate(ips)]}


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def sync_times(mode_name: str, netns: str, count: int, endpoints: int, partials: int) -> dict:
    state = ProxyState("n1", "10.244.0.0/16")
    state.node_changed({"status": {"addresses": [{"type": "InternalIP", "address": "10.77.0.1"}]}})
    for obj in objects(count, endpoints):
        (state.slice_changed if "endpoints" in obj else state.service_changed)(obj, time.time())
    mode = NftMode(netns) if mode_name == "nftables" else IptablesMode(netns, "nft")

    def sync(full: bool) -> None:
        mode.sync(state.take(), state.node, time.monotonic(), full)
    full = [timed(lambda: sync(True)) for _ in range(3)]
    if mode_name == "nftables":
        text = full_text(mode.applier.applied)
        floor = [timed(lambda: run_nft(text, netns)) for _ in range(3)]
    else:
        text = mode.applier.last_text
        floor = [timed(lambda: mode.applier.restore(text)) for _ in range(3)]
    partial, partial_text = [], ""
    for k in range(partials):
        i = (k * 7919) % count  # spread over the services
        ips = [pod_ip(i, j) for j in range(endpoints)]
        change = slice_object(f"svc{i}", ips[:-1] if k % 2 == 0 else ips)
        started = time.perf_counter()
        state.slice_changed(change, time.time())
        sync(False)
        partial.append(time.perf_counter() - started)
        if k % 2 == 1 and k > 0:  # re-adding an endpoint: a transaction that can be replayed as is
            partial_text = mode.applier.last.text if mode_name == "nftables" else mode.applier.last_text
        if k % 2 == 0:
            state.slice_changed(slice_object(f"svc{i}", ips), time.time())  # put it back for the next round
            sync(False)
    if mode_name == "nftables":
        replay = "\n".join(line for line in partial_text.splitlines() if not line.startswith(("delete", "add element")))
        partial_floor = [timed(lambda: run_nft(replay, netns)) for _ in range(5)]
    else:
        partial_floor = [timed(lambda: mode.applier.restore(partial_text)) for _ in range(5)]
    mode.cleanup()
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    return {"mode": mode_name, "services": count, "endpoints": endpoints, "text_kib": len(text) // 1024,
            "full_ms": ms(percentile(full, 0.5)), "floor_ms": ms(percentile(floor, 0.5)),
            "full_over_floor": round(percentile(full, 0.5) / percentile(floor, 0.5), 2),
            "partial_p50_ms": ms(percentile(partial, 0.5)), "partial_p99_ms": ms(percentile(partial, 0.99)),
            "partial_floor_ms": ms(percentile(partial_floor, 0.5))}


def programming_latency(services: int, changes: int, endpoints: int, netns: str) -> dict:
    import trio

    from kvstore.local_cluster import free_port
    from orchestrator.client import kubeconfig
    from orchestrator.client.api import ENDPOINTSLICES, NAMESPACES, SERVICES, APIClient
    from orchestrator.lab.local_plane import LocalControlPlane

    with tempfile.TemporaryDirectory(prefix="ketch-bench-proxy-") as base:
        plane = LocalControlPlane(Path(base), kv_members=1)
        try:
            plane.start()
            log_path = Path(base) / "proxy-log"

            async def load() -> None:
                async with APIClient(kubeconfig.load(plane.kubeconfig()), connections=8) as api:
                    await api.create(NAMESPACES, None, {"metadata": {"name": "bench"}})
                    items = objects(services, endpoints)
                    limiter = trio.CapacityLimiter(8)

                    async def create(obj: dict) -> None:
                        async with limiter:
                            body = {k: v for k, v in obj.items() if k != "apiVersion"}
                            if "endpoints" in obj:
                                await api.create(ENDPOINTSLICES, "bench", body)
                            else:
                                body["spec"] = {k: v for k, v in body["spec"].items() if k != "clusterIP"}
                                await api.create(SERVICES, "bench", body)
                    async with trio.open_nursery() as nursery:
                        for obj in items:
                            nursery.start_soon(create, obj)
            started = time.monotonic()
            trio.run(load)
            load_s = time.monotonic() - started
            metrics = free_port()
            with open(log_path, "wb") as log:
                proxy = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "proxy", "--kubeconfig",
                                          str(plane.pki_dir / "proxy.kubeconfig"), "--node-name", "n1", "--netns",
                                          netns, "--metrics-bind", f"127.0.0.1:{metrics}"],
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
            plane.processes.append(proxy)
            deadline = time.monotonic() + 120
            while "event=synced" not in log_path.read_text():
                if time.monotonic() > deadline or proxy.poll() is not None:
                    raise RuntimeError(f"the proxy did not sync: {log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            first_sync = re.search(r"full=True services_changed=\d+ seconds=([0-9.]+)", log_path.read_text())

            async def churn() -> None:
                async with APIClient(kubeconfig.load(plane.kubeconfig())) as api:
                    for k in range(changes):
                        i = (k * 7919) % services
                        current = await api.get(ENDPOINTSLICES, "bench", f"svc{i}-1")
                        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                        ips = [e["addresses"][0] for e in current["endpoints"]]
                        fresh = slice_object(f"svc{i}", ips[:-1] if len(ips) == endpoints else
                                             [pod_ip(i, j) for j in range(endpoints)], stamp)
                        current["endpoints"], current["metadata"]["annotations"] = (
                            fresh["endpoints"], fresh["metadata"]["annotations"])
                        await api.update(ENDPOINTSLICES, current)
                        await trio.sleep(0.25)
                    await trio.sleep(2)
            trio.run(churn)
            text = log_path.read_text()
            latencies = [float(x) for x in re.findall(r"programming_latency_s=([0-9.]+)", text)][-changes:]
        finally:
            plane.stop()
    ms = lambda s: round(s * 1000, 1)  # noqa: E731
    return {"services": services, "endpoints": endpoints, "changes": changes, "observed": len(latencies),
            "create_objects_s": round(load_s, 1), "first_full_sync_ms": ms(float(first_sync.group(1)))
            if first_sync else None, "latency_p50_ms": ms(percentile(latencies, 0.5)),
            "latency_p99_ms": ms(percentile(latencies, 0.99)), "latency_max_ms": ms(max(latencies or [0]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", default="100,1000,5000")
    parser.add_argument("--endpoints", type=int, default=3)
    parser.add_argument("--partials", type=int, default=40)
    parser.add_argument("--modes", default="nftables,iptables")
    parser.add_argument("--latency-services", type=int, default=1000, help="0 skips the control plane part")
    parser.add_argument("--changes", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "proxy.json")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/proxy.py needs root (network namespaces, nft, iptables)", file=sys.stderr)
        return 2
    netns = f"kpb{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
        rows = [sync_times(mode, netns, int(n), args.endpoints, args.partials)
                for n in args.services.split(",") for mode in args.modes.split(",")]
        latency = programming_latency(args.latency_services, args.changes, args.endpoints, netns) \
            if args.latency_services else None
    finally:
        subprocess.run(["ip", "netns", "del", netns])
    print(f"{'mode':>9} {'services':>8} {'KiB':>6} {'full ms':>8} {'floor ms':>9} {'ratio':>6} "
          f"{'partial p50':>11} {'partial p99':>11} {'part floor':>10}")
    for r in rows:
        print(f"{r['mode']:>9} {r['services']:>8} {r['text_kib']:>6} {r['full_ms']:>8} {r['floor_ms']:>9} "
              f"{r['full_over_floor']:>6} {r['partial_p50_ms']:>11} {r['partial_p99_ms']:>11} "
              f"{r['partial_floor_ms']:>10}")
    print("floor: the same text loaded by nft -f / iptables-nft-restore alone, same run; times in ms")
    if latency:
        print(f"network programming latency, {latency['services']} services x {latency['endpoints']} endpoints, "
              f"{latency['observed']} EndpointSlice changes through the API: p50 {latency['latency_p50_ms']} ms, "
              f"p99 {latency['latency_p99_ms']} ms, max {latency['latency_max_ms']} ms "
              f"(first full sync {latency['first_full_sync_ms']} ms)")
    print("goals: 1,000 services full sync <= 500 ms; endpoint change -> rules p99 <= 100 ms")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"python": platform.python_version(), "sync": rows, "latency": latency},
                                   indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
