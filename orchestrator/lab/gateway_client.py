"""A client for etcd's v3 JSON gateway (stdlib only). It speaks to a real etcd and to Ketch's
gateway alike: the comparison test and bench/kv.py drive both with this same code."""

from __future__ import annotations

import base64
import http.client
import json
from typing import Any


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class GatewayError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"HTTP {status}: {body.get('error', body)}")
        self.status = status
        self.body = body


class EtcdJSONClient:
    """One persistent HTTP/1.1 connection to one endpoint ("host:port")."""

    def __init__(self, endpoint: str, token: str | None = None, timeout_s: float = 10.0) -> None:
        host, port = endpoint.rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=timeout_s)
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = f"Bearer {token}"

    def call(self, path: str, body: dict) -> dict:
        data = json.dumps(body)
        for attempt in (1, 2):  # one reconnect if the server closed an idle connection
            try:
                self.connection.request("POST", "/v3/" + path, data, self.headers)
                response = self.connection.getresponse()
                payload = json.loads(response.read() or b"{}")
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.connection.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            raise GatewayError(response.status, payload)
        return payload

    def put(self, key: bytes, value: bytes, **kw: Any) -> dict:
        return self.call("kv/put", {"key": b64(key), "value": b64(value), **kw})

    def range(self, key: bytes, range_end: bytes | None = None, **kw: Any) -> dict:
        body = {"key": b64(key), **kw}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        return self.call("kv/range", body)

    def delete(self, key: bytes, range_end: bytes | None = None, **kw: Any) -> dict:
        body = {"key": b64(key), **kw}
        if range_end is not None:
            body["range_end"] = b64(range_end)
        return self.call("kv/deleterange", body)

    def txn(self, compare: list, success: list, failure: list = ()) -> dict:
        return self.call("kv/txn", {"compare": compare, "success": success, "failure": list(failure)})

    def cas_put(self, key: bytes, value: bytes, mod_revision: int) -> dict:
        """Kubernetes' update: put only if the key's mod_revision is still what was read."""
        return self.txn([{"key": b64(key), "target": "MOD", "result": "EQUAL", "mod_revision": mod_revision}],
                        [{"request_put": {"key": b64(key), "value": b64(value)}}],
                        [{"request_range": {"key": b64(key)}}])

    def compact(self, revision: int) -> dict:
        return self.call("kv/compaction", {"revision": revision})

    def lease_grant(self, ttl: int) -> dict:
        return self.call("lease/grant", {"TTL": ttl})

    def lease_revoke(self, lease_id: int) -> dict:
        return self.call("lease/revoke", {"ID": lease_id})

    def lease_ttl(self, lease_id: int, keys: bool = False) -> dict:
        return self.call("lease/timetolive", {"ID": lease_id, "keys": keys})

    def status(self) -> dict:
        return self.call("maintenance/status", {})

    def watch(self, key: bytes, start_revision: int, count: int, range_end: bytes | None = None) -> list[dict]:
        """Open a watch stream and read lines until `count` events arrived (or it is canceled)."""
        create = {"key": b64(key), "start_revision": start_revision}
        if range_end is not None:
            create["range_end"] = b64(range_end)
        self.connection.request("POST", "/v3/watch", json.dumps({"create_request": create}), self.headers)
        response = self.connection.getresponse()
        results, events = [], 0
        try:
            while events < count:
                line = response.readline()
                if not line:
                    break
                result = json.loads(line)["result"]
                results.append(result)
                events += len(result.get("events", []))
                if result.get("canceled"):
                    break
        finally:
            self.connection.close()  # the stream stays open server-side until we hang up
        return results
