"""The API server's HTTP/1.1 writes (orchestrator/apiserver/one_write.py), on Hypercorn over
loopback: a plain response is one write, head and body together, and keep-alive still works;
a streamed response's head reaches the client before its first chunk exists."""

from __future__ import annotations

import h11
import pytest
import trio
from hypercorn.config import Config
from hypercorn.events import RawData
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer

from kvstore.local_cluster import free_port
from orchestrator.apiserver import one_write
from orchestrator.metrics import answer_lifespan


@pytest.fixture
async def server(nursery, monkeypatch):
    assert one_write.install()
    writes: list[bytes] = []
    original = TCPServer.protocol_send

    async def counting_send(self, event):
        if isinstance(event, RawData):
            writes.append(event.data)
        await original(self, event)
    monkeypatch.setattr(TCPServer, "protocol_send", counting_send)
    stream_may_go_on = trio.Event()

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            return await answer_lifespan(receive, send)
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            await stream_may_go_on.wait()
            await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        body = b"" if scope["path"] == "/empty" else b'{"kind":"Status"}'
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    await nursery.start(serve, app, config)
    return port, writes, stream_may_go_on


async def exchange(stream, client: h11.Connection, path: str) -> tuple[h11.Response, bytes]:
    await stream.send_all(client.send(h11.Request(method="GET", target=path, headers=[("host", "x")])))
    await stream.send_all(client.send(h11.EndOfMessage()))
    response, body = None, b""
    while True:
        event = client.next_event()
        if event is h11.NEED_DATA:
            client.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            client.start_next_cycle()
            return response, body


async def test_a_plain_response_is_one_write_and_the_connection_stays_open(server):
    port, writes, _ = server
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    client = h11.Connection(h11.CLIENT)
    for path, expected in (("/object", b'{"kind":"Status"}'), ("/empty", b""), ("/object", b'{"kind":"Status"}')):
        writes.clear()
        with trio.fail_after(5):
            response, body = await exchange(stream, client, path)
        assert (response.status_code, body) == (200, expected)
        assert len(writes) == 1, f"{path}: {len(writes)} writes"
        assert writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(expected)
    await stream.aclose()


async def test_a_streamed_response_sends_its_head_before_any_chunk(server):
    port, writes, stream_may_go_on = server
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    client = h11.Connection(h11.CLIENT)
    await stream.send_all(client.send(h11.Request(method="GET", target="/stream", headers=[("host", "x")])))
    await stream.send_all(client.send(h11.EndOfMessage()))
    with trio.fail_after(5):
        event = client.next_event()
        while event is h11.NEED_DATA:
            client.receive_data(await stream.receive_some(65536))
            event = client.next_event()
    assert isinstance(event, h11.Response) and event.status_code == 200  # while the app still waits
    stream_may_go_on.set()
    body = b""
    with trio.fail_after(5):
        while not isinstance(event, h11.EndOfMessage):
            event = client.next_event()
            if event is h11.NEED_DATA:
                client.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Data):
                body += event.data
    assert body == b"first\n"
    await stream.aclose()
