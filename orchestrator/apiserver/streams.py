"""`pods/exec`, `pods/attach`, `pods/portforward`: relayed to the kubelet of the pod's node over
HTTPS with the API server's kubelet client certificate (kubelet_client.py), as Kubernetes does.

kubectl 1.30+ asks with a WebSocket upgrade (GET); the relay offers the kubelet the same
subprotocols and, once the kubelet accepts, passes messages both ways (orchestrator/streaming/
relay.py). Everything that can fail before the upgrade answers with a Status instead of it: pod
not found, not scheduled, container not valid, kubelet unreachable, or the kubelet's own refusal.
kubectl answers a refused WebSocket by retrying with SPDY/3.1 (POST); that request gets the
kubelet's answer to a plain request for the same target: the reason the container cannot be
reached if there is one (the pod's status may not show yet that it ended), else a 400 naming
the protocols served.
"""

from __future__ import annotations

from orchestrator.api.resources import BY_PATH
from orchestrator.apiserver import errors
from orchestrator.apiserver.kubelet_client import KubeletClient, kubelet_error
from orchestrator.apiserver.logs import container_of
from orchestrator.apiserver.request import Request, Route
from orchestrator.apiserver.storage import Store
from orchestrator.streaming import channels, relay
from orchestrator.streaming.asgi import WebSocket

STREAM_SUBRESOURCES = ("exec", "attach", "portforward")
NODES = BY_PATH[("", "v1", "nodes")]


class WebSocketRequest(Request):
    """A WebSocket upgrade seen as a GET: answers before the upgrade go out as HTTP responses."""

    def __init__(self, ws: WebSocket) -> None:
        super().__init__({**ws.scope, "method": "GET"}, ws.asgi_receive, ws.asgi_send)
        self.websocket = ws

    async def reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        if "websocket.http.response" not in (self.scope.get("extensions") or {}):
            return await self.websocket.close(1008)
        await self.send({"type": "websocket.http.response.start", "status": status, "headers": [
            (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *extra]})
        await self.send({"type": "websocket.http.response.body", "body": body})
        self.websocket.closed = True  # answered over HTTP: there is no WebSocket to close

    async def start_stream(self, content_type: str) -> None:
        raise errors.bad_request("over WebSocket this server serves pods/exec, pods/attach and pods/portforward only")


def _kubelet_target(route: Route, pod: dict, request: Request) -> str:
    namespace, name = route.namespace, route.name
    if route.subresource == "portforward":
        return f"/portForward/{namespace}/{name}"
    container = container_of(pod, request.query.get("container"))
    query = request.scope.get("query_string", b"").decode()
    return f"/{route.subresource}/{namespace}/{name}/{container}" + (f"?{query}" if query else "")


async def serve(request: Request, route: Route, store: Store, kubelet: KubeletClient) -> None:
    pod = await store.get(route.resource, route.namespace, route.name)
    node_name = (pod.get("spec") or {}).get("nodeName")
    if not node_name:
        raise errors.bad_request(f'pod "{route.name}" does not have a host assigned')
    target = _kubelet_target(route, pod, request)
    node = await store.get(NODES, None, node_name)
    if not isinstance(request, WebSocketRequest):
        await kubelet.get_json(node, target)  # raises the kubelet's refusal (it never answers 200 here)
        kind = "portForward" if route.subresource == "portforward" else route.subresource
        raise errors.bad_request(channels.websocket_only(kind))
    connection = await kubelet.open(node, f"cannot reach pod {route.name}")
    try:
        try:
            outcome = await relay.handshake(connection.stream, connection.host, target, request.websocket.offered)
        except relay.RelayError as err:
            raise errors.unavailable(f'the kubelet of node "{node_name}": {err}') from None
        if isinstance(outcome, relay.Refused):
            raise kubelet_error(outcome.code, outcome.body, target)
        request.status = 101
        await request.websocket.accept(outcome.subprotocol)
        await relay.splice(request.websocket, connection.stream, outcome)
    finally:
        await connection.aclose()
