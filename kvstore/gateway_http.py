"""The HTTP/1.1 server under the kv gateway's ASGI app: httptools parses, trio serves.

Why not Hypercorn (which the API server keeps): the gateway is the path every etcd-style
client and the benchmark take, and Hypercorn's per-request machinery (a task group per
request, h11's pure-Python state machine, its protocol layers) was most of a member's CPU per
put in py-spy profiles. Here llhttp (through httptools, uvicorn's parser) reads requests and a
response is one write of a status line, a few headers and the body.

What it serves, and no more: keep-alive connections; requests in order (pipelined ones too);
Content-Length or chunked request bodies up to `max_body_bytes` (413 beyond, then close);
responses with a Content-Length, or streamed with chunked encoding (watch), where the client
hanging up cancels the app; no TLS, no upgrades. Bounded: MAX_CONNECTIONS at once (accepting
waits beyond), HEADER_BYTES of head per request (431), HEADER_TIMEOUT_S for a request to
arrive once it has begun, IDLE_TIMEOUT_S between requests. Bad input gets 400 and the
connection closes; the process keeps serving.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Any

import httptools
import trio

log = logging.getLogger("ketch.kv.gateway.http")

MAX_CONNECTIONS = 1024
HEADER_BYTES = 64 * 1024
HEADER_TIMEOUT_S = 10.0
IDLE_TIMEOUT_S = 300.0
RECEIVE_BYTES = 64 * 1024
_REASONS = {200: b"OK", 400: b"Bad Request", 401: b"Unauthorized", 404: b"Not Found", 409: b"Conflict",
            413: b"Payload Too Large", 431: b"Request Header Fields Too Large", 500: b"Internal Server Error",
            503: b"Service Unavailable"}


class BadRequest(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class _Request:
    __slots__ = ("method", "url", "headers", "body", "keep_alive")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.body = bytearray()
        self.method = b""
        self.keep_alive = True


class _Parser:
    """httptools callbacks, gathering whole requests."""

    def __init__(self, max_body_bytes: int) -> None:
        self.max_body_bytes = max_body_bytes
        self.ready: deque[_Request] = deque()
        self.current: _Request | None = None
        self.head_bytes = 0
        self.http = httptools.HttpRequestParser(self)

    def feed(self, data: bytes) -> None:
        try:
            self.http.feed_data(data)
        except httptools.HttpParserUpgrade:
            raise BadRequest(400, "upgrades are not served") from None
        except httptools.HttpParserError as err:
            raise BadRequest(400, f"malformed HTTP: {err}") from None

    def on_message_begin(self) -> None:
        self.current = _Request()
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        self.current.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value))
        self.current.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.current.method = self.http.get_method()
        self.current.keep_alive = self.http.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        self.current.body += body
        if len(self.current.body) > self.max_body_bytes:
            raise BadRequest(413, "request is too large")

    def on_message_complete(self) -> None:
        self.ready.append(self.current)
        self.current = None

    def _count(self, n: int) -> None:
        self.head_bytes += n
        if self.head_bytes > HEADER_BYTES:
            raise BadRequest(431, "request head is too large")


async def serve_asgi(app, host: str, port: int, *, max_body_bytes: int,
                     task_status=trio.TASK_STATUS_IGNORED) -> None:
    listeners = await trio.open_tcp_listeners(port, host=host)
    slots = trio.Semaphore(MAX_CONNECTIONS)
    task_status.started(listeners[0].socket.getsockname()[1])
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept, app, listener, slots, max_body_bytes, nursery)


async def _accept(app, listener: trio.SocketListener, slots: trio.Semaphore, max_body_bytes: int,
                  nursery: trio.Nursery) -> None:
    async with listener:
        while True:
            await slots.acquire()
            try:
                stream = await listener.accept()
            except OSError as err:  # out of descriptors and the like: wait and go on
                slots.release()
                log.warning("event=accept_failed reason=%s", err)
                await trio.sleep(0.1)
                continue
            nursery.start_soon(_connection, app, stream, slots, max_body_bytes)


async def _connection(app, stream: trio.SocketStream, slots: trio.Semaphore, max_body_bytes: int) -> None:
    parser = _Parser(max_body_bytes)
    try:
        async with stream:
            while True:
                if not parser.ready:
                    timeout = IDLE_TIMEOUT_S if parser.current is None else HEADER_TIMEOUT_S
                    with trio.move_on_after(timeout):
                        data = await stream.receive_some(RECEIVE_BYTES)
                    if not data:  # hung up, or silent for too long
                        return
                    parser.feed(data)
                    continue
                request = parser.ready.popleft()
                if not await _respond(app, stream, parser, request):
                    return
    except BadRequest as err:
        body = (str(err) + "\n").encode()
        head = _head(err.status, [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
                     keep_alive=False)
        try:
            await stream.send_all(head + body)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass  # the client went away
    except Exception:  # a bug in one request must not end the member
        log.exception("event=gateway_connection_error")
    finally:
        slots.release()


async def _respond(app, stream: trio.SocketStream, parser: _Parser, request: _Request) -> bool:
    """Run the app for one request; False when the connection must close afterwards."""
    url = httptools.parse_url(request.url)
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": request.method.decode("latin-1"), "scheme": "http",
             "path": url.path.decode("latin-1"), "raw_path": url.path, "query_string": url.query or b"",
             "headers": request.headers}
    response = _Response(stream, request.keep_alive)
    body_sent = False

    async def receive() -> dict:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": bytes(request.body), "more_body": False}
        await response.hung_up.wait()
        return {"type": "http.disconnect"}

    async with trio.open_nursery() as nursery:
        response.nursery = nursery
        response.parser = parser
        try:
            await app(scope, receive, response.send)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            response.hung_up.set()  # the client left mid-response
        nursery.cancel_scope.cancel()  # the hang-up watcher of a streamed response, if any
    if not response.finished:
        if response.started:
            return False  # the app stopped halfway through a response: the client cannot tell
        await response.send({"type": "http.response.start", "status": 500, "headers": []})
        await response.send({"type": "http.response.body", "body": b""})
    return request.keep_alive and not response.hung_up.is_set()


class _Response:
    def __init__(self, stream: trio.SocketStream, keep_alive: bool) -> None:
        self.stream = stream
        self.keep_alive = keep_alive
        self.head = b""
        self.started = False
        self.chunked = False
        self.finished = False
        self.hung_up = trio.Event()
        self.nursery: trio.Nursery | None = None
        self.parser: _Parser | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", []))
            self.chunked = not any(name.lower() == b"content-length" for name, _ in headers)
            if self.chunked:
                headers.append((b"transfer-encoding", b"chunked"))
            self.head = _head(message["status"], headers, self.keep_alive)
            return
        if message["type"] != "http.response.body" or self.finished:
            return
        body = message.get("body", b"")
        more = message.get("more_body", False)
        if self.chunked:
            data = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + (b"" if more else b"0\r\n\r\n")
            if more and not self.started:
                self.nursery.start_soon(self._watch_hang_up)
        else:
            data = body
        self.started = True
        self.finished = not more
        if self.hung_up.is_set():
            raise trio.BrokenResourceError("the client hung up")
        await self.stream.send_all(self.head + data)
        self.head = b""

    async def _watch_hang_up(self) -> None:
        """A streamed response runs until the client hangs up: then cancel the app."""
        while True:
            try:
                data = await self.stream.receive_some(RECEIVE_BYTES)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self.hung_up.set()
                self.nursery.cancel_scope.cancel()
                return
            self.parser.feed(data)  # a pipelined next request: served after this one


def _head(status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, _REASONS.get(status, b"Status"))]
    lines += [name + b": " + value for name, value in headers]
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"
