"""Cluster DNS throughput: queries/s one `ketch dns` process answers, against a trivial UDP echo
server measured in the same run with the same load generator (the anchor: what Python sockets
and the generator allow at all on this machine).

    python bench/dns.py [--services 1000] [--headless 100] [--duration 5] [--window 64]
                        [--out bench/results/dns.json]

Starts a kv cluster and an API server (LocalControlPlane), creates --services ClusterIP services
and --headless headless services with a 3-endpoint EndpointSlice each, then `ketch dns` (with
--upstream none) and the echo server, each a process of its own. The load generator is a third
process: one UDP socket keeping --window queries in flight for --duration seconds.

Workloads:
    hot    a fixed set of 400 questions (A, AAAA, SRV, headless, NXDOMAIN, search-path misses),
           over and over: after the first round, answers come from the response cache
    cold   every question different (pod names with distinct addresses): every answer is
           computed from the view (the pure core's cost)
Prints a table (q/s, latency percentiles, lost, q/s as a share of the echo's) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import selectors
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this file is bench/dns.py: with bench/ first on the path, `import dns` would import it, not dnspython
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]

ECHO_SERVER = """
import socket, sys
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.bind(("127.0.0.1", int(sys.argv[1])))
while True:
    data, address = sock.recvfrom(65535)
    sock.sendto(data, address)
