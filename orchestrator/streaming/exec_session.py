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


class ProcessInput:
    """An exec'd process as what `feed` writes to: its stdin pipe (or terminal) and its resize."""

    def __init__(self, process, stdin: trio.lowlevel.FdStream | None, tty: bool) -> None:
        self.process, self.stdin, self.tty = process, stdin, tty

    async def write(self, data: bytes) -> None:
        if self.stdin is None:
            return
        try:
            await self.stdin.send_all(data)
        except BROKEN:
            self.stdin = None  # the process closed its stdin or ended; further input has nowhere to go

    async def end(self) -> None:
        if self.stdin is not None and not self.tty:
            await self.stdin.aclose()  # the process reads EOF (echo hi | kubectl exec -i ... -- cat)
            self.stdin = None

    async def resize(self, cols: int, rows: int) -> None:
        self.process.resize(cols, rows)


async def feed(ws: WebSocket, sink, options: channels.ExecOptions, protocol: str, gone: trio.CancelScope,
               early: list[bytes] = ()) -> None:
    """kubectl's messages to `sink` (write, end, resize): stdin, the v5 close of stdin, terminal
    resizes; first those received before the process started (`early`). Ends the session (cancels
    `gone`) when kubectl leaves. Shared by exec and attach."""
    pending = list(early)
    while (message := pending.pop(0) if pending else await ws.receive()) is not None:
        try:
            event = channels.parse(message, protocol)
        except channels.ChannelError as err:
            log.info("event=bad_message error=%s", err)
            continue
        if isinstance(event, channels.Resize):
            if options.tty and event.width and event.height:
                await sink.resize(event.width, event.height)
        elif isinstance(event, channels.Close):
            if event.channel == channels.STDIN and options.stdin:
                await sink.end()
        elif options.stdin and event.payload:
            await sink.write(event.payload)
    gone.cancel()


async def run(ws: WebSocket, process, options: channels.ExecOptions, protocol: str,
              early: list[bytes] = ()) -> None:
    stdin = _stream(process.stdin) if options.stdin else None
    if process.stdin is not None and stdin is None:
        os.close(process.stdin)
    outputs = [(channels.STDOUT, _stream(process.stdout), options.stdout),
               (channels.STDERR, _stream(process.stderr), options.stderr)]
    try:
        with trio.CancelScope() as gone:
            async with trio.open_nursery() as session:
                session.start_soon(feed, ws, ProcessInput(process, stdin, options.tty), options, protocol, gone, early)
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
