"""An async (trio) Kubernetes API client for Ketch's components.

    async with APIClient(kubeconfig.load(path)) as api:
        pod = await api.get(PODS, "default", "web-1")
        async for event in api.watch(PODS, resource_version=rv, field_selector="spec.nodeName=n1"):
            ...

Errors from the server raise `APIStatusError` with the Status' code, reason and message. A watch
yields {"type", "object"} dicts and ends when the server ends it; `WatchExpired` (410) means
the caller must list again.
"""

from __future__ import annotations

import json
import logging
import random
from typing import Any, AsyncIterator
from urllib.parse import urlencode, urlparse

import orjson
import trio

from orchestrator.api.resources import BY_PATH, RESOURCES, Resource
from orchestrator.client.kubeconfig import ClusterAccess
from orchestrator.client.transport import Connection, ConnectionClosed, Pool

log = logging.getLogger("ketch.client")
JSON = "application/json"
# A 429 with Retry-After (the API server's --max-requests-inflight) is waited out and sent again,
# as client-go does, up to its 10 times: the server did not act on the request. Each wait is
# stretched by up to as much again at random, so that clients turned away together do not all
# come back in the same instant.
MAX_THROTTLED_RETRIES = 10
MAX_RETRY_AFTER_S = 30.0
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


def resource(plural: str, group: str = "") -> Resource:
    for r in RESOURCES:
        if r.plural == plural and r.group == group:
            return r
    raise KeyError(f"no resource {plural!r} in group {group!r}")


PODS, NODES, SERVICES = BY_PATH[("", "v1", "pods")], BY_PATH[("", "v1", "nodes")], BY_PATH[("", "v1", "services")]
EVENTS, ENDPOINTS, NAMESPACES = (BY_PATH[("", "v1", "events")], BY_PATH[("", "v1", "endpoints")],
                                 BY_PATH[("", "v1", "namespaces")])
DEPLOYMENTS, REPLICASETS = BY_PATH[("apps", "v1", "deployments")], BY_PATH[("apps", "v1", "replicasets")]
ENDPOINTSLICES = BY_PATH[("discovery.k8s.io", "v1", "endpointslices")]
LEASES = BY_PATH[("coordination.k8s.io", "v1", "leases")]
CONFIGMAPS = BY_PATH[("", "v1", "configmaps")]


def encode_json(body: Any) -> bytes:
    """A request body, through orjson; what orjson refuses (an integer over 64 bits) through json."""
    try:
        return orjson.dumps(body)
    except TypeError:
        return json.dumps(body, separators=(",", ":")).encode()

class APIStatusError(Exception):
    def __init__(self, code: int, status: dict) -> None:
        self.code = code
        self.status = status
        self.reason = status.get("reason", "")
        super().__init__(f"{code} {self.reason}: {status.get('message', '')}")


class WatchExpired(APIStatusError):
    pass


class Unreachable(Exception):
    """The API server did not answer (connection refused, reset, or timed out)."""