"""


# --- the load generator (its own process: `bench/dns.py --generate ...`) -------------------------

def questions(workload: str, services: int, headless: int, count: int) -> list[tuple[str, str]]:
    if workload == "cold":
        return [(f"10-{(i >> 16) & 255}-{(i >> 8) & 255}-{i & 255}.default.pod.cluster.local", "A")
                for i in range(count)]
    rng = random.Random(7)
    out = []
    for i in range(count):
        kind = i % 8
        svc = f"svc-{rng.randrange(services)}.default.svc.cluster.local"
        out.append({0: (svc, "A"), 1: (svc, "A"), 2: (svc, "AAAA"), 3: (f"_http._tcp.{svc}", "SRV"),
                    4: (f"hl-{rng.randrange(max(headless, 1))}.default.svc.cluster.local", "A"),
                    5: (f"nope-{i}.default.svc.cluster.local", "A"),
                    6: (f"{svc}.default.svc.cluster.local", "A"),
                    7: (f"svc-{rng.randrange(services)}.default.svc.cluster.local", "A")}[kind])
    return out


def generate(port: int, workload: str, duration_s: float, window: int, services: int, headless: int) -> dict:
    import dns.message

    count = 400 if workload == "hot" else 100_000
    wire = [bytearray(dns.message.make_query(name, rtype).to_wire()) for name, rtype in
            questions(workload, services, headless, count)]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(sock, selectors.EVENT_READ)
    in_flight: dict[int, float] = {}
    latencies: list[float] = []
    sent = next_query = 0
    ident = 0

    def send() -> None:
        nonlocal sent, next_query, ident
        query = wire[next_query % len(wire)]
        next_query += 1
        ident = (ident + 1) & 0xFFFF
        while ident in in_flight:
            ident = (ident + 1) & 0xFFFF
        query[0:2] = ident.to_bytes(2, "big")
        in_flight[ident] = time.perf_counter()
        sock.send(query)
        sent += 1

    started = time.perf_counter()
    end = started + duration_s
    for _ in range(window):
        send()
    lost = 0
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        if not selector.select(timeout=0.5):  # everything in flight is lost: start over
            lost += len(in_flight)
            in_flight.clear()
            for _ in range(window):
                send()
            continue
        while True:
            try:
                reply = sock.recv(65535)
            except BlockingIOError:
                break
            sent_at = in_flight.pop(int.from_bytes(reply[:2], "big"), None)
            if sent_at is not None:
                latencies.append(time.perf_counter() - sent_at)
                send()
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(p: float) -> float | None:
        return round(1000 * latencies[min(len(latencies) - 1, int(p * len(latencies)))], 3) if latencies else None
    return {"answered": len(latencies), "sent": sent, "lost": lost, "elapsed_s": round(elapsed, 3),
            "qps": round(len(latencies) / elapsed), "p50_ms": percentile(0.5), "p99_ms": percentile(0.99)}


# --- the run ------------------------------------------------------------------------------------

async def create_objects(plane, services: int, headless: int) -> None:
    import trio

    from orchestrator.client import kubeconfig
    from orchestrator.client.api import ENDPOINTSLICES, SERVICES, APIClient

    async with APIClient(kubeconfig.load(plane.kubeconfig())) as api:
        async def make(i: int, limiter: trio.CapacityLimiter) -> None:
            async with limiter:
                ports = [{"name": "http", "port": 80, "protocol": "TCP"}]
                if i < services:
                    await api.create(SERVICES, "default", {"metadata": {"name": f"svc-{i}"}, "spec": {"ports": ports}})
                    return
                name = f"hl-{i - services}"
                await api.create(SERVICES, "default", {"metadata": {"name": name},
                                                       "spec": {"clusterIP": "None", "ports": ports}})
                await api.create(ENDPOINTSLICES, "default", {
                    "metadata": {"name": name, "labels": {"kubernetes.io/service-name": name}},
                    "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                    "endpoints": [{"addresses": [f"10.244.{i % 250}.{k + 2}"], "conditions": {"ready": True}}
                                  for k in range(3)]})
        limiter = trio.CapacityLimiter(16)
        async with trio.open_nursery() as nursery:
            for i in range(services + headless):
                nursery.start_soon(make, i, limiter)


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def run_generator(port: int, workload: str, args) -> dict:
    result = subprocess.run([sys.executable, __file__, "--generate", str(port), workload, str(args.duration),
                             str(args.window), str(args.services), str(args.headless)],
                            capture_output=True, text=True, timeout=args.duration + 60, check=True)
    return json.loads(result.stdout)


def start(argv: list[str], log_path: Path) -> subprocess.Popen:
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)


def wait_healthy(url: str, process: subprocess.Popen, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError("ketch dns exited; see its log")
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{url} never answered 200")
        time.sleep(0.2)


def bench(args, work: Path) -> dict:
    import trio

    from kvstore.local_cluster import free_port, stop_processes
    from orchestrator.lab.local_plane import LocalControlPlane

    plane = LocalControlPlane(work / "plane")
    processes: list[subprocess.Popen] = []
    try:
        plane.start()
        started = time.perf_counter()
        trio.run(create_objects, plane, args.services, args.headless)
        create_s = time.perf_counter() - started
        dns_port, metrics_port, echo_port = free_port(udp=True), free_port(), free_port()
        dns_process = start([sys.executable, "-m", "orchestrator.cli", "dns", "--kubeconfig",
                             str(plane.pki_dir / "proxy.kubeconfig"), "--bind", f"127.0.0.1:{dns_port}",
                             "--metrics-bind", f"127.0.0.1:{metrics_port}", "--upstream", "none"], work / "dns.log")
        processes.append(dns_process)
        processes.append(start([sys.executable, "-c", ECHO_SERVER, str(echo_port)], work / "echo.log"))
        wait_healthy(f"http://127.0.0.1:{metrics_port}/healthz", dns_process)
        rows = {"echo (anchor)": run_generator(echo_port, "hot", args)}
        for workload in ("hot", "cold"):
            before = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
            row = run_generator(dns_port, workload, args)
            after = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
            hits = metric(after, "ketch_dns_cache_hits_total") - metric(before, "ketch_dns_cache_hits_total")
            misses = metric(after, "ketch_dns_cache_misses_total") - metric(before, "ketch_dns_cache_misses_total")
            row["cache_hit_share"] = round(hits / max(1.0, hits + misses), 3)
            row["x_echo"] = round(row["qps"] / max(1, rows["echo (anchor)"]["qps"]), 3)
            rows[f"ketch dns {workload}"] = row
        rebuild_s = metric(after, "ketch_dns_view_rebuild_seconds")
        services = metric(after, "ketch_dns_view_services")
        return {"rows": rows, "view": {"services": services, "last_rebuild_ms": round(1000 * rebuild_s, 2)},
                "objects_created_s": round(create_s, 2)}
    finally:
        stop_processes(processes)
        plane.stop()


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--generate":
        port, workload, duration, window, services, headless = sys.argv[2:8]
        print(json.dumps(generate(int(port), workload, float(duration), int(window), int(services), int(headless))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--headless", type=int, default=100)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dns.json")
    args = parser.parse_args()
    if not (1 <= args.services <= 20000 and 0 <= args.headless <= 5000 and 1 <= args.window <= 1000):
        parser.error("--services 1..20000, --headless 0..5000, --window 1..1000")
    with tempfile.TemporaryDirectory(prefix="ketch-bench-dns-") as work:
        result = bench(args, Path(work))
    anchor = result["rows"]["echo (anchor)"]["qps"]
    print(f"{'target':22} {'answered':>9} {'q/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'lost':>6} {'cache hits':>10} "
          f"{'x echo':>7}")
    for name, row in result["rows"].items():
        print(f"{name:22} {row['answered']:>9} {row['qps']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8} {row['lost']:>6} "
              f"{row.get('cache_hit_share', ''):>10} {row.get('x_echo', ''):>7}")
    print(f"view: {result['view']['services']:.0f} services, last rebuild {result['view']['last_rebuild_ms']} ms; "
          f"echo anchor {anchor} q/s; goal: ketch dns >= 5,000 q/s")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"python": platform.python_version(), "cpus": os.cpu_count(),
                                    "services": args.services, "headless": args.headless,
                                    "duration_s": args.duration, "window": args.window, **result}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
