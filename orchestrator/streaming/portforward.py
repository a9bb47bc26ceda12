"""Port-forward over SPDY, the server's side (pure): pairs kubectl's streams and says what to do.

For each local connection kubectl opens two SPDY streams carrying the headers `streamtype` ("error"
or "data"), `port` and `requestid`; the pair shares the requestid (a client without one gets the
kubelet's fallback: the error stream's id, and the data stream's id minus 2). Every stream gets a
SYN_REPLY at once (kubectl waits for it before opening the next). When both streams of a pair are
there the adapter connects to the pod's port; bytes flow on the data stream; a failure is written as
text on the error stream. At the end both streams are closed with FIN: kubectl waits for the error
stream's end before it closes its local connection.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.streaming import spdy

MAX_PAIRS = 128  # open forwarded connections per session
MAX_DATA_FRAME_BYTES = 32 * 1024


class PortForwardError(ValueError):
    """The session cannot go on (a protocol error); the adapter sends the GOAWAY it got and ends."""


@dataclass(frozen=True)
class Open:
    request_id: str
    port: int


@dataclass(frozen=True)
class Received:
    request_id: str
    data: bytes


@dataclass(frozen=True)
class Ended:
    """kubectl will send no more on the data stream (its local reader hit EOF)."""
    request_id: str


@dataclass(frozen=True)
class Reset:
    request_id: str


@dataclass(frozen=True)
class GoneAway:
    pass


Event = Open | Received | Ended | Reset | GoneAway


@dataclass
class _Pair:
    port_header: str
    data_id: int | None = None
    error_id: int | None = None
    opened: bool = False


@dataclass
class Session:
    codec: spdy.Codec = field(default_factory=spdy.Codec)
    pairs: dict[str, _Pair] = field(default_factory=dict)
    streams: dict[int, str] = field(default_factory=dict)  # stream id -> request id
    last_stream_id: int = 0

    def receive(self, data: bytes) -> tuple[bytes, list[Event]]:
        """Bytes from kubectl -> (bytes to send back now, events for the adapter)."""
        out, events = [], []
        try:
            frames = self.codec.feed(data)
        except spdy.SpdyError as err:
            raise PortForwardError(str(err)) from None
        for frame in frames:
            if isinstance(frame, spdy.SynStream):
                out.append(self._syn_stream(frame, events))
            elif isinstance(frame, spdy.Data):
                request_id = self.streams.get(frame.stream_id)
                pair = self.pairs.get(request_id) if request_id is not None else None
                if pair is None or frame.stream_id != pair.data_id:
                    continue  # the error stream carries nothing from kubectl; a closed stream's late data
                if frame.data:
                    events.append(Received(request_id, frame.data))
                if frame.fin:
                    events.append(Ended(request_id))
            elif isinstance(frame, spdy.RstStream):
                request_id = self.streams.get(frame.stream_id)
                if request_id is not None and request_id in self.pairs:
                    events.append(Reset(request_id))
            elif isinstance(frame, spdy.Ping):
                out.append(self.codec.encode(frame))  # answered with the same id, as SPDY says
            elif isinstance(frame, spdy.GoAway):
                events.append(GoneAway())
        return b"".join(out), events

    def _syn_stream(self, frame: spdy.SynStream, events: list[Event]) -> bytes:
        self.last_stream_id = max(self.last_stream_id, frame.stream_id)
        kind = frame.headers.get("streamtype", "")
        if kind not in ("data", "error"):
            return self.codec.encode(spdy.RstStream(frame.stream_id, spdy.PROTOCOL_ERROR))
        request_id = frame.headers.get("requestid") or str(frame.stream_id - (2 if kind == "data" else 0))
        pair = self.pairs.get(request_id)
        if pair is None:
            if len(self.pairs) >= MAX_PAIRS:
                return self.codec.encode(spdy.RstStream(frame.stream_id, spdy.REFUSED_STREAM))
            pair = self.pairs[request_id] = _Pair(frame.headers.get("port", ""))
        if getattr(pair, f"{kind}_id") is not None:
            return self.codec.encode(spdy.RstStream(frame.stream_id, spdy.PROTOCOL_ERROR))
        setattr(pair, f"{kind}_id", frame.stream_id)
        self.streams[frame.stream_id] = request_id
        reply = self.codec.encode(spdy.SynReply(frame.stream_id))
        if pair.data_id is None or pair.error_id is None:
            return reply
        pair.opened = True
        port = _port(pair.port_header)
        if port is None:
            return reply + self.fail(request_id, f'invalid port "{pair.port_header}": a port is 1 to 65535')
        events.append(Open(request_id, port))
        return reply

    def send(self, request_id: str, data: bytes) -> bytes:
        """Bytes from the pod for kubectl, as DATA frames on the pair's data stream."""
        pair = self.pairs.get(request_id)
        if pair is None or pair.data_id is None:
            return b""
        return b"".join(self.codec.encode(spdy.Data(pair.data_id, data[i:i + MAX_DATA_FRAME_BYTES]))
                        for i in range(0, len(data), MAX_DATA_FRAME_BYTES))

    def fail(self, request_id: str, message: str) -> bytes:
        """The forward failed: the text on the error stream (kubectl prints it), then both ends."""
        pair = self.pairs.get(request_id)
        if pair is None or pair.error_id is None:
            return b""
        return self.codec.encode(spdy.Data(pair.error_id, message.encode())) + self.finish(request_id)

    def finish(self, request_id: str) -> bytes:
        """The pod's side ended: FIN on both streams; the pair is forgotten."""
        pair = self.pairs.pop(request_id, None)
        if pair is None:
            return b""
        ids = [i for i in (pair.data_id, pair.error_id) if i is not None]
        for stream_id in ids:
            self.streams.pop(stream_id, None)
        return b"".join(self.codec.encode(spdy.Data(i, b"", fin=True)) for i in ids)

    def go_away(self) -> bytes:
        return self.codec.encode(spdy.GoAway(self.last_stream_id, spdy.PROTOCOL_ERROR))


def _port(header: str) -> int | None:
    try:
        port = int(header)
    except ValueError:
        return None
    return port if 0 < port < 65536 else None
