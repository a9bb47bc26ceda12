"""One `kubectl attach` over the channel protocol (adapter): the container's output from now on
goes out on channels 1 and 2 (one stream under a terminal), channel 0 feeds its stdin, channel 4
resizes its terminal. The session ends with a Success Status on channel 3 when the container's
output ends (Kubernetes' attach reports no exit code: `kubectl run` reads it from the pod's
status), or quietly when kubectl leaves; leaving never stops the container.

`attachment` is the kubelet's end of the container's shim (orchestrator/kubelet/runtime/attach.py):
receive() -> (channel, data) | None, and write/end/resize for exec_session.feed."""

from __future__ import annotations

import logging

import trio

from orchestrator.streaming import channels
from orchestrator.streaming.asgi import WebSocket
from orchestrator.streaming.exec_session import BROKEN, feed

log = logging.getLogger("ketch.streaming.attach")
SUCCESS = {"metadata": {}, "status": "Success"}


async def run(ws: WebSocket, attachment, options: channels.ExecOptions, protocol: str) -> None:
    try:
        with trio.CancelScope() as gone:
            async with trio.open_nursery() as session:
                session.start_soon(feed, ws, attachment, options, protocol, gone)
                while (output := await attachment.receive()) is not None:
                    channel, data = output
                    if (channel == channels.STDOUT and options.stdout) or \
                            (channel == channels.STDERR and options.stderr):
                        await ws.send(channels.frame(channel, data))
                await ws.send(channels.status_message(SUCCESS))
                await ws.close(1000)
                session.cancel_scope.cancel()
        if gone.cancelled_caught:
            log.info("event=attach_client_left")
    except* BROKEN:  # kubectl went away while output was being sent
        log.info("event=attach_client_left")
    finally:
        with trio.CancelScope(shield=True):
            await attachment.aclose()
