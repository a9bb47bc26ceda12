"""The members' peer frames (kvstore.peer_transport) over a socket pair, driven by its poller."""

from __future__ import annotations

import socket

from pysyncobj.tcp_connection import CONNECTION_STATE

from kvstore.peer_transport import EpollPoller, PeerConnection, frame_key


def connected_pair(key_a: bytes, key_b: bytes):
    poller = EpollPoller()
    left, right = socket.socketpair()
    for sock in (left, right):
        sock.setblocking(False)
    a, b = PeerConnection(poller, key_a, 5.0, left), PeerConnection(poller, key_b, 5.0, right)
    got: dict[str, list] = {"a": [], "b": [], "closed": []}
    a.setOnMessageReceivedCallback(got["a"].append)
    b.setOnMessageReceivedCallback(got["b"].append)
    a.setOnDisconnectedCallback(lambda: got["closed"].append("a"))
    b.setOnDisconnectedCallback(lambda: got["closed"].append("b"))
    for _ in range(3):
        poller.poll(0.05)
    return poller, a, b, got


def test_messages_cross_as_msgpack_in_order_once_both_hellos_arrived():
    poller, a, b, got = connected_pair(frame_key("s" * 32), frame_key("s" * 32))
    assert a.state == b.state == CONNECTION_STATE.CONNECTED
    entries = [[b"\x01cmd", 7, 2], [b"\x01cmd2", 8, 2]]
    a.send({"type": "append_entries", "entries": entries, "term": 2})
    a.send("127.0.0.1:2380")
    b.send({"type": "next_node_idx", "next_node_idx": 9, "success": True})
    for _ in range(3):
        poller.poll(0.05)
    assert got["b"] == [{"type": "append_entries", "entries": entries, "term": 2}, "127.0.0.1:2380"]
    assert got["a"] == [{"type": "next_node_idx", "next_node_idx": 9, "success": True}]
    assert got["closed"] == []


def test_a_peer_with_another_secret_is_disconnected_at_its_first_frame():
    poller, a, b, got = connected_pair(frame_key("s" * 32), frame_key("t" * 32))
    a.send({"type": "request_vote", "term": 99})
    for _ in range(3):
        poller.poll(0.05)
    assert got["b"] == [] and "b" in got["closed"]


def test_a_silent_peer_is_pinged_then_dropped_after_the_timeout():
    poller, a, b, got = connected_pair(frame_key("s" * 32), frame_key("s" * 32))
    now = a._last_read
    a.keep_alive(now + 0.5)  # quiet for a while: a ping goes out, which b reads as nothing
    poller.poll(0.05)
    assert got["b"] == [] and a.state == CONNECTION_STATE.CONNECTED
    a.keep_alive(now + 60)  # nothing read for longer than the timeout
    assert a.state == CONNECTION_STATE.DISCONNECTED and "a" in got["closed"]
