"""etcd's v3 JSON gateway, so etcd's HTTP clients and load generators work on Ketch unchanged.

An ASGI app served by kvstore.gateway_http (httptools' parser on trio; Hypercorn cost most of
a member's CPU per request here). Every request runs through the
same `KVServer.execute` as the msgpack port. Shapes follow etcd 3.4's grpc-gateway, as captured
from a real etcd 3.4.23 on this kind of machine:
- bytes fields (key, value, range_end) are base64; int64 fields are JSON strings;
- fields at their zero value are left out (proto3 JSON: no "more": false, no "lease": "0");
- errors are {"error", "message", "code"} with gRPC codes and grpc-gateway's HTTP statuses;
- /v3/watch and /v3/lease/keepalive stream {"result": ...} lines.
Auth: `Authorization: Bearer <cluster token>`. Also /healthz and /metrics (Prometheus text).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
from typing import Any

import orjson
import prometheus_client
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from kvstore import commands as c
from kvstore.errors import ErrorCode, KVError, invalid
from kvstore.server import KVServer
from kvstore.wire import MAX_FRAME_BYTES

log = logging.getLogger("ketch.kv.gateway")

ETCD_VERSION = "3.4.23"  # the etcd whose gateway this one answers like
# (gRPC code, HTTP status, etcd's message prefix) per Ketch error code
_ERRORS = {
    ErrorCode.INVALID_ARGUMENT: (3, 400, "etcdserver: "),
    ErrorCode.TOO_LARGE: (3, 400, "etcdserver: "),
    ErrorCode.COMPACTED: (11, 400, "etcdserver: mvcc: "),
    ErrorCode.FUTURE_REVISION: (11, 400, "etcdserver: mvcc: "),
    ErrorCode.LEASE_NOT_FOUND: (5, 404, "etcdserver: "),
    ErrorCode.UNAVAILABLE: (14, 503, "etcdserver: "),
    ErrorCode.NOT_LEADER: (14, 503, "etcdserver: "),
    ErrorCode.TXN_CONFLICT: (9, 409, "etcdserver: "),
    ErrorCode.UNAUTHENTICATED: (16, 401, "etcdserver: "),
}
_TARGETS = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision",
            "VALUE": "value", "LEASE": "lease"}
_RESULTS = {"EQUAL": "=", "NOT_EQUAL": "!=", "LESS": "<", "GREATER": ">"}


# --- JSON <-> commands (pure) ---------------------------------------------------------------


def _b64(body: dict, name: str) -> bytes | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(f"{name} is not valid base64") from None


def _int(body: dict, name: str, default: int = 0) -> int:
    """etcd's JSON takes int64 as a number or a decimal string."""
    value = body.get(name, default)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    raise invalid(f"{name} must be an integer")


def _flag(body: dict, name: str) -> bool:
    return bool(body.get(name, False))


def range_command(body: dict) -> dict:
    return c.range_(_b64(body, "key") or b"", _b64(body, "range_end"), limit=_int(body, "limit"),
                    revision=_int(body, "revision"), keys_only=_flag(body, "keys_only"),
                    count_only=_flag(body, "count_only"))


def put_command(body: dict) -> dict:
    return c.put(_b64(body, "key") or b"", _b64(body, "value") or b"", lease=_int(body, "lease"),
                 prev_kv=_flag(body, "prev_kv"))


def delete_command(body: dict) -> dict:
    return c.delete_range(_b64(body, "key") or b"", _b64(body, "range_end"), prev_kv=_flag(body, "prev_kv"))


def _compare(body: dict) -> dict:
    target = _TARGETS.get(body.get("target", "VERSION"))
    result = _RESULTS.get(body.get("result", "EQUAL"))
    if target is None or result is None:
        raise invalid("unknown compare target or result")
    value: Any = (_b64(body, "value") or b"") if target == "value" else _int(body, target)
    return c.compare(_b64(body, "key") or b"", target, result, value, _b64(body, "range_end"))


