"""API server latency and throughput, and watch fan-out, against the kv store underneath as anchor.

    python bench/api.py [--clients 8] [--duration 5] [--watchers 1000] [--out bench/results/api.json]

Starts a 3-member kv cluster and one API server on loopback (LocalControlPlane), then:
    create / get / update / list    N clients (one keep-alive HTTPS connection each) for --duration s
                                    on configmaps; list reads 100 objects, quorum (no
                                    resourceVersion) and from the watch cache (resourceVersion=0)
    kv put / kv get (anchor)        the same number of clients on the kv store directly, same run:
                                    "x kv" is the API operation's p50 over the kv operation's p50
    watch fan-out                   --watchers watches (one connection each) on one namespace; 20
                                    writes; time from sending each write to the last watcher's event
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import trio

from kvstore.client import KVClient
from orchestrator.client.transport import Connection
from orchestrator.lab.local_plane import LocalControlPlane

ROOT = Path(__file__).resolve().parent.parent

NAMESPACE_PATH = "/api/v1/namespaces/default/configmaps"
LIST_PATH = "/api/v1/namespaces/listing/configmaps"  # exactly 100 objects
FAN_PATH = "/api/v1/namespaces/fanout/configmaps"


class BenchConnection:
    """The client library's connection, with the token and JSON headers a bench request carries."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext, token: str) -> None:
        self.connection = Connection(host, port, context)
        self.headers = [("Authorization", f"Bearer {token}"), ("Accept", "application/json")]

    async def open(self) -> None:
        await self.connection.open()

    async def request(self, method: str, path: str, body: bytes = b"", content_type: str = "application/json"):
        code, _, data = await self.connection.request(method, path, [*self.headers, ("Content-Type", content_type)],
                                                      body)
        return code, data

    async def stream_lines(self, path: str):
        lines = self.connection.stream_lines(path, self.headers)
        await lines.__anext__()  # the status code
        async for line in lines:
            yield line


