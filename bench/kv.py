"""kv benchmark, shaped like etcd's: the same load generator against Ketch and a real etcd.

    python bench/kv.py --target both                      # the default plan, both stores
    python bench/kv.py --target ketch --workload put --clients 16 --duration 10
    python bench/kv.py --target etcd --endpoints 127.0.0.1:2379 --workload range-l --clients 16

The generator speaks etcd's v3 JSON gateway (orchestrator.lab.gateway_client), one persistent HTTP/1.1
connection per client, clients spread over --procs processes so the GIL is not the limit. Client
i talks to member i % 3, counted from each store's leader (so one client talks to the leader of
both). Keys are drawn uniformly from --key-space preloaded keys; values are --val-size bytes.

Workloads: put; range-l (linearizable get); range-s (serializable get); update (Kubernetes'
read-modify-write: get, then txn mod_revision == what was read, then put).
With --target both it starts a 3-member etcd (Debian's etcd-server) and a 3-member Ketch on
loopback, runs each workload against etcd and then Ketch (so both see the same moment of a
shared machine), and prints Ketch/etcd ratios, each store's CPU per operation (all its members,
from /proc), Ketch's per-hop timeline (from its /metrics) and the load average. The machine is
shared and noisy: compare the ratios, not the absolute figures across runs. `--failover`
measures leader failover instead (bench/kv_failover.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from procstat import cpu_seconds  # bench/procstat.py, beside this script

from orchestrator.lab.gateway_client import EtcdJSONClient, GatewayError

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_PLAN = [("put", 1), ("put", 16), ("put", 64), ("range-l", 16), ("range-s", 16), ("update", 16)]


def key_name(i: int) -> bytes:
    return b"bench/k%08d" % i


def run_client(endpoint: str, token: str | None, workload: str, key_space: int, value: bytes,
               deadline: float, warmup_end: float, seed: int, quota: int = 0) -> tuple[list[float], dict, int]:
    """Run ops until `deadline`, or, with a quota, until this client has done `quota` of them.
    Returns the latencies, failed ops by kind ({"HTTP 503: ...": n}) and CAS conflicts."""
    rng = random.Random(seed)
    client = EtcdJSONClient(endpoint, token)
    latencies, errors, conflicts = [], {}, 0
    while True:
        now = time.perf_counter()
        if (quota and len(latencies) >= quota) or (not quota and now >= deadline):
            break
        key = key_name(rng.randrange(key_space))
        try:
            if workload == "put":
                client.put(key, value)
            elif workload == "range-l":
                client.range(key)
            elif workload == "range-s":
                client.range(key, serializable=True)
            else:
                current = client.range(key)
                revision = int(current["kvs"][0]["mod_revision"]) if "kvs" in current else 0
                if not client.cas_put(key, value, revision).get("succeeded"):
                    conflicts += 1
        except (GatewayError, OSError) as err:
            kind = f"{type(err).__name__}: {str(err)[:80]}"
            errors[kind] = errors.get(kind, 0) + 1
            continue
        if quota or now >= warmup_end:
            latencies.append(time.perf_counter() - now)
    return latencies, errors, conflicts


def run_process(job: dict) -> tuple[list[float], dict, int]:
    results = [None] * len(job["clients"])

    def one(i: int, endpoint: str) -> None:
        results[i] = run_client(endpoint, job["token"], job["workload"], job["key_space"], job["value"],
                                job["deadline"], job["warmup_end"], job["seed"] + i, job["quota"])

    threads = [threading.Thread(target=one, args=(i, endpoint)) for i, endpoint in enumerate(job["clients"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    latencies = [lat for r in results for lat in r[0]]
    return latencies, _merge_counts(r[1] for r in results), sum(r[2] for r in results)


def _merge_counts(counts) -> dict:
    merged: dict = {}
    for count in counts:
        for kind, n in count.items():
            merged[kind] = merged.get(kind, 0) + n
    return merged


def measure(endpoints: list[str], token: str | None, workload: str, clients: int, procs: int,
            duration_s: float, warmup_s: float, key_space: int, val_size: int, total: int = 0) -> dict:
    """Time-bounded (duration after a warmup), or with `total`: exactly that many ops, timed."""
    started_at = time.perf_counter()
    start = time.perf_counter() + 0.5
    warmup_end = start + warmup_s
    deadline = warmup_end + duration_s
    procs = max(1, min(procs, clients))
    assignments = [[endpoints[i % len(endpoints)] for i in range(clients)][p::procs] for p in range(procs)]
    jobs = [{"clients": a, "token": token, "workload": workload, "key_space": key_space,
             "value": b"v" * val_size, "deadline": deadline, "warmup_end": warmup_end, "seed": 1000 * p,
             "quota": -(-total // clients) if total else 0}
            for p, a in enumerate(assignments)]
    with multiprocessing.get_context("fork").Pool(procs) as pool:
        parts = pool.map(run_process, jobs)
    latencies = sorted(lat for part in parts for lat in part[0])
    count = len(latencies)
    if total:
        duration_s = time.perf_counter() - started_at - 0.5  # the ops ran from start to now

    def pct(p: float) -> float:
        return round(latencies[min(count - 1, int(p * count))] * 1000, 2) if count else float("nan")

    return {"workload": workload, "clients": clients, "ops": count, "ops_per_s": round(count / duration_s, 1),
            "p50_ms": pct(0.50), "p90_ms": pct(0.90), "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if count else float("nan"),
            "errors": sum(sum(p[1].values()) for p in parts), "error_kinds": _merge_counts(p[1] for p in parts),
            "cas_conflicts": sum(p[2] for p in parts)}


def preload(endpoints: list[str], token: str | None, key_space: int, val_size: int) -> None:
    def load(part: range, endpoint: str) -> None:
        client = EtcdJSONClient(endpoint, token)
        for i in part:
            client.put(key_name(i), b"v" * val_size)
    parts = [range(start, key_space, 8) for start in range(8)]
    threads = [threading.Thread(target=load, args=(part, endpoints[i % len(endpoints)]))
               for i, part in enumerate(parts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def start_target(name: str, work_dir: Path):
    if name == "etcd":
        from orchestrator.lab.anchor import EtcdCluster
        cluster = EtcdCluster(work_dir / "etcd", members=3)
        cluster.start()
        return cluster, cluster.endpoints, None, [p.pid for p in cluster.processes]
    from kvstore.local_cluster import LocalCluster
    cluster = LocalCluster(work_dir / "ketch", members=3)
    cluster.start()
    cluster.wait_ready()
    client = EtcdJSONClient(cluster.gateways[0], cluster.token)
    deadline = time.monotonic() + 30
    while True:  # wait for a leader: a write goes through
        try:
            client.put(b"bench/ready", b"1")
            break
        except (GatewayError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    return cluster, cluster.gateways, cluster.token, [m.process.pid for m in cluster.nodes if m.process is not None]


HOP_LINE = re.compile(r'^ketch_kv_(write|read)_hop_seconds_(sum|count)\{hop="(\w+)"\} (\S+)$')


def hop_totals(gateways: list[str]) -> dict[tuple[str, str, str], float]:
    """Every member's hop histograms (kvstore.timeline), summed: (kind, hop, sum|count) -> value."""
    totals: dict[tuple[str, str, str], float] = {}
    for gateway in gateways:
        with urllib.request.urlopen(f"http://{gateway}/metrics", timeout=5) as response:
            for line in response.read().decode().splitlines():
                match = HOP_LINE.match(line)
                if match:
                    kind, what, hop, value = match.groups()
                    totals[kind, hop, what] = totals.get((kind, hop, what), 0.0) + float(value)
    return totals


