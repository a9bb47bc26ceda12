"""Client protocol framing: 4-byte big-endian length, then one msgpack map. `FrameReader` is
sans-IO; `receive_message` drives it from a trio stream for the client and the member alike.

Messages (client -> member):
    {"type": "auth", "token": str}                       first frame on every connection
    {"id": n, "cmd": {...}, ["serializable": true]}      a kv command (see kvstore.requests)
    {"id": n, "watch": {key, [range_end], [start_revision], [prev_kv]}}
    {"id": n, "cancel_watch": watch_id}
    {"id": n, "admin": "status" | "member_list" | "member_add" | "member_remove", ...}
Messages (member -> client):
    {"type": "auth_ok", "member": name}
    {"id": n, "result": {...}} or {"id": n, "error": {code, message, ...}}
    {"id": n, "events": [...], "revision": r}             watch pushes, id = the watch's id
    {"id": n, "canceled": true, ["compact_revision": c]}  a watch ended
A frame whose length is over MAX_FRAME_BYTES, or that is not a msgpack map, ends the connection
(after an error frame with id 0): the member cannot trust where the next frame starts.
"""

from __future__ import annotations

import struct
from typing import Any

import trio

from kvstore.codec import decode, encode
from kvstore.errors import ErrorCode, KVError, invalid
from kvstore.requests import MAX_REQUEST_BYTES

# A request may carry MAX_REQUEST_BYTES of payload; the frame adds its envelope. Anything
# larger than this is refused before it is read.
MAX_FRAME_BYTES = MAX_REQUEST_BYTES + 64 * 1024
_LENGTH = struct.Struct(">I")


def frame(message: dict[str, Any]) -> bytes:
    body = encode(message)
    return _LENGTH.pack(len(body)) + body


class FrameReader:
    """Feed bytes in, take whole messages out. Raises KVError on a frame it cannot accept."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buffer = bytearray()
        self._max = max_frame_bytes

    def feed(self, data: bytes) -> None:
        self._buffer += data

    def next_message(self) -> dict[str, Any] | None:
        if len(self._buffer) < _LENGTH.size:
            return None
        (length,) = _LENGTH.unpack_from(self._buffer)
        if length > self._max:
            raise KVError(ErrorCode.TOO_LARGE, f"frame of {length} bytes is over the limit",
                          limit=self._max)
        if len(self._buffer) < _LENGTH.size + length:
            return None
        body = bytes(self._buffer[_LENGTH.size:_LENGTH.size + length])
        del self._buffer[:_LENGTH.size + length]
        message = decode(body)
        if not isinstance(message, dict):
            raise invalid("a frame must hold a msgpack map")
        return message


async def receive_message(stream: trio.abc.ReceiveStream, reader: FrameReader,
                          chunk_bytes: int = 65536) -> dict[str, Any] | None:
    """The next whole message, or None once the stream ends. Raises KVError for a bad frame."""
    while True:
        message = reader.next_message()
        if message is not None:
            return message
        try:
            data = await stream.receive_some(chunk_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return None
        if not data:
            return None
        reader.feed(data)
