"""MVCC core apply throughput on one core: how fast one member applies committed commands.

    python bench/kv_apply.py [--keys 10000] [--ops 200000] [--repeat 3] [--out bench/results/kv_apply.json]

Workloads (best of --repeat runs each; keys preloaded before timing):
    put            small values (16 B) over --keys keys (every put after the first round is an update)
    put+msgpack    the same, with the command decoded from msgpack and the result encoded, as the
                   replica does per command
    range 1 key    single-key linearizable-style read of a preloaded key
    range prefix   100-key prefix read (keys laid out as p<3 digits>/k<3 digits>)
    k8s txn        compare mod_revision == what the caller last saw, then put (Kubernetes' update)
    anchor         a bare Python loop doing a dict update and a tuple per op: the machine's own
                   speed in the same run, so figures from noisy shared machines compare as ratios

Prints a table and writes JSON. The goal (issue 2): >= 100k simple puts/s applied.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from kvstore import StateMachine
from kvstore import commands as c
from kvstore.codec import decode, encode

ROOT = Path(__file__).resolve().parent.parent

VALUE = b"v" * 16


def key_name(i: int) -> bytes:
    return b"p%03d/k%03d" % (i // 100, i % 100)


def preloaded(keys: int) -> StateMachine:
    machine = StateMachine()
    for i in range(keys):
        machine.apply(c.put(key_name(i), VALUE))
    return machine


def bench_put(keys: int, ops: int) -> float:
    machine = preloaded(keys)
    commands = [c.put(key_name(i % keys), VALUE) for i in range(ops)]
    apply = machine.apply
    started = time.perf_counter()
    for command in commands:
        apply(command)
    return time.perf_counter() - started


def bench_put_msgpack(keys: int, ops: int) -> float:
    machine = preloaded(keys)
    frames = [encode(c.put(key_name(i % keys), VALUE)) for i in range(ops)]
    apply = machine.apply
    started = time.perf_counter()
    for frame in frames:
        encode(apply(decode(frame)))
    return time.perf_counter() - started


def bench_range_one(keys: int, ops: int) -> float:
    machine = preloaded(keys)
    commands = [c.range_(key_name((i * 7919) % keys)) for i in range(ops)]
    apply = machine.apply
    started = time.perf_counter()
    for command in commands:
        apply(command)
    return time.perf_counter() - started


def bench_range_prefix(keys: int, ops: int) -> float:
    machine = preloaded(keys)
    prefixes = [b"p%03d/" % (i % max(1, keys // 100)) for i in range(ops)]
    commands = [c.range_(p, c.prefix_end(p)) for p in prefixes]
    apply = machine.apply
    started = time.perf_counter()
    for command in commands:
        apply(command)
    return time.perf_counter() - started


def bench_k8s_txn(keys: int, ops: int) -> float:
    machine = preloaded(keys)
    # Build the commands up front: the preload put key i at revision i + 2, and each update
    # advances the revision by one, so what the caller last saw is known in advance.
    seen = {key_name(i): i + 2 for i in range(keys)}
    revision = keys + 1
    commands = []
    for i in range(ops):
        key = key_name(i % keys)
        commands.append(c.txn([c.compare(key, "mod_revision", "=", seen[key])], [c.put(key, VALUE)],
                              [c.range_(key)]))
        revision += 1
        seen[key] = revision
    apply = machine.apply
    started = time.perf_counter()
    for command in commands:
        apply(command)
    elapsed = time.perf_counter() - started
    if machine.revision != revision:
        raise AssertionError("the benchmark's own updates conflicted")
    return elapsed


def bench_anchor(keys: int, ops: int) -> float:
    table: dict[bytes, tuple] = {}
    names = [key_name(i % keys) for i in range(ops)]
    started = time.perf_counter()
    for i, name in enumerate(names):
        table[name] = (name, VALUE, i, i, 1, 0)
    return time.perf_counter() - started


WORKLOADS = [
    ("anchor", bench_anchor, 1),
    ("put", bench_put, 1),
    ("put+msgpack", bench_put_msgpack, 1),
    ("range 1 key", bench_range_one, 1),
    ("range prefix", bench_range_prefix, 10),   # 100 kvs per op: fewer ops
    ("k8s txn", bench_k8s_txn, 2),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "kv_apply.json")
    args = parser.parse_args()
    if args.keys < 100 or args.ops < 1 or args.repeat < 1:
        parser.error("--keys must be >= 100, --ops and --repeat >= 1")

    rows = []
    anchor_rate = None
    for name, fn, divisor in WORKLOADS:
        ops = max(1, args.ops // divisor)
        best = min(fn(args.keys, ops) for _ in range(args.repeat))
        rate = ops / best
        anchor_rate = anchor_rate or rate
        rows.append({"workload": name, "ops": ops, "seconds": round(best, 4), "ops_per_s": round(rate),
                     "us_per_op": round(best / ops * 1e6, 2), "ratio_to_anchor": round(rate / anchor_rate, 4)})

    print(f"{'workload':14} {'ops':>8} {'ops/s':>10} {'us/op':>8} {'vs anchor':>10}")
    for row in rows:
        print(f"{row['workload']:14} {row['ops']:8} {row['ops_per_s']:10} {row['us_per_op']:8} "
              f"{row['ratio_to_anchor']:10.3f}")
    put_rate = next(r["ops_per_s"] for r in rows if r["workload"] == "put")
    print(f"goal: >= 100000 puts/s applied: {'met' if put_rate >= 100_000 else 'NOT met'} ({put_rate})")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "benchmark": "kv_apply", "python": platform.python_version(), "machine": platform.machine(),
        "keys": args.keys, "repeat": args.repeat, "results": rows,
    }, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
