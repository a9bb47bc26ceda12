"""HTTP/1.1 on trio, with h11 doing the parsing: one keep-alive connection (TLS or plain TCP),
and a pool. The API client, the pod-log proxy and the benchmarks all use this one connection.

A connection is reused only when the last exchange left both sides idle; an answer with
`Connection: close` (or any exchange h11 says must close) retires it, and the pool opens a new
one, so a server that closes after every response or after errors costs a reconnect, not a crash.
"""

from __future__ import annotations

import ssl
from typing import AsyncIterator

import h11
import trio

READ_CHUNK = 65536


class ConnectionClosed(Exception):
    """The server closed the connection or broke the protocol; the request may be retried once."""


class Connection:
    def __init__(self, host: str, port: int, context: ssl.SSLContext | None) -> None:
        """context None: plain TCP (the kubelet's read-only paths, tests); otherwise TLS."""
        self.host, self.port, self.context = host, port, context
        self.stream: trio.abc.Stream | None = None
        self.h11: h11.Connection | None = None

    async def open(self) -> None:
        if self.context is None:
            self.stream = await trio.open_tcp_stream(self.host, self.port)
        else:
            self.stream = await trio.open_ssl_over_tcp_stream(self.host, self.port, ssl_context=self.context,
                                                              https_compatible=True)
        self.h11 = h11.Connection(h11.CLIENT)

    @property
    def reusable(self) -> bool:
        return self.h11 is not None and self.h11.our_state is h11.IDLE and self.h11.their_state is h11.IDLE

    async def aclose(self) -> None:
        if self.stream is not None:
            with trio.CancelScope(shield=True):
                try:
                    await self.stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass

    async def _next(self):
        while True:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError as err:  # e.g. closed by the server before it answered
                raise ConnectionClosed(f"the server broke the protocol: {err}") from None
            if event is not h11.NEED_DATA:
                if isinstance(event, h11.ConnectionClosed):
                    raise ConnectionClosed("the server closed the connection")
                return event
            try:
                data = await self.stream.receive_some(READ_CHUNK)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
                raise ConnectionClosed(str(err)) from None
            self.h11.receive_data(data)

    async def _send(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes) -> h11.Response:
        if self.h11.our_state is not h11.IDLE:
            raise ConnectionClosed("the connection cannot carry another request")
        try:
            await self.stream.send_all(self.h11.send(h11.Request(method=method, target=target, headers=headers)))
            await self.stream.send_all(self.h11.send(h11.Data(data=body)) + self.h11.send(h11.EndOfMessage()))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
            raise ConnectionClosed(str(err)) from None
        return await self._next()

    def _finish_cycle(self) -> None:
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()  # keep-alive; otherwise the states say MUST_CLOSE and it retires

    async def request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b"") \
            -> tuple[int, dict[str, str], bytes]:
        headers = [("Host", self.host), ("Content-Length", str(len(body))), *headers]
        response = await self._send(method, target, headers, body)
        chunks = []
        while not isinstance(event := await self._next(), h11.EndOfMessage):
            chunks.append(bytes(event.data))
        self._finish_cycle()
        return response.status_code, {k.decode(): v.decode() for k, v in response.headers}, b"".join(chunks)

    async def stream_response(self, method: str, target: str, headers: list[tuple[str, str]],
                     body: bytes = b"") -> AsyncIterator[h11.Response | bytes]:
        """Yields the response head first, then each piece of the body as it arrives."""
        headers = [("Host", self.host), ("Content-Length", str(len(body))), *headers]
        yield await self._send(method, target, headers, body)
        while isinstance(event := await self._next(), h11.Data):
            yield bytes(event.data)
        self._finish_cycle()

    async def stream_lines(self, target: str, headers: list[tuple[str, str]]) -> AsyncIterator[bytes | int]:
        """Yields the status code first, then each line of the body until the server ends it."""
        buffer = b""
        async for piece in self.stream_response("GET", target, headers):
            if isinstance(piece, h11.Response):
                yield piece.status_code
                continue
            buffer += piece
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                yield line
        if buffer.strip():
            yield buffer


class Pool:
    """Keep-alive connections to one server, at most `size` at once; a broken or closing one is dropped."""

    def __init__(self, host: str, port: int, context: ssl.SSLContext | None, size: int = 16) -> None:
        self.host, self.port, self.context = host, port, context
        self.idle: list[Connection] = []
        self.slots = trio.Semaphore(size)

    async def request(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes = b""):
        async with self.slots:
            fresh = not self.idle
            connection = self.idle.pop() if self.idle else await self._open()
            try:
                answer = await connection.request(method, target, headers, body)
            except ConnectionClosed:
                await connection.aclose()
                if fresh:
                    raise
                connection = await self._open()  # an idle connection the server had closed: once more
                try:
                    answer = await connection.request(method, target, headers, body)
                except BaseException:
                    await connection.aclose()
                    raise
            except BaseException:
                await connection.aclose()  # cancelled mid-request: its state is unknown
                raise
            if connection.reusable:
                self.idle.append(connection)
            else:
                await connection.aclose()
            return answer

    async def _open(self) -> Connection:
        connection = Connection(self.host, self.port, self.context)
        await connection.open()
        return connection

    async def aclose(self) -> None:
        for connection in self.idle:
            await connection.aclose()
        self.idle.clear()
