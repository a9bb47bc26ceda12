"""One `kubectl exec` over the channel protocol (adapter): the process's stdout and stderr go out
on channels 1 and 2, channel 0 feeds its stdin, channel 4 resizes its terminal, and when it exits
its code goes out as a Status on channel 3 before the WebSocket closes (kubectl exits with it)."""

from __future__ import annotations

import logging
import os

import trio

from orchestrator.streaming import channels
from orchestrator.streaming.asgi import WebSocket

log = logging.getLogger("ketch.streaming.exec")
READ_CHUNK = 32 * 1024
OUTPUT_GRACE_S = 2.0  # output still buffered when the process exits drains this long (a child may hold it open)
BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


def _stream(fd: int | None) -> trio.lowlevel.FdStream | None:
    return trio.lowlevel.FdStream(fd) if fd is not None else None


async def _pump(ws: WebSocket, channel: int, source: trio.lowlevel.FdStream, forward: bool) -> None:
    """One output of the process to its channel (or drained, when kubectl did not ask for it, so the
    process never blocks on a full pipe). A terminal's EIO after the process ends is its EOF."""
    while True:
        try:
            data = await source.receive_some(READ_CHUNK)
        except BROKEN:
            return
        if not data:
            return
        if forward:
            await ws.send(channels.frame(channel, data))


async def _feed(ws: WebSocket, process, stdin: trio.lowlevel.FdStream | None, options: channels.ExecOptions,
                protocol: str, gone: trio.CancelScope) -> None:
    """kubectl's messages: stdin, resizes, the v5 close of stdin. Ends the session when kubectl leaves."""
    while (message := await ws.receive()) is not None:
        try:
            event = channels.parse(message, protocol)
        except channels.ChannelError as err:
            log.info("event=bad_message error=%s", err)
            continue
        if isinstance(event, channels.Resize):
            if options.tty and event.width and event.height:
                process.resize(event.width, event.height)
        elif isinstance(event, channels.Close):
            if event.channel == channels.STDIN and stdin is not None and not options.tty:
                await stdin.aclose()  # the process reads EOF (echo hi | kubectl exec -i ... -- cat)
        elif stdin is not None and event.payload:
            try:
                await stdin.send_all(event.payload)
            except BROKEN:
                stdin = None  # the process closed its stdin or ended; further input has nowhere to go
    gone.cancel()


async def run(ws: WebSocket, process, options: channels.ExecOptions, protocol: str) -> None:
    stdin = _stream(process.stdin) if options.stdin else None
    if process.stdin is not None and stdin is None:
        os.close(process.stdin)
    outputs = [(channels.STDOUT, _stream(process.stdout), options.stdout),
               (channels.STDERR, _stream(process.stderr), options.stderr)]
    try:
        with trio.CancelScope() as gone:
            async with trio.open_nursery() as session:
                session.start_soon(_feed, ws, process, stdin, options, protocol, gone)
                async with trio.open_nursery() as pumps:
                    for channel, source, forward in outputs:
                        if source is not None:
                            pumps.start_soon(_pump, ws, channel, source, forward)
                    code = await trio.to_thread.run_sync(process.wait, abandon_on_cancel=True)
                    pumps.cancel_scope.deadline = trio.current_time() + OUTPUT_GRACE_S
                await ws.send(channels.status_message(channels.exit_status(code, options.command)))
                await ws.close(1000)
                session.cancel_scope.cancel()
        if gone.cancelled_caught:
            log.info("event=exec_client_left command=%s", options.command[:1])
    except* BROKEN:  # trio's nurseries raise groups: kubectl went away while output was being sent
        log.info("event=exec_client_left command=%s", options.command[:1])
    finally:
        with trio.CancelScope(shield=True):
            for source in [stdin] + [s for _, s, _ in outputs]:
                if source is not None:
                    await source.aclose()
