"""Bad input on a member's client port: an error or a closed connection, never a dead member."""

from __future__ import annotations

import os
import struct

import pytest
import trio

from kvstore.errors import KVError
from kvstore.wire import FrameReader, frame
from tests.integration.conftest import client_for


async def send_then_listen(endpoint: str, chunks: tuple[bytes, ...]) -> tuple[bytes, bool]:
    """Send each chunk (stopping if the member hangs up), then read for 3 s at most: what came back,
    and whether the member closed the connection by then."""
    host, port = endpoint.rsplit(":", 1)
    received = b""
    async with await trio.open_tcp_stream(host, int(port)) as stream:
        for chunk in chunks:
            try:
                await stream.send_all(chunk)
            except trio.BrokenResourceError:
                break
        with trio.move_on_after(3):
            while True:
                try:
                    data = await stream.receive_some(65536)
                except trio.BrokenResourceError:
                    return received, True
                if not data:
                    return received, True
                received += data
    return received, False


async def raw_exchange(endpoint: str, *chunks: bytes, token: str | None = None) -> list[dict]:
    """Send bytes (after auth, if a token is given); the frames received until the member
    closes the connection or 3 s pass."""
    auth = (frame({"type": "auth", "token": token}),) if token is not None else ()
    received, _ = await send_then_listen(endpoint, auth + chunks)
    reader = FrameReader(max_frame_bytes=1 << 30)
    reader.feed(received)
    answers: list[dict] = []
    while (message := reader.next_message()) is not None:
        answers.append(message)
    return answers


async def still_serves(cluster) -> None:
    async with client_for(cluster, 0, timeout_s=5) as kv:
        await kv.put(b"alive", b"yes")
        assert (await kv.get(b"alive"))["value"] == b"yes"


@pytest.fixture
def cluster(ready_cluster):
    return ready_cluster


async def test_wrong_token_is_refused_with_unauthenticated(cluster):
    answers = await raw_exchange(cluster.endpoints[0], frame({"type": "auth", "token": "wrong"}))
    assert answers[-1]["error"]["code"] == "UNAUTHENTICATED"
    with pytest.raises(KVError) as info:
        async with client_for(cluster, 0) as kv:
            kv.token = "wrong"
            await kv.put(b"a", b"b")
    assert info.value.code == "UNAUTHENTICATED"
    await still_serves(cluster)


async def test_random_bytes_close_only_that_connection(cluster):
    answers = await raw_exchange(cluster.endpoints[0], os.urandom(4096), token=cluster.token)
    assert answers[0]["type"] == "auth_ok"
    assert answers[-1]["id"] == 0 and answers[-1]["error"]["code"] in ("TOO_LARGE", "INVALID_ARGUMENT")
    await still_serves(cluster)


async def test_a_100_mib_length_prefix_is_refused_before_reading_it(cluster):
    answers = await raw_exchange(cluster.endpoints[0], struct.pack(">I", 100 * 1024 * 1024) + b"x" * 100,
                                 token=cluster.token)
    assert answers[-1]["error"]["code"] == "TOO_LARGE"
    await still_serves(cluster)


async def test_a_truncated_frame_then_hang_up_leaves_the_member_serving(cluster):
    whole = frame({"id": 1, "cmd": {"op": "put", "key": b"k", "value": b"v" * 100}})
    answers = await raw_exchange(cluster.endpoints[0], whole[:30], token=cluster.token)
    assert [a for a in answers if "id" in a] == []
    await still_serves(cluster)


async def test_not_a_map_and_unknown_ops_get_errors_on_a_live_connection(cluster):
    answers = await raw_exchange(
        cluster.endpoints[0],
        frame({"id": 1, "cmd": {"op": "frobnicate"}}),
        frame({"id": 2, "cmd": "put"}),
        frame({"id": 3, "nonsense": True}),
        frame({"id": 4, "cmd": {"op": "lease_expire", "now": 1e12}}),  # leader-only, refused
        frame({"id": 5, "cmd": {"op": "put", "key": b"ok", "value": b"1"}}),
        token=cluster.token)
    by_id = {a["id"]: a for a in answers if "id" in a}
    assert [by_id[i]["error"]["code"] for i in (1, 2, 3, 4)] == ["INVALID_ARGUMENT"] * 4
    assert by_id[5]["result"]["header"]["revision"] >= 2


async def test_oversized_values_are_refused(cluster):
    async with client_for(cluster, 0) as kv:
        with pytest.raises(KVError) as info:
            await kv.put(b"big", b"x" * (1_572_864 + 1))
        assert info.value.code == "TOO_LARGE"
    answers = await raw_exchange(
        cluster.endpoints[0], frame({"id": 1, "cmd": {"op": "put", "key": b"k", "value": b"x" * (2 << 20)}}),
        token=cluster.token)
    assert answers[-1]["error"]["code"] == "TOO_LARGE"
    await still_serves(cluster)


async def test_a_silent_connection_is_closed_after_the_auth_timeout(cluster, monkeypatch):
    answers = await raw_exchange(cluster.endpoints[0])  # says nothing at all
    assert answers == [] or answers[-1]["error"]["code"] == "UNAUTHENTICATED"
    await still_serves(cluster)


class _MakesADirectory:
    """Unpickling this runs os.mkdir: what an attacker would put in a pickle."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return os.mkdir, (self.path,)


async def peer_exchange(peer: str, *chunks: bytes) -> bytes:
    """Send bytes to a member's peer port; what it answered before closing (3 s at most)."""
    received, closed = await send_then_listen(peer, chunks)
    assert closed, "the member kept the connection open after a frame it cannot trust"
    return received


async def test_a_pickle_on_the_peer_port_runs_nothing_and_the_member_keeps_serving(cluster, tmp_path):
    """pysyncobj's own wire (zlib'd pickles) would run this pickle's code; members speak
    msgpack frames with an HMAC tag and hang up on anything else, unread."""
    import pickle
    import zlib

    marker = tmp_path / "pwned"
    evil = zlib.compress(pickle.dumps(_MakesADirectory(str(marker))), 3)
    pysyncobj_frame = struct.pack("i", len(evil)) + evil
    for member in cluster.nodes:
        await peer_exchange(member.peer, pysyncobj_frame)
    assert not marker.exists()
    await still_serves(cluster)


async def test_a_peer_frame_without_the_secret_is_refused(cluster):
    """A client that knows the wire but not the peer secret: hello, then a frame tagged with a
    wrong key. The member answers only its hello and hangs up; a 1 GiB length gets the same."""
    import msgpack

    from kvstore.peer_transport import HELLO_BYTES, HELLO_MAGIC, frame_key, frame_tag

    hello = HELLO_MAGIC + os.urandom(16)
    for member in cluster.nodes:
        host, port = member.peer.rsplit(":", 1)
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            await stream.send_all(hello)
            answer = b""
            while len(answer) < HELLO_BYTES:
                answer += await stream.receive_some(HELLO_BYTES - len(answer))
            assert answer.startswith(HELLO_MAGIC)
            body = msgpack.packb(["status"])
            tag = frame_tag(frame_key("not-the-secret-at-all"), answer[len(HELLO_MAGIC):], 0, body)
            await stream.send_all(struct.pack(">I", len(tag) + len(body)) + tag + body)
            with trio.fail_after(3):
                assert await stream.receive_some(65536) == b""  # closed, nothing answered
        answered = await peer_exchange(member.peer, hello + struct.pack(">I", 1 << 30))
        assert answered.startswith(HELLO_MAGIC) and len(answered) == HELLO_BYTES
    await still_serves(cluster)
