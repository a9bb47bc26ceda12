"""`pods/log`: proxied to the kubelet of the pod's node, `GET /containerLogs/<ns>/<pod>/<container>`
on the node's InternalIP and kubelet port (status.daemonEndpoints.kubeletEndpoint.Port, default
10250), as Kubernetes does. When no kubelet answers, the client gets a clear 503, never a made-up log.
"""

from __future__ import annotations

from urllib.parse import urlencode

import h11
import trio

from orchestrator.api import nodes
from orchestrator.apiserver import errors
from orchestrator.client.transport import Connection, ConnectionClosed

CONNECT_TIMEOUT_S = 3.0
PASSED_PARAMS = ("follow", "tailLines", "sinceSeconds", "timestamps", "limitBytes", "previous")


def kubelet_address(node: dict) -> tuple[str, int]:
    host = nodes.internal_ip(node)
    if not host:
        raise errors.unavailable(f'node "{node["metadata"]["name"]}" has no InternalIP: cannot reach its kubelet')
    return host, nodes.kubelet_port(node)


def container_of(pod: dict, requested: str | None) -> str:
    names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
    if requested:
        if requested not in names:
            raise errors.bad_request(f'container {requested} is not valid for pod {pod["metadata"]["name"]}')
        return requested
    if len(names) != 1:
        raise errors.bad_request(f'a container name must be specified for pod {pod["metadata"]["name"]}, '
                                 f"choose one of: {names}")
    return names[0]


async def proxy_log(request, pod: dict, node: dict) -> None:
    container = container_of(pod, request.query.get("container"))
    host, port = kubelet_address(node)
    meta = pod["metadata"]
    query = urlencode({k: request.query[k] for k in PASSED_PARAMS if k in request.query})
    target = f"/containerLogs/{meta['namespace']}/{meta['name']}/{container}" + (f"?{query}" if query else "")
    connection = Connection(host, port, None)
    try:
        with trio.fail_after(CONNECT_TIMEOUT_S):
            await connection.open()
    except (OSError, trio.TooSlowError) as err:
        raise errors.unavailable(f'the kubelet of node "{node["metadata"]["name"]}" at {host}:{port} does not '
                                 f"answer ({err or 'timed out'}): no logs can be fetched") from None
    started = False
    try:
        async for piece in connection.stream_response("GET", target, [("Connection", "close")]):
            if isinstance(piece, h11.Response):
                if piece.status_code != 200:
                    raise errors.APIError(piece.status_code, "InternalError",
                                          f"the kubelet answered {piece.status_code} for {target}")
                await request.start_stream("text/plain")
                started = True
            else:
                await request.send({"type": "http.response.body", "body": piece, "more_body": True})
    except ConnectionClosed:
        pass  # the kubelet went away mid-log: end what was sent
    finally:
        await connection.aclose()
        if started:
            await request.end_stream()
