"""A WebSocket as an ASGI server (Hypercorn) hands it over, with the few calls the streaming
adapters need: accept with a subprotocol, deny with a Status before the upgrade (the
`websocket.http.response` extension, so kubectl reads the Status instead of a bare 403/500),
binary messages in and out, close."""

from __future__ import annotations

import json

import trio


class WebSocket:
    def __init__(self, scope, receive, send) -> None:
        self.scope, self.asgi_receive, self.asgi_send = scope, receive, send
        self.offered = [p.strip() for p in scope.get("subprotocols") or []]
        self.accepted = self.closed = False
        self._send_lock = trio.Lock()

    async def connected(self) -> bool:
        """Waits for the client's connect (ASGI sends it first); False when it already went away."""
        message = await self.asgi_receive()
        return message["type"] == "websocket.connect"

    async def accept(self, subprotocol: str | None) -> None:
        await self.asgi_send({"type": "websocket.accept", "subprotocol": subprotocol})
        self.accepted = True

    async def deny(self, code: int, body: dict) -> None:
        """An HTTP answer instead of the upgrade (kubectl shows the Status's message)."""
        raw = json.dumps(body).encode()
        if "websocket.http.response" not in (self.scope.get("extensions") or {}):
            return await self.close(1008)
        await self.asgi_send({"type": "websocket.http.response.start", "status": code, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode())]})
        await self.asgi_send({"type": "websocket.http.response.body", "body": raw})
        self.closed = True

    async def receive(self) -> bytes | None:
        """The next message's bytes (a text message as UTF-8), None once the client closed."""
        while True:
            message = await self.asgi_receive()
            if message["type"] == "websocket.receive":
                data = message.get("bytes")
                return data if data is not None else (message.get("text") or "").encode()
            if message["type"] == "websocket.disconnect":
                self.closed = True
                return None

    async def send(self, data: bytes) -> None:
        if self.closed:
            raise trio.ClosedResourceError("the WebSocket is closed")
        async with self._send_lock:
            await self.asgi_send({"type": "websocket.send", "bytes": data})

    async def close(self, code: int = 1000) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.asgi_send({"type": "websocket.close", "code": code})
        except Exception:  # noqa: BLE001 - the client is gone already; nothing to tell it
            pass
