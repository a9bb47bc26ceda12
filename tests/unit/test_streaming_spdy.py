"""SPDY/3.1 framing and the port-forward session: frames round-trip through two codecs (the
stateful header compression included), partial input waits for the rest, bad input is a typed
error; a session pairs kubectl's data and error streams and answers as the kubelet does."""

import zlib

import pytest

from orchestrator.streaming import portforward, spdy
from orchestrator.streaming.portforward import Ended, GoneAway, Open, Received, Reset

FRAMES = [
    spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}, fin=False, priority=2),
    spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}, fin=True, unidirectional=True),
    spdy.SynReply(1, {}),
    spdy.SynReply(3, {"status": "200"}, fin=True),
    spdy.Data(3, b"GET / HTTP/1.0\r\n\r\n"),
    spdy.Data(3, b"", fin=True),
    spdy.RstStream(5, spdy.CANCEL),
    spdy.Ping(7),
    spdy.GoAway(9, 0),
    spdy.Other(spdy.SETTINGS, 0, b"\x00\x00\x00\x00"),
    spdy.Other(spdy.WINDOW_UPDATE, 0, b"\x00\x00\x00\x03\x00\x01\x00\x00"),
]


def test_every_frame_round_trips_and_header_compression_stays_in_step():
    sender, receiver = spdy.Codec(), spdy.Codec()
    wire = b"".join(sender.encode(f) for f in FRAMES)
    assert receiver.feed(wire) == FRAMES


def test_input_split_anywhere_gives_the_same_frames():
    sender, receiver = spdy.Codec(), spdy.Codec()
    wire = b"".join(sender.encode(f) for f in FRAMES)
    got = []
    for i in range(len(wire)):
        got += receiver.feed(wire[i:i + 1])
    assert got == FRAMES


def test_header_blocks_use_the_spdy3_dictionary():
    assert len(spdy.DICTIONARY) == 1423  # the SPDY/3 draft's dictionary size
    # its Adler-32, which every header block's zlib header carries and kubectl's library checks
    assert zlib.adler32(spdy.DICTIONARY) == 0xE3C6A7C2
    assert spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options") and spdy.DICTIONARY.endswith(b",enq=0.")
    compressed = spdy.Codec().encode(spdy.SynReply(1, {"a": "b"}))[12:]
    assert compressed[1] & 0x20  # FDICT: the reader must prime with the dictionary
    assert int.from_bytes(compressed[2:6], "big") == zlib.adler32(spdy.DICTIONARY)


@pytest.mark.parametrize("wire, why", [
    (b"\x80\x02\x00\x01\x00\x00\x00\x00", "version 2"),
    (b"\x80\x03\x00\x03\x00\x00\x00\x02\x00\x00", "RST_STREAM frame needs at least 8"),
    (b"\x80\x03\x00\x01\x00\x00\x00\x0e" + b"\x00" * 10 + b"\xff\xff\xff\xff", "does not decompress"),
    (b"\x80\x03\x00\x01\x00\x00\x00\x0a" + b"\x00" * 10, "ends inside a field"),
    (b"\x80\x03\x00\x06\x00\xff\xff\xff", "over this side's limit"),
])
def test_bad_frames_are_typed_errors(wire, why):
    codec = spdy.Codec()
    with pytest.raises(spdy.SpdyError, match=why):
        codec.feed(wire + b"\x00" * 16)


def test_header_names_must_be_lower_case():
    block = spdy.encode_header_block({"x": "y"}).replace(b"x", b"X")
    with pytest.raises(spdy.SpdyError, match="lower case"):
        spdy.decode_header_block(block)


class Kubectl:
    """The client's side of a session, driven by a codec of its own."""

    def __init__(self):
        self.codec, self.session = spdy.Codec(), portforward.Session()

    def send(self, *frames):
        reply, events = self.session.receive(b"".join(self.codec.encode(f) for f in frames))
        return self.codec.feed(reply), events

    def read(self, wire: bytes):
        return self.codec.feed(wire)


