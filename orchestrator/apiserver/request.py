"""One HTTP request to the API server: its parts, its body (bounded, JSON, YAML or the one
protobuf message kubectl insists on) and the ways to answer it, including chunked streams."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import yaml

from orchestrator.api.resources import Resource
from orchestrator.apiserver import auth, errors, jsoncodec, protobuf

MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"


def encode_line(payload: dict) -> bytes:
    return jsoncodec.dumps(payload) + b"\n"



class Request:
    """One HTTP request: its parts, its body (bounded) and the ways to answer it."""

    def __init__(self, scope, receive, send) -> None:
        self.scope, self.receive, self.send = scope, receive, send
        self.method = scope["method"]
        self.path = scope["path"]
        self.query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        self.headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.status = 0
        self.user: auth.User | None = None

    @property
    def wants_table(self) -> bool:
        return "as=Table" in self.headers.get("accept", "")

    def int_param(self, name: str, default: int) -> int:
        value = self.query.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except ValueError:
            raise errors.bad_request(f"{name} must be an integer, got {value!r}") from None

    async def body_bytes(self) -> bytes:
        """The body, at most MAX_BODY_BYTES. A larger one is read on and dropped (up to 4 times the
        limit) so the client, still sending, reads the 413 instead of a reset connection."""
        body, seen = bytearray(), 0
        while True:
            message = await self.receive()
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen <= MAX_BODY_BYTES:
                body += chunk
            if not message.get("more_body") or seen > 4 * MAX_BODY_BYTES:
                break
        if seen > MAX_BODY_BYTES:
            raise errors.too_large(MAX_BODY_BYTES)
        return bytes(body)

    async def body_object(self, allow_empty: bool = False) -> dict:
        raw = await self.body_bytes()
        if not raw.strip():
            if allow_empty:
                return {}
            raise errors.bad_request("the request has no body")
        content_type = self.headers.get("content-type", JSON)
        if "protobuf" in content_type:
            return protobuf.decode_access_review(raw)
        try:
            parsed = yaml.safe_load(raw) if "yaml" in content_type else jsoncodec.loads(raw)
        except (ValueError, yaml.YAMLError) as err:
            what = "YAML" if "yaml" in content_type else "JSON"
            raise errors.bad_request(f"the request body is not valid {what}: {str(err).splitlines()[0]}") from None
        if not isinstance(parsed, dict):
            raise errors.bad_request("the request body must be an object")
        return parsed

    async def reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        await self.send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *extra]})
        await self.send({"type": "http.response.body", "body": body})

    async def json(self, status: int, payload: Any, content_type: str = JSON) -> None:
        await self.reply(status, jsoncodec.dumps(payload), content_type)

    async def error(self, err: errors.APIError) -> None:
        if self.status:  # a stream already started: nothing more can be said
            return
        await self.reply(err.code, jsoncodec.dumps(err.status()), JSON, err.headers)

    async def start_stream(self, content_type: str) -> None:
        self.status = 200
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", content_type.encode()), (b"cache-control", b"no-cache, private")],
            }
        )

    async def stream_line(self, payload: dict) -> None:
        await self.stream_bytes(encode_line(payload))

    async def stream_bytes(self, line: bytes) -> None:
        await self.send({"type": "http.response.body", "body": line, "more_body": True})

    async def end_stream(self) -> None:
        try:
            await self.send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # the client already hung up
            pass


@dataclass
class Route:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None
