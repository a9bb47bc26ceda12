"""One `kubectl port-forward` session (adapter): SPDY/3.1 inside WebSocket binary messages
(SPDY/3.1+portforward.k8s.io). portforward.Session decides; this moves bytes between kubectl and
one TCP connection to the pod per forwarded local connection."""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

import trio

from orchestrator.streaming import portforward
from orchestrator.streaming.asgi import WebSocket

log = logging.getLogger("ketch.streaming.portforward")
READ_CHUNK = 32 * 1024
QUEUED_MESSAGES = 64  # per forwarded connection; kubectl's bytes wait here while the pod is slow
BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)

Connect = Callable[[int], Awaitable[trio.abc.Stream]]


class _Forwarder:
    def __init__(self, ws: WebSocket, connect: Connect, describe: Callable[[int, Exception], str]) -> None:
        self.ws, self.connect, self.describe = ws, connect, describe
        self.session = portforward.Session()
        self.lock = trio.Lock()  # header compression is stateful: encode and send in one order
        self.inputs: dict[str, trio.MemorySendChannel] = {}
        self.tasks: dict[str, trio.CancelScope] = {}

    async def emit(self, produce, *args) -> None:
        async with self.lock:
            data = produce(*args)
            if data:
                await self.ws.send(data)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while (message := await self.ws.receive()) is not None:
                async with self.lock:
                    try:
                        reply, events = self.session.receive(message)
                    except portforward.PortForwardError as err:
                        log.info("event=portforward_protocol_error error=%s", err)
                        await self.ws.send(self.session.go_away())
                        break
                    if reply:
                        await self.ws.send(reply)
                if any(isinstance(e, portforward.GoneAway) for e in events):
                    break
                for event in events:
                    await self.dispatch(nursery, event)
            nursery.cancel_scope.cancel()

    async def dispatch(self, nursery: trio.Nursery, event: portforward.Event) -> None:
        if isinstance(event, portforward.Open):
            sender, receiver = trio.open_memory_channel(QUEUED_MESSAGES)
            self.inputs[event.request_id] = sender
            scope = self.tasks[event.request_id] = trio.CancelScope()
            nursery.start_soon(self.forward, event.request_id, event.port, receiver, scope)
        elif isinstance(event, portforward.Received):
            sender = self.inputs.get(event.request_id)
            if sender is not None:
                try:
                    await sender.send(event.data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # that connection to the pod is over; its late bytes have nowhere to go
        elif isinstance(event, portforward.Ended):
            sender = self.inputs.pop(event.request_id, None)
            if sender is not None:
                await sender.aclose()
        elif isinstance(event, portforward.Reset):
            scope = self.tasks.get(event.request_id)
            if scope is not None:
                scope.cancel()

    async def forward(self, request_id: str, port: int, receiver: trio.MemoryReceiveChannel,
                      scope: trio.CancelScope) -> None:
        with scope, receiver:
            try:
                upstream = await self.connect(port)
            except Exception as err:  # noqa: BLE001 - any failure to reach the pod is told to kubectl
                await self.emit(self.session.fail, request_id, self.describe(port, err))
                return
            async with upstream:
                async with trio.open_nursery() as pair:
                    pair.start_soon(self._to_pod, upstream, receiver)
                    await self._from_pod(request_id, upstream)
                    pair.cancel_scope.deadline = trio.current_time() + 1.0  # let kubectl's last bytes land
        self.inputs.pop(request_id, None)
        self.tasks.pop(request_id, None)
        with trio.CancelScope(shield=True):
            try:
                await self.emit(self.session.finish, request_id)
            except BROKEN:
                pass

    @staticmethod
    async def _to_pod(upstream: trio.abc.Stream, receiver: trio.MemoryReceiveChannel) -> None:
        try:
            async for data in receiver:
                await upstream.send_all(data)
            if isinstance(upstream, trio.abc.HalfCloseableStream):
                await upstream.send_eof()  # kubectl's local client finished sending: the pod reads EOF
        except BROKEN:
            pass

    async def _from_pod(self, request_id: str, upstream: trio.abc.Stream) -> None:
        while True:
            try:
                data = await upstream.receive_some(READ_CHUNK)
            except BROKEN:
                return
            if not data:
                return
            await self.emit(self.session.send, request_id, data)


async def run(ws: WebSocket, connect: Connect, describe: Callable[[int, Exception], str]) -> None:
    try:
        await _Forwarder(ws, connect, describe).run()
    except* BROKEN:  # trio's nurseries raise groups
        log.info("event=portforward_client_left")
    finally:
        await ws.close(1000)
