"""The kubelet's streaming endpoints (adapter), mounted by orchestrator/kubelet/server.py:

    GET /exec/{namespace}/{pod}/{container}?command=..&stdin=..&stdout=..&stderr=..&tty=..
        WebSocket, v5.channel.k8s.io or v4.channel.k8s.io (exec_session.py)
    GET /attach/{namespace}/{pod}/{container}?stdin=..&stdout=..&stderr=..&tty=..
        the same protocols, to the running container's own stdio (attach_session.py)
    GET /portForward/{namespace}/{pod}               WebSocket, SPDY/3.1+portforward.k8s.io

`pod_streams` is the kubelet's seam (orchestrator/kubelet/streams.py): exec() -> ExecProcess,
attach() -> an attachment (receive, write, end, resize, aclose, tty), connect(namespace, pod, port)
-> trio stream, errors as StreamTargetError(code, reason, message).
SPDY/3.1 over a plain HTTP upgrade (kubectl 1.29 and older for exec, 1.30 and older for
port-forward, and kubectl's retry after a refused WebSocket) is answered with the reason the
container cannot be streamed to, if there is one (`confirm_running`), else a 400 Status naming
the protocols served: Hypercorn hands an app no raw connection to switch to SPDY on.
"""

from __future__ import annotations

import json
import logging

import trio

from orchestrator.streaming import attach_session, channels, exec_session, forward_session
from orchestrator.streaming.asgi import WebSocket

log = logging.getLogger("ketch.streaming.kubelet")
EXEC_KINDS = ("exec", "attach")
FIRST_SIZE_WAIT_S = 1.0


def _target(path: str) -> tuple[str, list[str]]:
    parts = path.strip("/").split("/")
    return parts[0], parts[1:]


def kubelet_app(pod_streams):
    async def app(scope, receive, send) -> None:
        kind, parts = _target(scope.get("path", ""))
        if scope["type"] == "http":
            return await _http_refusal(send, pod_streams, kind, parts)
        if scope["type"] != "websocket":
            return
        ws = WebSocket(scope, receive, send)
        if not await ws.connected():
            return
        try:
            if kind in EXEC_KINDS and len(parts) == 3 and all(parts):
                return await _exec(ws, pod_streams, kind, *parts)
            if kind == "portForward" and len(parts) == 2 and all(parts):
                return await _port_forward(ws, pod_streams, *parts)
        except channels.ChannelError as err:
            return await ws.deny(400, channels.failure_status(400, "BadRequest", str(err)))
        except Exception as err:  # a StreamTargetError from the seam, or the runtime's failure to start
            code, reason = getattr(err, "code", 500), getattr(err, "reason", "InternalError")
            if code == 500:
                log.info("event=stream_failed path=%s error=%s", scope.get("path"), err)
            return await ws.deny(code, channels.failure_status(code, reason, str(err)))
        await ws.deny(404, channels.failure_status(404, "NotFound", f"the kubelet has no {scope.get('path')}; "
                                                   "expected /exec/NS/POD/CONTAINER or /portForward/NS/POD"))
    return app


async def _http_refusal(send, pod_streams, kind: str, parts: list[str]) -> None:
    """A plain request (the API server asks on behalf of a SPDY client): why the container cannot
    be streamed to, if it cannot, else the protocols served. Nothing is started."""
    code, status = 400, channels.failure_status(400, "BadRequest", channels.websocket_only(kind))
    try:
        if kind in EXEC_KINDS and len(parts) == 3 and all(parts):
            await pod_streams.confirm_running(*parts, attaching=kind == "attach")
    except Exception as err:  # a StreamTargetError from the seam
        code = getattr(err, "code", 500)
        status = channels.failure_status(code, getattr(err, "reason", "InternalError"), str(err))
    body = json.dumps(status).encode()
    await send({"type": "http.response.start", "status": code, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _exec(ws: WebSocket, pod_streams, kind: str, namespace: str, pod: str, container: str) -> None:
    protocol = channels.choose(ws.offered, channels.EXEC_PROTOCOLS)
    if protocol is None:
        raise channels.ChannelError(channels.websocket_only(kind))
    query = ws.scope.get("query_string", b"").decode()
    options = channels.exec_options(query, attach=kind == "attach")
    if kind == "attach":
        attachment = await pod_streams.attach(namespace, pod, container, stdin=options.stdin, stdout=options.stdout,
                                              stderr=options.stderr)
        log.info("event=attach pod=%s/%s container=%s tty=%s", namespace, pod, container, attachment.tty)
        await ws.accept(protocol)
        # the terminal is the container's, whatever was asked, as the kubelet decides
        return await attach_session.run(ws, attachment, channels.with_terminal(options, attachment.tty), protocol)
    early: list[bytes] = []  # what kubectl sent before its terminal's size (input typed ahead)

    async def terminal_size() -> tuple[int, int] | None:
        """For a tty, once the container is known to be running: upgrade, then wait (at most
        FIRST_SIZE_WAIT_S) for kubectl's first resize, which it sends as the session opens. A
        process started before it arrived ran on a 0x0 terminal (`stty size` failed)."""
        await ws.accept(protocol)
        with trio.move_on_after(FIRST_SIZE_WAIT_S):
            while (message := await ws.receive()) is not None:
                try:
                    event = channels.parse(message, protocol)
                except channels.ChannelError:
                    event = None
                if isinstance(event, channels.Resize) and event.width and event.height:
                    return event.width, event.height
                early.append(message)
        return None

    try:
        process = await pod_streams.exec(namespace, pod, container, options.command, stdin=options.stdin,
                                         tty=options.tty, terminal_size=terminal_size)
    except Exception as err:
        if not ws.accepted:
            raise  # answered over HTTP instead of the upgrade
        log.info("event=exec_failed pod=%s/%s container=%s error=%s", namespace, pod, container, err)
        await ws.send(channels.status_message(channels.failure_status(getattr(err, "code", 500),
                                                                      getattr(err, "reason", "InternalError"),
                                                                      str(err))))
        return await ws.close(1000)
    log.info("event=exec pod=%s/%s container=%s command=%s tty=%s", namespace, pod, container,
             options.command[:1], options.tty)
    if not ws.accepted:
        await ws.accept(protocol)
    await exec_session.run(ws, process, options, protocol, early)


async def _port_forward(ws: WebSocket, pod_streams, namespace: str, pod: str) -> None:
    if channels.choose(ws.offered, (channels.PORT_FORWARD_TUNNEL,)) is None:
        raise channels.ChannelError(channels.websocket_only("portForward"))
    async def connect(port: int):
        return await pod_streams.connect(namespace, pod, port)

    def describe(port: int, err: Exception) -> str:
        return str(err) if getattr(err, "code", None) else f"error forwarding port {port} to pod {pod}: {err}"
    await ws.accept(channels.PORT_FORWARD_TUNNEL)
    await forward_session.run(ws, connect, describe)
