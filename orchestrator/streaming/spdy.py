"""SPDY/3.1 framing (pure): the frames `kubectl port-forward` sends through its tunnel, as the SPDY/3
draft defines them (and moby/spdystream, kubectl's library, speaks them).

A control frame: bit 1, 15-bit version (3), 16-bit type, 8-bit flags, 24-bit length, payload.
A data frame: bit 0, 31-bit stream id, 8-bit flags, 24-bit length, payload.
Header blocks (SYN_STREAM, SYN_REPLY, HEADERS) are zlib streams, one per direction for the whole
connection, primed with the draft's dictionary and flushed (Z_SYNC_FLUSH) after each block; so a
Codec keeps state and its frames must be sent in the order they were encoded.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN, FLAG_UNIDIRECTIONAL = 0x01, 0x02
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, CANCEL = 1, 2, 3, 5  # RST_STREAM status codes
MAX_LENGTH = (1 << 24) - 1
MAX_HEADER_BLOCK_BYTES = 64 * 1024  # decompressed; a port-forward stream carries three short headers

# The SPDY/3 header dictionary: length-prefixed names and values, then a run of plain text.
_DICTIONARY_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status 200_OK version HTTP/1.1 url public set-cookie "
    "keep-alive origin").split(" ")
_DICTIONARY_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.replace("_", " ").encode()  # "200_OK" is one entry
                     for w in _DICTIONARY_WORDS) + _DICTIONARY_TAIL.encode()


class SpdyError(ValueError):
    """A frame the protocol does not allow; the session answers with GOAWAY and ends."""


Headers = dict[str, str]  # lower-case names; a value holding several is NUL-separated, as on the wire


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool = False


@dataclass(frozen=True)
class SynStream:
    stream_id: int
    headers: Headers
    fin: bool = False
    associated_id: int = 0
    priority: int = 0
    unidirectional: bool = False


@dataclass(frozen=True)
class SynReply:
    stream_id: int
    headers: Headers = field(default_factory=dict)
    fin: bool = False


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int
    status: int = 0


@dataclass(frozen=True)
class Other:
    """SETTINGS, WINDOW_UPDATE, HEADERS and unknown types: read and skipped (kubectl's library does not
    enforce flow control, and no header Ketch needs comes in HEADERS)."""
    kind: int
    flags: int
    payload: bytes


Frame = Data | SynStream | SynReply | RstStream | Ping | GoAway | Other


def encode_header_block(headers: Headers) -> bytes:
    out = [struct.pack(">I", len(headers))]
    for name, value in headers.items():
        raw_name, raw_value = name.lower().encode(), value.encode()
        out += [struct.pack(">I", len(raw_name)), raw_name, struct.pack(">I", len(raw_value)), raw_value]
    return b"".join(out)


def decode_header_block(block: bytes) -> Headers:
    def take(offset: int, size: int) -> bytes:
        if offset + size > len(block):
            raise SpdyError("a header block ends inside a field")
        return block[offset:offset + size]
    (count,), offset, headers = struct.unpack(">I", take(0, 4)), 4, {}
    for _ in range(count):
        (size,) = struct.unpack(">I", take(offset, 4))
        name = take(offset + 4, size)
        offset += 4 + size
        (size,) = struct.unpack(">I", take(offset, 4))
        value = take(offset + 4, size)
        offset += 4 + size
        if not name or name != name.lower():
            raise SpdyError(f"header names are non-empty and lower case, got {name[:40]!r}")
        headers[name.decode("latin-1")] = value.decode("latin-1")
    return headers


class Codec:
    """One side of a SPDY connection: feed() bytes in order, get frames; encode() frames to send."""

    def __init__(self, max_frame_bytes: int = 1 << 20) -> None:
        self.max_frame_bytes = max_frame_bytes
        self._buffer = bytearray()
        self._inflate = zlib.decompressobj(zdict=DICTIONARY)
        self._deflate = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8, zlib.Z_DEFAULT_STRATEGY,
                                         DICTIONARY)

    # --- reading ----------------------------------------------------------------------------------

    def feed(self, data: bytes) -> list[Frame]:
        self._buffer += data
        frames = []
        while len(self._buffer) >= 8:
            length = int.from_bytes(self._buffer[5:8], "big")
            if length > self.max_frame_bytes:
                raise SpdyError(f"a frame of {length} bytes is over this side's limit of {self.max_frame_bytes}")
            if len(self._buffer) < 8 + length:
                break
            head, payload = bytes(self._buffer[:8]), bytes(self._buffer[8:8 + length])
            del self._buffer[:8 + length]
            frames.append(self._frame(head, payload))
        return frames

    def _frame(self, head: bytes, payload: bytes) -> Frame:
        first, flags = int.from_bytes(head[:4], "big"), head[4]
        if not first & 0x80000000:
            return Data(first & 0x7FFFFFFF, payload, bool(flags & FLAG_FIN))
        version, kind = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise SpdyError(f"SPDY version {version} is not spoken here (only {VERSION})")
        if kind == SYN_STREAM:
            self._need(payload, 10, "SYN_STREAM")
            stream_id, associated = struct.unpack(">II", payload[:8])
            return SynStream(stream_id & 0x7FFFFFFF, self._headers(payload[10:]), bool(flags & FLAG_FIN),
                             associated & 0x7FFFFFFF, payload[8] >> 5, bool(flags & FLAG_UNIDIRECTIONAL))
        if kind == SYN_REPLY:
            self._need(payload, 4, "SYN_REPLY")
            return SynReply(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF, self._headers(payload[4:]),
                            bool(flags & FLAG_FIN))
        if kind == RST_STREAM:
            self._need(payload, 8, "RST_STREAM")
            stream_id, status = struct.unpack(">II", payload[:8])
            return RstStream(stream_id & 0x7FFFFFFF, status)
        if kind == PING:
            self._need(payload, 4, "PING")
            return Ping(int.from_bytes(payload[:4], "big"))
        if kind == GOAWAY:
            self._need(payload, 4, "GOAWAY")
            status = int.from_bytes(payload[4:8], "big") if len(payload) >= 8 else 0
            return GoAway(int.from_bytes(payload[:4], "big") & 0x7FFFFFFF, status)
        if kind == HEADERS:
            self._need(payload, 4, "HEADERS")
            self._headers(payload[4:])  # keeps the shared zlib stream in step
        return Other(kind, flags, payload)

    @staticmethod
    def _need(payload: bytes, size: int, what: str) -> None:
        if len(payload) < size:
            raise SpdyError(f"a {what} frame needs at least {size} bytes, got {len(payload)}")

    def _headers(self, compressed: bytes) -> Headers:
        try:
            block = self._inflate.decompress(compressed, MAX_HEADER_BLOCK_BYTES)
        except zlib.error as err:
            raise SpdyError(f"a header block does not decompress: {err}") from None
        if self._inflate.unconsumed_tail:
            raise SpdyError(f"a header block is over {MAX_HEADER_BLOCK_BYTES} bytes")
        return decode_header_block(block)

    # --- writing ----------------------------------------------------------------------------------

    def encode(self, frame: Frame) -> bytes:
        if isinstance(frame, Data):
            return self._pack(frame.stream_id & 0x7FFFFFFF, FLAG_FIN if frame.fin else 0, frame.data)
        if isinstance(frame, SynStream):
            flags = (FLAG_FIN if frame.fin else 0) | (FLAG_UNIDIRECTIONAL if frame.unidirectional else 0)
            body = struct.pack(">IIBB", frame.stream_id, frame.associated_id, (frame.priority & 7) << 5, 0)
            return self._control(SYN_STREAM, flags, body + self._compress(frame.headers))
        if isinstance(frame, SynReply):
            body = struct.pack(">I", frame.stream_id) + self._compress(frame.headers)
            return self._control(SYN_REPLY, FLAG_FIN if frame.fin else 0, body)
        if isinstance(frame, RstStream):
            return self._control(RST_STREAM, 0, struct.pack(">II", frame.stream_id, frame.status))
        if isinstance(frame, Ping):
            return self._control(PING, 0, struct.pack(">I", frame.ping_id))
        if isinstance(frame, GoAway):
            return self._control(GOAWAY, 0, struct.pack(">II", frame.last_stream_id, frame.status))
        return self._control(frame.kind, frame.flags, frame.payload)

    def _compress(self, headers: Headers) -> bytes:
        return self._deflate.compress(encode_header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def _control(self, kind: int, flags: int, payload: bytes) -> bytes:
        return self._pack(0x80000000 | (VERSION << 16) | kind, flags, payload)

    @staticmethod
    def _pack(first: int, flags: int, payload: bytes) -> bytes:
        if len(payload) > MAX_LENGTH:
            raise SpdyError(f"a frame carries at most {MAX_LENGTH} bytes")
        return struct.pack(">IB", first, flags) + len(payload).to_bytes(3, "big") + payload