def _request_op(body: Any) -> dict:
    if not isinstance(body, dict):
        raise invalid("a txn request op must be an object")
    for name, build in (("request_range", range_command), ("request_put", put_command),
                        ("request_delete_range", delete_command), ("request_txn", txn_command)):
        if name in body:
            return build(body[name])
    raise invalid("unknown txn request op")


def txn_command(body: dict) -> dict:
    return c.txn([_compare(cmp) for cmp in body.get("compare", [])],
                 [_request_op(op) for op in body.get("success", [])],
                 [_request_op(op) for op in body.get("failure", [])])


def _kv_json(kv: dict) -> dict:
    out: dict[str, Any] = {"key": base64.b64encode(kv["key"]).decode()}
    for name in ("create_revision", "mod_revision", "version", "lease"):
        if kv.get(name):
            out[name] = str(kv[name])
    if kv.get("value"):
        out["value"] = base64.b64encode(kv["value"]).decode()
    return out


def range_json(result: dict) -> dict:
    out: dict[str, Any] = {}
    if result["kvs"]:
        out["kvs"] = [_kv_json(kv) for kv in result["kvs"]]
    if result.get("more"):
        out["more"] = True
    if result.get("count"):
        out["count"] = str(result["count"])
    return out


def put_json(result: dict) -> dict:
    return {"prev_kv": _kv_json(result["prev_kv"])} if "prev_kv" in result else {}


def delete_json(result: dict) -> dict:
    out: dict[str, Any] = {}
    if result.get("deleted"):
        out["deleted"] = str(result["deleted"])
    if result.get("prev_kvs"):
        out["prev_kvs"] = [_kv_json(kv) for kv in result["prev_kvs"]]
    return out


def txn_json(result: dict, revision: int) -> dict:
    responses = []
    for response in result["responses"]:
        (kind, body), = response.items()
        shape = {"response_range": range_json, "response_put": put_json,
                 "response_delete_range": delete_json}.get(kind)
        inner = txn_json(body, revision) if shape is None else shape(body)
        responses.append({kind: {"header": {"revision": str(revision)}, **inner}})
    out: dict[str, Any] = {}
    if result["succeeded"]:
        out["succeeded"] = True
    if responses:
        out["responses"] = responses
    return out


def event_json(event: dict) -> dict:
    out: dict[str, Any] = {"kv": _kv_json(event["kv"])}
    if event["type"] == "DELETE":
        out["type"] = "DELETE"  # PUT is the zero value: left out, as etcd does
    if "prev_kv" in event:
        out["prev_kv"] = _kv_json(event["prev_kv"])
    return out


def error_json(err: KVError) -> tuple[int, dict]:
    grpc_code, status, prefix = _ERRORS.get(err.code, (2, 500, "etcdserver: "))
    message = prefix + err.message
    return status, {"error": message, "message": message, "code": grpc_code}


# --- the ASGI app ---------------------------------------------------------------------------


class MemberMetrics:
    """A prometheus_client collector: the member's figures, read when scraped."""

    def __init__(self, server: KVServer) -> None:
        self.server = server

    def collect(self):
        replica = self.server.replica
        raft = replica.raft_status()
        state = replica.read_local([c.status()])[0]
        for name, documentation, value in (
                ("ketch_kv_revision", "The store's current revision.", state["revision"]),
                ("ketch_kv_keys", "Live keys.", state["keys"]),
                ("ketch_kv_db_size_bytes", "Bytes of history held.", state["db_size"]),
                ("ketch_kv_is_leader", "1 if this member leads.", int(raft["is_leader"])),
                ("ketch_kv_raft_term", "The raft term.", raft["raft_term"]),
                ("ketch_kv_raft_applied_index", "Last applied log index.", raft["raft_applied_index"]),
                ("ketch_kv_client_connections", "Open client connections.", self.server.connections)):
            yield GaugeMetricFamily(name, documentation, value=value)
        yield CounterMetricFamily("ketch_kv_journal_syncs", "fdatasync calls on the raft log.",
                                  value=raft["journal_syncs"])