def hop_means(before: dict, after: dict) -> dict[str, float]:
    """Mean milliseconds per hop over one workload ("write:quorum": 0.8, ...)."""
    means = {}
    for kind, hop, what in after:
        if what == "count":
            count = after[kind, hop, "count"] - before.get((kind, hop, "count"), 0.0)
            total = after[kind, hop, "sum"] - before.get((kind, hop, "sum"), 0.0)
            if count:
                means[f"{kind}:{hop}"] = round(total / count * 1000, 3)
    return means


def leader_first(endpoints: list[str], token: str | None) -> list[str]:
    """The endpoints rotated so the settled leader comes first. Client i talks to endpoint
    i % n, so with one client the store's role decides the path: through a follower a write
    also makes the forward to the leader and back. Without this, put/1 compared a leader with
    a follower whenever the two elections fell differently."""
    from kv_failover import settled_leader

    leader = settled_leader(endpoints, token)
    return endpoints[leader:] + endpoints[:leader]


def print_hops(rows: list[dict]) -> None:
    """Where a Ketch request's time went, hop by hop (mean ms; kvstore.timeline)."""
    timed = [r for r in rows if r.get("hops_ms")]
    if not timed:
        return
    print("\nKetch per-hop timeline, mean ms (write: received>proposed>appended>synced>quorum>applied>answered;"
          " read: received>confirmed>applied>answered)")
    for r in timed:
        print(f"{r['workload']:8} {r['clients']:3}  " + "  ".join(f"{k}={v}" for k, v in r["hops_ms"].items()))


def print_table(rows: list[dict]) -> None:
    print(f"{'target':6} {'workload':8} {'clients':>7} {'ops/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
          f"{'errors':>6} {'CPU ms/op':>10}")
    for r in rows:
        print(
            f"{r['target']:6} {r['workload']:8} {r['clients']:7} {r['ops_per_s']:9} {r['p50_ms']:8} "
            f"{r['p90_ms']:8} {r['p99_ms']:8} {r['errors']:6} {r.get('cpu_ms_per_op', '-'):>10}"
        )


