"""One HTTP request to the API server: its parts, its body (bounded; decoded by bodies.py) and the
ways to answer it, including chunked streams. Warnings gathered while serving it go out as
`Warning: 299 - "text"` headers, which kubectl prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from orchestrator.api.resources import Resource
from orchestrator.api.types import Message
from orchestrator.apiserver import auth, bodies, errors, jsoncodec

MAX_BODY_BYTES = 3 * 1024 * 1024
JSON = "application/json"


MAX_WARNINGS = 50


def encode_line(payload: dict) -> bytes:
    return jsoncodec.dumps(payload) + b"\n"


def warning_header(text: str) -> str:
    """RFC 7234 warn-code 299 with a quoted text, as Kubernetes sends it. Control characters (a
    field name may hold any) become "?", so a header never breaks."""
    text = "".join("?" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text)
    return '299 - "' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        self.warnings: list[str] = []

    def warn(self, texts: list[str]) -> None:
        """Add warnings for the answer (the first MAX_WARNINGS; Kubernetes also truncates)."""
        for text in texts:
            if text not in self.warnings and len(self.warnings) < MAX_WARNINGS:
                self.warnings.append(text)

    @property
    def wants_table(self) -> bool:
        return "as=Table" in self.headers.get("accept", "")

    def table_rows_carry(self) -> str:
        """What each Table row's `object` holds (?includeObject=): Metadata (the default), the
        whole Object (kubectl asks for it to --sort-by a field), or None."""
        value = self.query.get("includeObject") or "Metadata"
        if value not in ("Metadata", "Object", "None"):
            raise errors.bad_request(f'includeObject: Unsupported value: "{value}": supported values: '
                                     '"Metadata", "None", "Object"')
        return value

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

    async def body_object(self, allow_empty: bool = False, msg: Message | None = None,
                          directive: str = "Ignore") -> dict:
        """The body as a JSON object (JSON, YAML or protobuf), field-validated against `msg` if given."""
        raw = await self.body_bytes()
        if not raw.strip() and allow_empty:
            return {}
        decoded = bodies.decode_object(raw, self.headers.get("content-type", JSON), msg, directive)
        self.warn(decoded.warnings)
        return decoded.obj

    async def reply(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
        extra += [(b"warning", warning_header(text).encode()) for text in self.warnings]
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
