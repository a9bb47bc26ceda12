"""One workload client against a kv cluster, recording a history for `ketch check`.

    python -m orchestrator.lab.workload --endpoints A,B,C --token-file F --index 0 --clients 5 \\
        --duration 20 --seed 1 --out DIR

A chaos run starts K of these, each its own OS process with its own client id and connection.
Each does read, write and cas on --keys registers, and now and then an `add`: a put of a new
key under `adds/<index>-` that nobody else writes. Register ops go to DIR/history-<index>.jsonl
as an invoke and a completion with CLOCK_MONOTONIC times, which every process on the machine
shares: ok (happened), fail (did not happen: a cas whose compare failed, or an error that says
nothing was applied) or info (unknown: a timeout or an ambiguous error, never recorded as fail).
A client whose op ended in info goes on as a new process id (index + K, ...), as Jepsen's do.
Adds and their outcomes go to DIR/adds-<index>.jsonl.

At the end (the run has healed every fault by then) the client reads every register, then reads
its `adds/` prefix once: every acknowledged add must be in it (`orchestrator.lab.report`).
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
import time
from pathlib import Path

import trio

from kvstore import commands as c
from kvstore.client import KVClient
from kvstore.errors import KVError

OP_TIMEOUT_S = 2.0


class Recorder:
    def __init__(self, out: Path, index: int) -> None:
        self.history = open(out / f"history-{index}.jsonl", "w")
        self.adds = open(out / f"adds-{index}.jsonl", "w")

    def event(self, process: int, kind: str, f: str, key: str, value) -> None:
        self.history.write(json.dumps({"process": process, "type": kind, "f": f, "key": key,
                                       "value": value, "time": time.monotonic()}) + "\n")

    def add(self, element: str, outcome: str) -> None:
        self.adds.write(json.dumps({"element": element, "outcome": outcome}) + "\n")

    def final_adds(self, elements: list[str] | None) -> None:
        """What the final read found (None: no final read succeeded)."""
        self.adds.write(json.dumps({"final_read": elements}) + "\n")

    def close(self) -> None:
        self.history.close()
        self.adds.close()


def _int_value(result: dict):
    kvs = result["kvs"]
    return int(kvs[0]["value"]) if kvs else None


async def run_op(kv: KVClient, f: str, key: str, value):
    """Returns (completion type, value)."""
    k = key.encode()
    try:
        with trio.fail_after(OP_TIMEOUT_S):
            if f == "read":
                return "ok", _int_value(await kv.range(k))
            if f == "write":
                await kv.put(k, b"%d" % value)
                return "ok", value
            expected, new = value
            compare = [c.compare(k, "value", "=", b"%d" % expected)]
            result = await kv.txn(compare, [c.put(k, b"%d" % new)])
            return ("ok" if result["succeeded"] else "fail"), value
    except trio.TooSlowError:
        return ("fail" if f == "read" else "info"), value  # a read that never answered changed nothing
    except KVError as err:
        if f == "read":
            return "fail", value
        maybe_applied = err.code == "UNAVAILABLE" and err.details.get("ambiguous", True)
        return ("info" if maybe_applied else "fail"), value


async def add(kv: KVClient, element: str) -> str:
    """Put a key nobody else writes: ok, fail (surely not applied) or info (unknown)."""
    kind, _ = await run_op(kv, "write", element, 1)
    return kind


async def read_adds(kv: KVClient, prefix: str) -> list[str] | None:
    for _ in range(10):
        try:
            with trio.fail_after(OP_TIMEOUT_S):
                found = await kv.range(prefix.encode(), c.prefix_end(prefix.encode()), keys_only=True)
            return sorted(kv_["key"].decode() for kv_ in found["kvs"])
        except (trio.TooSlowError, KVError):
            await trio.sleep(0.5)
    return None


async def client(index: int, clients: int, endpoints: list[str], token: str, keys: list[str],
                 deadline: float, seed: int, recorder: Recorder) -> None:
    rng = random.Random(seed * 1000 + index)
    process = index
    adds_prefix = f"adds/{index}-"
    async with KVClient(endpoints[index % len(endpoints):] + endpoints[:index % len(endpoints)], token,
                        timeout_s=OP_TIMEOUT_S, client_id=f"w{seed}-{index}") as kv:
        for n in itertools.count():
            if time.monotonic() >= deadline:
                break
            if rng.random() < 0.2:
                element = f"{adds_prefix}{n}"
                recorder.add(element, await add(kv, element))
                continue
            f = rng.choice(["read", "read", "write", "cas"])
            key = rng.choice(keys)
            value = (
                None if f == "read" else (rng.randrange(5) if f == "write" else [rng.randrange(5), rng.randrange(5)])
            )
            recorder.event(process, "invoke", f, key, value)
            kind, out = await run_op(kv, f, key, value)
            recorder.event(process, kind, f, key, out)
            if kind == "info":
                process += clients  # Jepsen: a process with an unknown op is replaced
            await trio.sleep(rng.uniform(0, 0.02))
        for key in keys:  # final reads, after the faults have been healed
            for _ in range(10):
                recorder.event(process, "invoke", "read", key, None)
                kind, out = await run_op(kv, "read", key, None)
                recorder.event(process, kind, "read", key, out)
                if kind == "ok":
                    break
        recorder.final_adds(await read_adds(kv, adds_prefix))


async def run(args) -> None:
    token = Path(args.token_file).read_text().split()[0]
    keys = [f"r{i}" for i in range(args.keys)]
    recorder = Recorder(Path(args.out), args.index)
    deadline = time.monotonic() + args.duration
    try:
        await client(args.index, args.clients, args.endpoints.split(","), token, keys, deadline, args.seed, recorder)
    finally:
        recorder.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoints", required=True)
    parser.add_argument("--token-file", required=True)
    parser.add_argument("--index", type=int, required=True, help="this client's number, 0..clients-1")
    parser.add_argument("--clients", type=int, default=5, help="how many clients the run has")
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="directory for history-INDEX.jsonl and adds-INDEX.jsonl")
    args = parser.parse_args(argv)
    if not (
        1 <= args.clients <= 64
        and 0 <= args.index < args.clients
        and 1 <= args.keys <= 100
        and 0 < args.duration <= 3600
    ):
        parser.error("--clients 1..64, --index 0..clients-1, --keys 1..100, 0 < --duration <= 3600")
    trio.run(run, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
