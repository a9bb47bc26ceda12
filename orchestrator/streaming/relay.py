"""The API server's relay to a kubelet's streaming endpoint (adapter): a WebSocket client (wsproto)
over the TLS connection the caller opened to the kubelet, offering the subprotocols kubectl
offered; then every message one side sends is sent to the other, unchanged (the channel protocol
and the SPDY tunnel both live end to end between kubectl and the kubelet), until either closes."""

from __future__ import annotations

from dataclasses import dataclass

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

from orchestrator.streaming.asgi import WebSocket

READ_CHUNK = 64 * 1024
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # as Hypercorn's limit for what kubectl sends
MAX_REFUSAL_BYTES = 64 * 1024
HANDSHAKE_TIMEOUT_S = 10.0
BROKEN = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class RelayError(Exception):
    """The kubelet broke the WebSocket protocol or went away during the handshake."""


@dataclass
class Refused:
    code: int
    body: bytes


@dataclass
class Accepted:
    subprotocol: str | None
    connection: WSConnection


async def _events(stream: trio.abc.Stream, connection: WSConnection):
    while True:
        for event in connection.events():
            yield event
        try:
            data = await stream.receive_some(READ_CHUNK)
        except BROKEN as err:
            raise RelayError(f"the kubelet's connection broke: {err}") from None
        connection.receive_data(data or None)
        if not data:
            for event in connection.events():
                yield event
            return


async def handshake(stream: trio.abc.Stream, host: str, target: str, subprotocols: list[str]) -> Accepted | Refused:
    connection = WSConnection(ConnectionType.CLIENT)
    try:
        with trio.fail_after(HANDSHAKE_TIMEOUT_S):
            await stream.send_all(connection.send(Request(host=host, target=target, subprotocols=subprotocols)))
            refused = None
            async for event in _events(stream, connection):
                if isinstance(event, AcceptConnection):
                    return Accepted(event.subprotocol, connection)
                if isinstance(event, RejectConnection):
                    refused = Refused(event.status_code, b"")
                    if not event.has_body:
                        return refused
                elif isinstance(event, RejectData) and refused is not None:
                    refused.body = (refused.body + event.data)[:MAX_REFUSAL_BYTES]
                    if event.body_finished:
                        return refused
    except trio.TooSlowError:
        raise RelayError(f"the kubelet did not answer the upgrade within {HANDSHAKE_TIMEOUT_S:.0f} s") from None
    except BROKEN as err:
        raise RelayError(f"the kubelet's connection broke: {err}") from None
    raise RelayError("the kubelet closed the connection during the upgrade")


async def splice(client: WebSocket, stream: trio.abc.Stream, accepted: Accepted) -> None:
    """Messages both ways until one side closes; then the other is closed too."""
    connection = accepted.connection

    async def to_kubelet(done: trio.CancelScope) -> None:
        while (data := await client.receive()) is not None:
            await stream.send_all(connection.send(BytesMessage(data=data)))
        await stream.send_all(connection.send(CloseConnection(code=1000)))
        done.cancel()

    async def to_client(done: trio.CancelScope) -> None:
        pending = bytearray()
        try:
            async for event in _events(stream, connection):
                if isinstance(event, Message):
                    pending += event.data.encode() if isinstance(event, TextMessage) else event.data
                    if len(pending) > MAX_MESSAGE_BYTES:
                        break
                    if event.message_finished:
                        await client.send(bytes(pending))
                        pending.clear()
                elif isinstance(event, Ping):
                    await stream.send_all(connection.send(event.response()))
                elif isinstance(event, CloseConnection):
                    break
        except (RelayError, RemoteProtocolError):
            pass
        done.cancel()

    try:
        with trio.CancelScope() as done:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(to_kubelet, done)
                nursery.start_soon(to_client, done)
    except* (*BROKEN, LocalProtocolError):
        pass  # one side went away (trio's nurseries raise groups): the other is closed below
    finally:
        await client.close(1000)