def path(res: Resource, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
    base = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
    if res.namespaced and namespace:
        base += f"/namespaces/{namespace}"
    base += f"/{res.plural}"
    if name:
        base += f"/{name}"
    if subresource:
        base += f"/{subresource}"
    return base


def throttled_for(code: int, headers: dict[str, str]) -> float | None:
    """Seconds to wait before sending again: a 429 that names them in Retry-After (seconds), or
    None (not throttled; a 429 without the header, such as an eviction a budget refuses, stands)."""
    if code != 429:
        return None
    try:
        seconds = float(headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(seconds, 0.1), MAX_RETRY_AFTER_S)


class APIClient:
    def __init__(self, access: ClusterAccess, *, connections: int = 16, timeout_s: float = 30.0,
                 user_agent: str = "ketch") -> None:
        url = urlparse(access.server)
        self.access = access
        self.host, self.port = url.hostname, url.port or 443
        self.context = access.ssl_context()
        self.pool = Pool(self.host, self.port, self.context, connections)
        self.timeout_s = timeout_s
        self.headers = [("Authorization", f"Bearer {access.token}"), ("Accept", JSON), ("User-Agent", user_agent)]

    async def __aenter__(self) -> APIClient:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.pool.aclose()

    async def request(self, method: str, target: str, body: Any = None, content_type: str = JSON) -> Any:
        data = b"" if body is None else encode_json(body)
        headers = self.headers + ([("Content-Type", content_type)] if body is not None else [])
        for attempt in range(MAX_THROTTLED_RETRIES + 1):
            try:
                with trio.fail_after(self.timeout_s):
                    code, answer_headers, raw = await self.pool.request(method, target, headers, data)
            except (ConnectionClosed, OSError, trio.TooSlowError) as err:
                raise Unreachable(f"{method} {target}: {err or 'timed out'}") from None
            wait_s = throttled_for(code, answer_headers)
            if wait_s is None or attempt == MAX_THROTTLED_RETRIES:
                break
            log.info("event=throttled method=%s target=%s retry_after_s=%s attempt=%d", method, target, wait_s,
                     attempt + 1)
            await trio.sleep(wait_s * random.uniform(1.0, 2.0))
        answer = orjson.loads(raw) if raw else {}
        if code >= 400:
            raise APIStatusError(code, answer if isinstance(answer, dict) else {"message": str(answer)})
        return answer

    # --- verbs ----------------------------------------------------------------------------------

    async def get(self, res: Resource, namespace: str | None, name: str) -> dict:
        return await self.request("GET", path(res, namespace, name))

    async def list(self, res: Resource, namespace: str | None = None, *, label_selector: str | None = None,
                   field_selector: str | None = None, resource_version: str | None = None) -> dict:
        query = {k: v for k, v in (("labelSelector", label_selector), ("fieldSelector", field_selector),
                                   ("resourceVersion", resource_version)) if v is not None}
        return await self.request("GET", path(res, namespace) + (f"?{urlencode(query)}" if query else ""))

    async def create(self, res: Resource, namespace: str | None, obj: dict) -> dict:
        return await self.request("POST", path(res, namespace), obj)

    async def update(self, res: Resource, obj: dict, subresource: str | None = None) -> dict:
        meta = obj["metadata"]
        return await self.request("PUT", path(res, meta.get("namespace"), meta["name"], subresource), obj)

    async def patch(self, res: Resource, namespace: str | None, name: str, patch: Any,
                    content_type: str = MERGE_PATCH, subresource: str | None = None) -> dict:
        return await self.request("PATCH", path(res, namespace, name, subresource), patch, content_type)

    async def delete(self, res: Resource, namespace: str | None, name: str, *, grace_period_s: int | None = None,
                     propagation: str | None = None, uid: str | None = None) -> dict:
        options: dict[str, Any] = {}
        if grace_period_s is not None:
            options["gracePeriodSeconds"] = grace_period_s
        if propagation:
            options["propagationPolicy"] = propagation
        if uid:
            options["preconditions"] = {"uid": uid}
        return await self.request("DELETE", path(res, namespace, name), options or None)

    async def bind(self, pod: dict, node: str) -> None:
        meta = pod["metadata"]
        await self.request("POST", path(PODS, meta["namespace"], meta["name"], "binding"), {
            "apiVersion": "v1", "kind": "Binding", "metadata": {"name": meta["name"], "uid": meta["uid"]},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node}})

    async def watch(self, res: Resource, namespace: str | None = None, *, resource_version: str | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    timeout_s: int = 300, bookmarks: bool = True) -> AsyncIterator[dict]:
        """Events until the server ends the stream (timeout_s) or the connection breaks."""
        query = {"watch": "true", "timeoutSeconds": str(timeout_s)}
        for key, value in (("resourceVersion", resource_version), ("labelSelector", label_selector),
                           ("fieldSelector", field_selector)):
            if value is not None:
                query[key] = value
        if bookmarks:
            query["allowWatchBookmarks"] = "true"
        connection = Connection(self.host, self.port, self.context)
        try:
            try:
                with trio.fail_after(self.timeout_s):
                    await connection.open()
            except (OSError, trio.TooSlowError) as err:
                raise Unreachable(f"watch {res.plural}: {err or 'timed out'}") from None
            lines = connection.stream_lines(path(res, namespace) + "?" + urlencode(query), self.headers)
            try:
                code = await lines.__anext__()
                if code != 200:
                    raise APIStatusError(code, {"message": f"watch answered {code}"})
                async for line in lines:
                    event = orjson.loads(line)  # every watcher decodes every event: orjson is ~3x json
                    if event.get("type") == "ERROR":
                        status = event.get("object") or {}
                        if status.get("code") == 410:
                            raise WatchExpired(410, status)
                        raise APIStatusError(status.get("code", 500), status)
                    yield event
            except ConnectionClosed:
                return
            finally:
                await lines.aclose()
        finally:
            await connection.aclose()