def summary(latencies: list[float], seconds: float) -> dict:
    ordered = sorted(latencies)
    return {"ops": len(ordered), "ops_per_s": round(len(ordered) / seconds, 1),
            "p50_ms": round(1000 * ordered[len(ordered) // 2], 2),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)}


async def timed_load(clients: int, duration: float, make_op) -> dict:
    """clients tasks, each calling its op (made by make_op(i)) back to back for duration s."""
    latencies: list[float] = []
    deadline = time.monotonic() + duration

    async def worker(i: int) -> None:
        op = await make_op(i)
        n = 0
        while time.monotonic() < deadline:
            start = time.perf_counter()
            await op(n)
            latencies.append(time.perf_counter() - start)
            n += 1
    async with trio.open_nursery() as nursery:
        for i in range(clients):
            nursery.start_soon(worker, i)
    return summary(latencies, duration)


async def bench(plane: LocalControlPlane, args) -> dict:
    url = urlparse(plane.servers[0])
    context = ssl.create_default_context(cafile=str(plane.pki_dir / "ca.crt"))
    token = (plane.pki_dir / "tokens.csv").read_text().split(",")[0]

    async def connection() -> BenchConnection:
        conn = BenchConnection(url.hostname, url.port, context, token)
        await conn.open()
        return conn

    def expect(code: int, wanted: int, body: bytes) -> None:
        if code != wanted:
            raise RuntimeError(f"unexpected {code}: {body[:300]!r}")

    rows = {}
    created: dict[int, int] = {}

    async def make_create(i):
        conn = await connection()

        async def op(n):
            created[i] = n + 1
            body = json.dumps({"metadata": {"name": f"b{i}-{n}", "labels": {"bench": "yes"}}, "data": {"v": "x" * 100}})
            await op_expect(conn, "POST", NAMESPACE_PATH, body.encode(), 201)
        return op

    async def op_expect(conn, method, path, body=b"", wanted=200):
        code, data = await conn.request(method, path, body)
        expect(code, wanted, data)
        return data

    async def make_get(i):
        conn = await connection()
        return lambda n: op_expect(conn, "GET", f"{NAMESPACE_PATH}/b{i}-{n % max(1, created.get(i, 1) - 1)}")

    async def make_update(i):
        conn = await connection()
        name = f"u{i}"
        await op_expect(conn, "POST", NAMESPACE_PATH, json.dumps({"metadata": {"name": name}}).encode(), 201)
        current = json.loads(await op_expect(conn, "GET", f"{NAMESPACE_PATH}/{name}"))

        async def op(n):
            current["data"] = {"n": str(n)}
            current.update(json.loads(await op_expect(conn, "PUT", f"{NAMESPACE_PATH}/{name}",
                                                      json.dumps(current).encode())))
        return op

    async def make_list(resource_version):
        async def make(i):
            conn = await connection()
            query = "?labelSelector=listed%3Dyes" + (f"&resourceVersion={resource_version}" if resource_version else "")
            return lambda n: op_expect(conn, "GET", LIST_PATH + query)
        return make

    rows["create"] = await timed_load(args.clients, args.duration, make_create)
    rows["get"] = await timed_load(args.clients, args.duration, make_get)
    rows["update"] = await timed_load(args.clients, args.duration, make_update)
    setup = await connection()
    for namespace in ("listing", "fanout"):
        body = json.dumps({"metadata": {"name": namespace}}).encode()
        await op_expect(setup, "POST", "/api/v1/namespaces", body, 201)
    for n in range(100):
        await op_expect(
            setup,
            "POST",
            LIST_PATH,
            json.dumps({"metadata": {"name": f"l{n}", "labels": {"listed": "yes"}}, "data": {"v": "x" * 100}}).encode(),
            201,
        )
    rows["list 100 (quorum)"] = await timed_load(args.clients, args.duration, await make_list(None))
    rows["list 100 (cache, rv=0)"] = await timed_load(args.clients, args.duration, await make_list("0"))

    async with KVClient(plane.kv.endpoints, plane.kv.token, timeout_s=10) as kv:

        async def make_kv_put(i):
            return lambda n: kv.put(b"/bench/%d/%d" % (i, n), b"x" * 200)

        async def make_kv_get(i):
            return lambda n: kv.get(b"/bench/%d/%d" % (i, n % 50))

        rows["kv put (anchor)"] = await timed_load(args.clients, args.duration, make_kv_put)
        rows["kv get (anchor)"] = await timed_load(args.clients, args.duration, make_kv_get)
    for name, anchor in (("create", "kv put (anchor)"), ("update", "kv put (anchor)"), ("get", "kv get (anchor)")):
        rows[name]["x_kv_p50"] = round(rows[name]["p50_ms"] / rows[anchor]["p50_ms"], 2)
    rows["watch fan-out"] = await fan_out(connection, op_expect, args.watchers)
    return rows


async def watchers_open(conn: BenchConnection) -> int:
    _, text = await conn.request("GET", "/metrics")
    line = next(line for line in text.decode().splitlines() if line.startswith("ketch_apiserver_watchers "))
    return int(float(line.split()[1]))


async def fan_out(connection, op_expect, watchers: int) -> dict:
    received: dict[str, list[float]] = {}
    ready = trio.Semaphore(0)

    async def watcher() -> None:
        conn = await connection()
        ready.release()
        async for line in conn.stream_lines(FAN_PATH + "?watch=true&timeoutSeconds=120"):
            event = json.loads(line)
            received.setdefault(event["object"]["metadata"]["name"], []).append(time.perf_counter())

    writer = await connection()
    written: dict[str, float] = {}
    async with trio.open_nursery() as nursery:
        for _ in range(watchers):
            nursery.start_soon(watcher)
        for _ in range(watchers):
            await ready.acquire()
        while await watchers_open(writer) < watchers:  # every watch is subscribed
            await trio.sleep(0.2)
        for n in range(20):
            name = f"fan-{n}"
            written[name] = time.perf_counter()
            await op_expect(writer, "POST", FAN_PATH, json.dumps({"metadata": {"name": name}}).encode(), 201)
            await trio.sleep(0.2)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(len(received.get(n, [])) < watchers for n in written):
            await trio.sleep(0.1)
        nursery.cancel_scope.cancel()
    spreads = [max(received[n]) - written[n] for n in written if len(received.get(n, [])) == watchers]
    return {
        "watchers": watchers,
        "writes": len(written),
        "complete": len(spreads),
        "p50_ms": round(1000 * statistics.median(spreads), 1) if spreads else None,
        "max_ms": round(1000 * max(spreads), 1) if spreads else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--watchers", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ketch-bench-api-") as work:
        plane = LocalControlPlane(Path(work))
        try:
            plane.start()
            rows = trio.run(bench, plane, args)
        finally:
            plane.stop()
    print(f"{'operation':26} {'ops':>7} {'ops/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'x kv p50':>9}")
    for name, row in rows.items():
        if name == "watch fan-out":
            continue
        print(
            f"{name:26} {row['ops']:>7} {row['ops_per_s']:>8} {row['p50_ms']:>8} {row['p99_ms']:>8} "
            f"{row.get('x_kv_p50', ''):>9}"
        )
    fan = rows["watch fan-out"]
    print(
        f"watch fan-out: {fan['watchers']} watchers, {fan['complete']}/{fan['writes']} writes seen by all; "
        f"write sent -> last watcher: p50 {fan['p50_ms']} ms, max {fan['max_ms']} ms"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"python": platform.python_version(), "clients": args.clients, "duration_s": args.duration, "rows": rows},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
