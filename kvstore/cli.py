"""`ketch kv ...`: serve a member, and an etcdctl-shaped client.

Exit status: 0 ok, 1 the operation failed (the reason on stderr), 2 usage or configuration.
Output: etcdctl's simple format by default (key and value on their own lines); `-w json` prints
the member's answer as JSON with keys and values in base64, as etcdctl does.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
from pathlib import Path
from typing import Any

import trio

from kvstore import commands as c
from kvstore.errors import KVError

DEFAULT_ENDPOINTS = "127.0.0.1:2379"


def add_parser(subparsers) -> None:
    kv = subparsers.add_parser("kv", help="the replicated key-value store (etcd's role)",
                               description="Serve a kv member, or talk to a kv cluster like etcdctl.")
    _client_flags(kv, argparse.Namespace(
        endpoints=os.environ.get("KETCH_KV_ENDPOINTS", DEFAULT_ENDPOINTS),
        token_file=os.environ.get("KETCH_KV_TOKEN_FILE"), write_out="simple", timeout=10.0))
    # The same flags after the subcommand too (etcdctl takes them anywhere): no defaults there,
    # so that they do not undo flags given before it.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    _client_flags(common, None)
    kv.set_defaults(func=run_kv)
    sub = kv.add_subparsers(dest="kv_command", metavar="COMMAND", required=True)
    add = sub.add_parser

    def client(name, **kw):
        """A client subcommand: it takes the client flags too."""
        return add(name, parents=[common], **kw)

    serve = add("serve", help="run one kv member")
    serve.add_argument("--name", required=True)
    serve.add_argument("--data-dir", required=True)
    serve.add_argument("--listen-client", default="127.0.0.1:2379")
    serve.add_argument("--listen-peer", default=None, help="defaults to this member's --initial-cluster address")
    serve.add_argument("--listen-gateway", default=None,
                       help="HOST:PORT for etcd's v3 JSON gateway, /healthz and /metrics (off if not given)")
    serve.add_argument("--initial-cluster", required=True, help="NAME=HOST:PORT,... of every member's peer port")
    serve.add_argument("--token-file", dest="serve_token_file", required=True,
                       help="accepted client tokens, one per line")
    serve.add_argument("--peer-secret-file", required=True, help="the members' shared secret (mode 0600)")
    serve.add_argument("--unsafe-local-reads", action="store_true",
                       help="TEACHING SWITCH: serve every read from local state (stale under partitions), "
                            "to show that ketch chaos catches non-linearizable reads")

    up = add("up", help="run a local cluster on loopback until Ctrl-C (what `make up` runs)")
    up.add_argument("--dir", default=".ketch/kv", help="data, tokens, secret and logs")
    up.add_argument("--members", type=int, default=3)
    up.add_argument("--base-port", type=int, default=2379,
                    help="member i listens on BASE+10i (client), +1 (peer) and +3 (gateway)")

    secret = add("secret", help="peer secrets")
    secret.add_argument("action", choices=["new"])
    secret.add_argument("path")

    put = client("put", help="put KEY VALUE")
    put.add_argument("key")
    put.add_argument("value")
    put.add_argument("--lease", type=lambda s: int(s, 16), default=0, help="lease id (hex)")
    put.add_argument("--prev-kv", action="store_true")

    get = client("get", help="get KEY [RANGE_END]")
    get.add_argument("key")
    get.add_argument("range_end", nargs="?")
    get.add_argument("--prefix", action="store_true")
    get.add_argument("--from-key", action="store_true")
    get.add_argument("--limit", type=int, default=0)
    get.add_argument("--rev", type=int, default=0)
    get.add_argument("--keys-only", action="store_true")
    get.add_argument("--count-only", action="store_true")
    get.add_argument("--consistency", choices=["l", "s"], default="l")

    delete = client("del", help="del KEY [RANGE_END]")
    delete.add_argument("key")
    delete.add_argument("range_end", nargs="?")
    delete.add_argument("--prefix", action="store_true")
    delete.add_argument("--prev-kv", action="store_true")

    txn = client("txn", help="a transaction from a JSON file or stdin: "
                                     '{"compare": [...], "success": [...], "failure": [...]}')
    txn.add_argument("file", nargs="?", default="-")

    compact = client("compact", help="compact REVISION")
    compact.add_argument("revision", type=int)

    watch = client("watch", help="watch KEY [RANGE_END]")
    watch.add_argument("key")
    watch.add_argument("range_end", nargs="?")
    watch.add_argument("--prefix", action="store_true")
    watch.add_argument("--rev", type=int, default=0)
    watch.add_argument("--prev-kv", action="store_true")
    watch.add_argument("--count", type=int, default=0, help="stop after this many events (0 = never)")

    lease = client("lease", help="grant TTL | revoke ID | keepalive ID | ttl ID")
    lease.add_argument("action", choices=["grant", "revoke", "keepalive", "ttl"])
    lease.add_argument("arg")
    lease.add_argument("--keys", action="store_true")
    lease.add_argument("--once", action="store_true", help="keepalive: one renewal, then exit")

    member = client("member", help="list | add PEER | remove PEER")
    member.add_argument("action", choices=["list", "add", "remove"])
    member.add_argument("peer", nargs="?")

    client("status", help="the answering member's status")


def _client_flags(parser: argparse.ArgumentParser, defaults: argparse.Namespace | None) -> None:
    def default(name):
        return {} if defaults is None else {"default": getattr(defaults, name)}
    parser.add_argument("--endpoints", help="comma-separated HOST:PORT client endpoints "
                        "(env KETCH_KV_ENDPOINTS)", **default("endpoints"))
    parser.add_argument("--token-file", help="file whose first line is the cluster token "
                        "(env KETCH_KV_TOKEN_FILE)", **default("token_file"))
    parser.add_argument("-w", "--write-out", choices=["simple", "json"], **default("write_out"))
    parser.add_argument("--timeout", type=float, help="seconds before giving up", **default("timeout"))


def run_kv(args: argparse.Namespace) -> int:
    from kvstore.member import ConfigError, new_secret_file, serve

    if args.kv_command == "serve":
        args.token_file = args.serve_token_file
        return serve(args)
    if args.kv_command == "up":
        return run_local_cluster(args)
    if args.kv_command == "secret":
        try:
            new_secret_file(Path(args.path))
        except (ConfigError, OSError) as err:
            print(f"ketch kv secret: {err}", file=sys.stderr)
            return 2
        print(f"wrote a new peer secret to {args.path}")
        return 0
    token = _token(args)
    if token is None:
        return 2
    try:
        return trio.run(_client_command, args, token)
    except KVError as err:
        print(
            f"Error: {err.code}: {err.message}" + (" (the outcome is unknown)" if err.details.get("ambiguous") else ""),
            file=sys.stderr,
        )
        return 1
    except KeyboardInterrupt:
        return 0


def run_local_cluster(args) -> int:
    import signal
    import time

    from kvstore.local_cluster import LocalCluster

    if not 1 <= args.members <= 9:
        print("ketch kv up: --members must be 1 to 9", file=sys.stderr)
        return 2
    ports = [args.base_port + 10 * i for i in range(args.members)]
    cluster = LocalCluster(
        Path(args.dir),
        args.members,
        client_ports=ports,
        peer_ports=[p + 1 for p in ports],
        gateway_ports=[p + 3 for p in ports],
    )
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    try:
        cluster.start()
        cluster.wait_ready()
        endpoints = ",".join(cluster.endpoints)
        print(f"Ketch kv: {args.members} members on loopback, data and logs in {args.dir}/")
        print(f"  endpoints: {endpoints}")
        print(f"  etcd v3 JSON gateways: {','.join(cluster.gateways)} (Authorization: Bearer <token>)")
        print("Try, in another shell:")
        print(f"  export KETCH_KV_ENDPOINTS={endpoints} KETCH_KV_TOKEN_FILE={cluster.token_file}")
        print("  .venv/bin/ketch kv put greeting hello")
        print("  .venv/bin/ketch kv get greeting -w json")
        print("  .venv/bin/ketch kv watch --prefix greet")
        print("Ctrl-C stops the cluster.", flush=True)
        while not stop:
            for node in cluster.nodes:
                if not node.running():
                    print(f"{node.name} exited (see {node.log_path}); stopping", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    except (RuntimeError, TimeoutError) as err:
        print(f"ketch kv up: {err}", file=sys.stderr)
        return 1
    finally:
        cluster.stop()
        print("stopped every member", flush=True)
    return 0


def _token(args) -> str | None:
    path = args.token_file
    if not path:
        print("ketch kv: --token-file (or KETCH_KV_TOKEN_FILE) is required", file=sys.stderr)
        return None
    try:
        lines = [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        print(f"ketch kv: cannot read {path}: {err.strerror}", file=sys.stderr)
        return None
    if not lines:
        print(f"ketch kv: {path} holds no token", file=sys.stderr)
        return None
    return lines[0]


def _interval(key: bytes, range_end: str | None, prefix: bool, from_key: bool = False) -> bytes | None:
    if prefix:
        return c.prefix_end(key)
    if from_key:
        return b"\0"
    return range_end.encode() if range_end else None


async def _client_command(args, token: str) -> int:
    from kvstore.client import KVClient

    async with KVClient(args.endpoints.split(","), token, timeout_s=args.timeout) as kv:
        command = args.kv_command
        if command == "put":
            result = await kv.put(args.key.encode(), args.value.encode(), lease=args.lease, prev_kv=args.prev_kv)
            return _print(args, result, "OK")
        if command == "get":
            key = args.key.encode()
            result = await kv.range(
                key,
                _interval(key, args.range_end, args.prefix, args.from_key),
                limit=args.limit,
                revision=args.rev,
                keys_only=args.keys_only,
                count_only=args.count_only,
                serializable=args.consistency == "s",
            )
            if args.write_out == "json":
                return _print(args, result, "")
            if args.count_only:
                print(result["count"])
            for kv_ in result["kvs"]:
                print(_text(kv_["key"]))
                if not args.keys_only:
                    print(_text(kv_["value"]))
            return 0
        if command == "del":
            key = args.key.encode()
            result = await kv.delete_range(key, _interval(key, args.range_end, args.prefix), prev_kv=args.prev_kv)
            return _print(args, result, str(result["deleted"]))
        if command == "txn":
            raw = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
            body = _bytes_from_json(json.loads(raw))
            result = await kv.command(c.txn(body.get("compare", []), body.get("success", []), body.get("failure", [])))
            return _print(args, result, "SUCCESS" if result["succeeded"] else "FAILURE")
        if command == "compact":
            result = await kv.compact(args.revision)
            return _print(args, result, f"compacted revision {args.revision}")
        if command == "watch":
            return await _watch(kv, args)
        if command == "lease":
            return await _lease(kv, args)
        if command == "member":
            if args.action == "list":
                result = await kv.member_list()
                return _print(
                    args,
                    result,
                    "\n".join(f"{m}{' (leader)' if m == result['leader'] else ''}" for m in result["members"]),
                )
            if not args.peer:
                print(f"ketch kv member {args.action}: PEER (HOST:PORT) is required", file=sys.stderr)
                return 2
            change = kv.member_add if args.action == "add" else kv.member_remove
            return _print(args, await change(args.peer), f"member {args.action} {args.peer}: OK")
        if command == "status":
            result = await kv.status()
            return _print(args, result, "\n".join(f"{k}: {v}" for k, v in sorted(result.items()) if k != "header"))
    return 2


async def _watch(kv, args) -> int:
    key = args.key.encode()
    seen = 0
    async with kv.watch(
        key, _interval(key, args.range_end, args.prefix), start_revision=args.rev, prev_kv=args.prev_kv
    ) as groups:
        async for group in groups:
            for event in group["events"]:
                if args.write_out == "json":
                    print(json.dumps(_json_ready({"revision": group["revision"], **event})), flush=True)
                else:
                    print(event["type"], _text(event["kv"]["key"]), _text(event["kv"]["value"]), sep="\n", flush=True)
                seen += 1
                if args.count and seen >= args.count:
                    return 0
    return 0


async def _lease(kv, args) -> int:
    if args.action == "grant":
        result = await kv.lease_grant(int(args.arg))
        return _print(args, result, f"lease {result['id']:x} granted with TTL({result['ttl']}s)")
    lease_id = int(args.arg, 16)
    if args.action == "revoke":
        return _print(args, await kv.lease_revoke(lease_id), f"lease {lease_id:x} revoked")
    if args.action == "ttl":
        result = await kv.lease_time_to_live(lease_id, keys=args.keys)
        if result["ttl"] == -1:
            return _print(args, result, f"lease {lease_id:x} already expired")
        text = f"lease {lease_id:x} granted with TTL({result['granted_ttl']}s), remaining({result['ttl']}s)"
        if args.keys:
            text += ", attached keys(" + ", ".join(_text(k) for k in result.get("keys", [])) + ")"
        return _print(args, result, text)
    while True:  # keepalive
        result = await kv.lease_keepalive(lease_id)
        _print(args, result, f"lease {lease_id:x} keepalived with TTL({result['ttl']})")
        if args.once:
            return 0
        await trio.sleep(max(result["ttl"] / 3, 0.5))


def _print(args, result: dict, simple: str) -> int:
    if args.write_out == "json":
        print(json.dumps(_json_ready(result)))
    elif simple:
        print(simple)
    return 0


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="backslashreplace")


def _json_ready(value: Any) -> Any:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_ready(v) for v in value]
    return value


_BYTES_FIELDS = {"key", "range_end", "value"}


def _bytes_from_json(value: Any, field: str | None = None) -> Any:
    """A txn in JSON: keys, range ends and values are text (utf-8); numbers stay numbers."""
    if isinstance(value, dict):
        return {k: _bytes_from_json(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_bytes_from_json(v) for v in value]
    if field in _BYTES_FIELDS and isinstance(value, str):
        return value.encode()
    return value