class Gateway:
    def __init__(self, server: KVServer) -> None:
        self.registry = prometheus_client.CollectorRegistry(auto_describe=False)
        self.registry.register(MemberMetrics(server))
        for histogram in (server.write_hops, server.read_hops):
            self.registry.register(histogram)
        self.server = server
        self.routes = {
            "/v3/kv/range": self._range, "/v3/kv/put": self._put,
            "/v3/kv/deleterange": self._delete, "/v3/kv/txn": self._txn,
            "/v3/kv/compaction": self._compaction, "/v3/lease/grant": self._lease_grant,
            "/v3/lease/revoke": self._lease_revoke, "/v3/kv/lease/revoke": self._lease_revoke,
            "/v3/lease/timetolive": self._lease_ttl, "/v3/kv/lease/timetolive": self._lease_ttl,
            "/v3/maintenance/status": self._status,
        }

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        path = scope["path"].replace("/v3beta/", "/v3/")
        try:
            if path == "/healthz":
                healthy = self.server.replica.leader() is not None
                return await _reply(send, 200 if healthy else 503, b"ok\n" if healthy else b"no leader\n",
                                    content_type=b"text/plain")
            if path == "/metrics":
                return await _reply(send, 200, prometheus_client.generate_latest(self.registry),
                                    content_type=prometheus_client.CONTENT_TYPE_LATEST.encode())
            self._authorize(scope)
            body = await _read_json(receive)
            if path == "/v3/watch":
                return await self._watch(body, send)
            if path == "/v3/lease/keepalive":
                return await self._lease_keepalive(body, send)
            handler = self.routes.get(path)
            if handler is None:
                return await _reply_json(send, 404, {"error": "Not Found", "message": "Not Found", "code": 5})
            answer = await handler(body)
            await _reply_json(send, 200, answer)
        except KVError as err:
            status, payload = error_json(err)
            await _reply_json(send, status, payload)

    def _authorize(self, scope) -> None:
        header = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
        token = header[len("Bearer "):] if header.startswith("Bearer ") else ""
        if not any(hmac.compare_digest(token, t) for t in self.server.tokens):
            raise KVError(ErrorCode.UNAUTHENTICATED, "a valid cluster token is required (Authorization: Bearer)")

    def header(self, revision: int | None = None) -> dict:
        out = {"cluster_id": "0", "member_id": str(self.server.member_id),
               "raft_term": str(self.server.replica.raftCurrentTerm)}
        if revision:
            out["revision"] = str(revision)
        return {"header": out}

    async def _run(self, command: dict, serializable: bool = False) -> dict:
        return await self.server.execute(command, serializable)

    async def _range(self, body: dict) -> dict:
        result = await self._run(range_command(body), _flag(body, "serializable"))
        return {**self.header(result["header"]["revision"]), **range_json(result)}

    async def _put(self, body: dict) -> dict:
        result = await self._run(put_command(body))
        return {**self.header(result["header"]["revision"]), **put_json(result)}

    async def _delete(self, body: dict) -> dict:
        result = await self._run(delete_command(body))
        return {**self.header(result["header"]["revision"]), **delete_json(result)}

    async def _txn(self, body: dict) -> dict:
        result = await self._run(txn_command(body))
        revision = result["header"]["revision"]
        return {**self.header(revision), **txn_json(result, revision)}

    async def _compaction(self, body: dict) -> dict:
        result = await self._run(c.compact(_int(body, "revision")))
        return self.header(result["header"]["revision"])

    async def _lease_grant(self, body: dict) -> dict:
        result = await self._run(c.lease_grant(_int(body, "TTL"), lease_id=_int(body, "ID")))
        return {**self.header(result["header"]["revision"]), "ID": str(result["id"]), "TTL": str(result["ttl"])}

    async def _lease_revoke(self, body: dict) -> dict:
        result = await self._run(c.lease_revoke(_int(body, "ID")))
        return self.header(result["header"]["revision"])

    async def _lease_ttl(self, body: dict) -> dict:
        result = await self._run(c.lease_time_to_live(_int(body, "ID"), keys=_flag(body, "keys")))
        out = {**self.header(result["header"]["revision"]), "ID": str(result["id"]), "TTL": str(result["ttl"])}
        if result.get("granted_ttl"):
            out["grantedTTL"] = str(result["granted_ttl"])
        if result.get("keys"):
            out["keys"] = [base64.b64encode(k).decode() for k in result["keys"]]
        return out

    async def _status(self, body: dict) -> dict:
        state = self.server.replica.read_local([c.status()])[0]
        raft = self.server.replica.raft_status()
        return {**self.header(state["revision"]), "version": ETCD_VERSION, "dbSize": str(state["db_size"]),
                "leader": str(self.server.member_id if raft["is_leader"] else 0),
                "raftIndex": str(raft["raft_index"]), "raftTerm": str(raft["raft_term"]),
                "raftAppliedIndex": str(raft["raft_applied_index"]), "dbSizeInUse": str(state["db_size"])}

    async def _lease_keepalive(self, body: dict, send) -> None:
        result = await self._run(c.lease_keepalive(_int(body, "ID")))
        await _start_stream(send)
        line = {"result": {**self.header(self.server.replica.revision), "ID": str(result["id"]),
                           "TTL": str(result["ttl"])}}
        await send({"type": "http.response.body", "body": orjson.dumps(line) + b"\n", "more_body": False})

    async def _watch(self, body: dict, send) -> None:
        create = body.get("create_request")
        if not isinstance(create, dict):
            raise invalid("a watch needs create_request")
        spec = {"key": _b64(create, "key") or b"", "range_end": _b64(create, "range_end"),
                "start_revision": _int(create, "start_revision"), "prev_kv": _flag(create, "prev_kv")}
        await _start_stream(send)

        async def line(result: dict) -> None:
            await send({"type": "http.response.body", "body": orjson.dumps({"result": result}) + b"\n",
                        "more_body": True})

        async def push(message: dict) -> None:
            if message.get("created"):
                await line({**self.header(message["revision"]), "created": True})
            elif message.get("canceled"):
                await line({**self.header(), "canceled": True,
                            "compact_revision": str(message.get("compact_revision", 0))})
            elif "events" in message:
                await line({**self.header(message["revision"]),
                            "events": [event_json(e) for e in message["events"]]})

        try:
            await self.server.run_watch(0, spec, push, {})
        finally:
            with trio.CancelScope(shield=True):
                try:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except Exception:  # the client hung up
                    pass


async def _read_json(receive) -> dict:
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > MAX_FRAME_BYTES:
            raise KVError(ErrorCode.TOO_LARGE, "request is too large")
        if not message.get("more_body"):
            break
    if not body:
        return {}
    try:
        parsed = orjson.loads(body)
    except (ValueError, UnicodeDecodeError) as err:
        raise invalid(f"malformed JSON: {err}") from None
    if not isinstance(parsed, dict):
        raise invalid("the request body must be a JSON object")
    return parsed


async def _start_stream(send) -> None:
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})


async def _reply(send, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _reply_json(send, status: int, payload: dict) -> None:
    await _reply(send, status, orjson.dumps(payload))


async def serve_gateway(server: KVServer, host: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    from kvstore.gateway_http import serve_asgi

    await serve_asgi(Gateway(server), host, port, max_body_bytes=2 * MAX_FRAME_BYTES,
                     task_status=task_status)  # the app answers etcd's "too large" up to twice the limit
