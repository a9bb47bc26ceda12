"""The client library's HTTP connection against servers that close: after every response, after an
error, and mid-response. A component must see answers or a ConnectionClosed, never h11's
"not in a reusable state" (which ended every hollow node once)."""

from __future__ import annotations

from functools import partial

import h11
import pytest
import trio

from orchestrator.client.transport import ConnectionClosed, Pool


async def serve(stream: trio.SocketStream, mode: str, served: list[int]) -> None:
    connection = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return
                connection.receive_data(data)
                continue
            if isinstance(event, h11.EndOfMessage):
                served.append(1)
                number = len(served)
                if mode == "half-answer" and number in (2, 3):  # a request and its one retry
                    await stream.send_all(connection.send(h11.Response(
                        status_code=200, headers=[("Content-Length", "100")])) + b"partial")
                    return  # closed mid-body
                status = 500 if mode == "close-after-errors" and number % 2 == 0 else 200
                close = mode == "close-always" or status == 500
                headers = [("Content-Length", "2")] + ([("Connection", "close")] if close else [])
                await stream.send_all(connection.send(h11.Response(status_code=status, headers=headers)))
                await stream.send_all(connection.send(h11.Data(data=b"ok")) + connection.send(h11.EndOfMessage()))
                if close:
                    return
                connection.start_next_cycle()
            elif isinstance(event, h11.ConnectionClosed):
                return


@pytest.mark.parametrize("mode", ["close-always", "close-after-errors"])
async def test_pool_opens_a_new_connection_whenever_the_server_closed(mode):
    served: list[int] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, lambda s: serve(s, mode, served), 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        pool = Pool("127.0.0.1", port, None, size=2)
        codes = [(await pool.request("GET", f"/lease/{i}", []))[0] for i in range(10)]
        assert len(codes) == 10 and len(served) == 10
        assert codes == ([200] * 10 if mode == "close-always" else [200, 500] * 5)
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_a_response_cut_short_is_connection_closed_and_the_next_request_works():
    served: list[int] = []
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, lambda s: serve(s, "half-answer", served), 0,
                                                    host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        pool = Pool("127.0.0.1", port, None, size=1)
        assert (await pool.request("GET", "/one", []))[0] == 200
        with pytest.raises(ConnectionClosed):
            await pool.request("GET", "/two", [])
        assert (await pool.request("GET", "/three", []))[0] == 200
        assert len(served) == 4
        await pool.aclose()
        nursery.cancel_scope.cancel()