def ratios(rows: list[dict]) -> list[dict]:
    out = []
    etcd = {(r["workload"], r["clients"]): r for r in rows if r["target"] == "etcd"}
    for r in rows:
        anchor = etcd.get((r["workload"], r["clients"]))
        if r["target"] == "ketch" and anchor and anchor["ops_per_s"]:
            out.append(
                {
                    "workload": r["workload"],
                    "clients": r["clients"],
                    "throughput_ratio": round(r["ops_per_s"] / anchor["ops_per_s"], 3),
                    "p99_ratio": round(r["p99_ms"] / anchor["p99_ms"], 3) if anchor["p99_ms"] else None,
                }
            )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=["ketch", "etcd", "both"], default="both")
    parser.add_argument("--endpoints", help="use a running cluster's gateway endpoints instead of starting one")
    parser.add_argument("--token", help="bearer token for --endpoints (Ketch)")
    parser.add_argument(
        "--workload",
        choices=["put", "range-l", "range-s", "update"],
        help="one workload (default: the plan " + ", ".join(f"{w}/{c}" for w, c in DEFAULT_PLAN) + ")",
    )
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument(
        "--conns",
        type=int,
        help="accepted for etcd benchmark compatibility; HTTP/1.1 cannot "
        "share a connection between concurrent requests, so each client has its own",
    )
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per workload")
    parser.add_argument(
        "--total",
        type=int,
        default=0,
        help="run exactly this many ops per workload (split over the clients) instead of --duration",
    )
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--key-space", type=int, default=10_000)
    parser.add_argument("--val-size", type=int, default=256)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kv.json")
    parser.add_argument("--failover", action="store_true",
                        help="instead of the load: SIGKILL the leader --kills times per target and time the first "
                        "acknowledged write through a surviving member (bench/kv_failover.py)")
    parser.add_argument("--kills", type=int, default=10)
    args = parser.parse_args()
    if args.clients < 1 or args.duration <= 0 or args.key_space < 1 or args.duration > 600:
        parser.error("--clients >= 1, 0 < --duration <= 600, --key-space >= 1")
    plan = [(args.workload, args.clients)] if args.workload else DEFAULT_PLAN
    targets = ["etcd", "ketch"] if args.target == "both" else [args.target]
    if args.endpoints and len(targets) > 1:
        parser.error("--endpoints needs one --target")

    if args.failover:
        from kv_failover import run_failover

        return run_failover(targets, args.kills, args.out.with_name("kv_failover.json"))
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="ketch-bench-") as tmp, contextlib.ExitStack() as stack:
        started, pids = {}, {}
        for target in targets:  # both up at once: each workload runs against etcd, then Ketch
            if args.endpoints:
                started[target] = (args.endpoints.split(","), args.token)
            else:
                cluster, endpoints, token, pids[target] = start_target(target, Path(tmp))
                stack.callback(cluster.stop)
                started[target] = (endpoints, token)
            if not args.endpoints:
                started[target] = (leader_first(*started[target]), started[target][1])
            preload(*started[target], args.key_space, args.val_size)
        for workload, clients in plan:
            for target in targets:
                endpoints, token = started[target]
                before = hop_totals(endpoints) if target == "ketch" else {}
                cpu_before, began = sum(map(cpu_seconds, pids.get(target, []))), time.monotonic()
                row = {"target": target, **measure(endpoints, token, workload, clients, args.procs, args.duration,
                                                   args.warmup, args.key_space, args.val_size, args.total)}
                if pids.get(target) and row["ops_per_s"]:  # the store's own CPU (all members) per operation
                    cores = (sum(map(cpu_seconds, pids[target])) - cpu_before) / (time.monotonic() - began)
                    row["cpu_ms_per_op"] = round(1000 * cores / row["ops_per_s"], 3)
                if target == "ketch":
                    row["hops_ms"] = hop_means(before, hop_totals(endpoints))
                rows.append(row)
                print(f"{target} {workload} clients={clients}: {row['ops_per_s']} ops/s, p99 {row['p99_ms']} ms, "
                      f"CPU {row.get('cpu_ms_per_op', '?')} ms/op"
                      + (f", errors {row['error_kinds']}" if row["errors"] else ""), flush=True)
    print()
    print_table(rows)
    print_hops(rows)
    compared = ratios(rows)
    if compared:
        print(f"\n{'workload':8} {'clients':>7} {'ketch/etcd ops/s':>17} {'ketch/etcd p99':>15}")
        for r in compared:
            print(f"{r['workload']:8} {r['clients']:7} {r['throughput_ratio']:17} {r['p99_ratio']!s:>15}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "kv",
                "cpus": os.cpu_count(),
                "duration_s": args.duration,
                "val_size": args.val_size,
                "key_space": args.key_space,
                "load_average_before": load_before,
                "load_average_after": os.getloadavg(),
                "results": rows,
                "ratios": compared,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"load average before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
