"""`pods/log`: proxied to the kubelet of the pod's node, `GET /containerLogs/<ns>/<pod>/<container>`
over HTTPS with the API server's kubelet client certificate (kubelet_client.py), as Kubernetes
does. When no kubelet answers, the client gets a clear 503, never a made-up log; a kubelet's
refusal (a container still waiting, no previous container) reaches kubectl with its message.
"""

from __future__ import annotations

from urllib.parse import urlencode

import h11

from orchestrator.api import pods
from orchestrator.apiserver import errors
from orchestrator.apiserver.kubelet_client import KubeletClient, kubelet_error
from orchestrator.client.transport import ConnectionClosed

PASSED_PARAMS = ("follow", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes", "previous")


def container_of(pod: dict, requested: str | None) -> str:
    names = [c.get("name") for c in pods.containers(pod)]
    if requested:
        if requested not in [c.get("name") for c in pods.every_container(pod)]:
            raise errors.bad_request(f'container {requested} is not valid for pod {pod["metadata"]["name"]}')
        return requested
    if len(names) != 1:
        raise errors.bad_request(f'a container name must be specified for pod {pod["metadata"]["name"]}, '
                                 f"choose one of: {names}")
    return names[0]


async def proxy_log(request, pod: dict, node: dict, kubelet: KubeletClient) -> None:
    container = container_of(pod, request.query.get("container"))
    meta = pod["metadata"]
    query = urlencode({k: request.query[k] for k in PASSED_PARAMS if k in request.query})
    target = f"/containerLogs/{meta['namespace']}/{meta['name']}/{container}" + (f"?{query}" if query else "")
    connection = await kubelet.open(node, "no logs can be fetched")
    started = False
    refusal = None
    try:
        async for piece in connection.stream_response("GET", target, [("Connection", "close")]):
            if isinstance(piece, h11.Response):
                if piece.status_code != 200:
                    refusal = (piece.status_code, b"")
                    continue
                await request.start_stream("text/plain")
                started = True
            elif refusal is not None:
                refusal = (refusal[0], refusal[1] + piece)
            else:
                await request.send({"type": "http.response.body", "body": piece, "more_body": True})
    except (ConnectionClosed, h11.ProtocolError):
        pass  # the kubelet went away mid-log: end what was sent
    finally:
        await connection.aclose()
        if started:
            await request.end_stream()
    if refusal is not None:
        raise kubelet_error(refusal[0], refusal[1], target)