def open_pair(kubectl, request_id="0", port="8080", first=1):
    error = spdy.SynStream(first, {"streamtype": "error", "port": port, "requestid": request_id})
    data = spdy.SynStream(first + 2, {"streamtype": "data", "port": port, "requestid": request_id})
    replies, events = kubectl.send(error)
    assert replies == [spdy.SynReply(first, {})] and events == []  # replied at once: kubectl waits for it
    return kubectl.send(data)


def test_a_pair_opens_when_both_streams_are_there_and_bytes_flow_both_ways():
    kubectl = Kubectl()
    replies, events = open_pair(kubectl)
    assert replies == [spdy.SynReply(3, {})] and events == [Open("0", 8080)]
    _, events = kubectl.send(spdy.Data(3, b"GET /"), spdy.Data(3, b"", fin=True))
    assert events == [Received("0", b"GET /"), Ended("0")]
    assert kubectl.read(kubectl.session.send("0", b"x" * 70000)) == [
        spdy.Data(3, b"x" * 32768), spdy.Data(3, b"x" * 32768), spdy.Data(3, b"x" * 4464)]
    assert kubectl.read(kubectl.session.finish("0")) == [spdy.Data(3, b"", True), spdy.Data(1, b"", True)]
    assert kubectl.session.pairs == {} and kubectl.session.send("0", b"late") == b""


def test_a_failure_is_text_on_the_error_stream_then_both_streams_end():
    kubectl = Kubectl()
    open_pair(kubectl)
    assert kubectl.read(kubectl.session.fail("0", "connection refused")) == [
        spdy.Data(1, b"connection refused"), spdy.Data(3, b"", True), spdy.Data(1, b"", True)]


def test_a_pair_without_requestid_is_matched_by_stream_ids_as_the_kubelet_does():
    kubectl = Kubectl()
    kubectl.send(spdy.SynStream(5, {"streamtype": "error", "port": "80"}))
    _, events = kubectl.send(spdy.SynStream(7, {"streamtype": "data", "port": "80"}))
    assert events == [Open("5", 80)]


def test_an_invalid_port_fails_the_pair_and_opens_nothing():
    kubectl = Kubectl()
    replies, events = open_pair(kubectl, port="http")
    assert events == [] and replies[0] == spdy.SynReply(3, {})
    assert replies[1] == spdy.Data(1, b'invalid port "http": a port is 1 to 65535')


@pytest.mark.parametrize("headers, status", [
    ({"streamtype": "video", "port": "80", "requestid": "0"}, spdy.PROTOCOL_ERROR),
    ({"port": "80", "requestid": "0"}, spdy.PROTOCOL_ERROR),
])
def test_unknown_stream_types_are_reset(headers, status):
    replies, events = Kubectl().send(spdy.SynStream(1, headers))
    assert replies == [spdy.RstStream(1, status)] and events == []


def test_a_second_stream_of_the_same_type_is_reset():
    kubectl = Kubectl()
    open_pair(kubectl)
    replies, _ = kubectl.send(spdy.SynStream(5, {"streamtype": "data", "port": "1", "requestid": "0"}))
    assert replies == [spdy.RstStream(5, spdy.PROTOCOL_ERROR)]


def test_pairs_are_bounded():
    kubectl = Kubectl()
    for i in range(portforward.MAX_PAIRS):
        kubectl.send(spdy.SynStream(2 * i + 1, {"streamtype": "error", "port": "1", "requestid": str(i)}))
    replies, _ = kubectl.send(spdy.SynStream(999, {"streamtype": "error", "port": "1", "requestid": "x"}))
    assert replies == [spdy.RstStream(999, spdy.REFUSED_STREAM)]


def test_ping_is_echoed_reset_and_goaway_are_reported():
    kubectl = Kubectl()
    open_pair(kubectl)
    replies, events = kubectl.send(spdy.Ping(1), spdy.RstStream(3, spdy.CANCEL), spdy.GoAway(3))
    assert replies == [spdy.Ping(1)] and events == [Reset("0"), GoneAway()]


def test_garbage_ends_the_session_with_a_typed_error():
    with pytest.raises(portforward.PortForwardError):
        portforward.Session().receive(b"\x80\x07\x00\x01" + b"\x00" * 12)
