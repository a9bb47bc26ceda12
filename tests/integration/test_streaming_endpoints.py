"""The kubelet's streaming app on Hypercorn (loopback, no TLS), spoken to as the API server's relay
speaks to it (relay.handshake, wsproto): exec with real host processes (the runtime's pipes and
pseudo-terminal), and port-forward with a SPDY client codec to a real TCP server. Refusals come
back as Status objects before the upgrade."""

from __future__ import annotations

import json

import pytest
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from wsproto.events import BytesMessage, CloseConnection

from kvstore.local_cluster import free_port
from orchestrator.kubelet.runtime import execs
from orchestrator.kubelet.streams import StreamTargetError
from orchestrator.metrics import answer_lifespan
from orchestrator.streaming import channels, relay, spdy
from orchestrator.streaming.kubelet import kubelet_app


class HostStreams:
    """The kubelet's seam with host processes for containers; `web` is the only pod."""

    def __init__(self, port_targets: dict[int, int]) -> None:
        self.port_targets = port_targets

    async def confirm_running(self, namespace, name, container, *, attaching=False):
        if attaching:  # no container of web takes an attach
            raise StreamTargetError(500, "InternalError", channels.not_found_in_pod(container, name, namespace))
        if container != "main":
            raise StreamTargetError(400, "BadRequest", f"container {container} is not running in pod {name}")

    async def exec(self, namespace, name, container, argv, *, stdin, tty, terminal_size=None):
        await self.confirm_running(namespace, name, container)
        size = await terminal_size() if tty and terminal_size else None  # as the kubelet's seam does
        return execs.with_pty(argv, size=size) if tty else execs.with_pipes(argv, stdin=stdin)

    async def attach(self, namespace, name, container, **kwargs):
        raise StreamTargetError(500, "InternalError", channels.not_found_in_pod(container, name, namespace))

    async def connect(self, namespace, name, port):
        if port not in self.port_targets:
            raise StreamTargetError(500, "InternalError", f"error forwarding port {port} to pod {name}: refused")
        return await trio.open_tcp_stream("127.0.0.1", self.port_targets[port])


@pytest.fixture
async def kubelet(nursery):
    async def echo_upper(stream):
        async with stream:
            async for data in stream:
                await stream.send_all(data.upper())
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    nursery.start_soon(trio.serve_listeners, echo_upper, listeners)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = config.errorlog = None
    streams = kubelet_app(HostStreams({80: listeners[0].socket.getsockname()[1]}))

    async def app(scope, receive, send):  # the kubelet's server answers lifespan before mounting the app
        if scope["type"] == "lifespan":
            return await answer_lifespan(receive, send)
        await streams(scope, receive, send)
    await nursery.start(serve, app, config)
    return port


async def dial(port: int, target: str, protocols: list[str]):
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    return stream, await relay.handshake(stream, "127.0.0.1", target, protocols)


async def messages(stream, connection):
    """Every message until the server closes."""
    out, pending = [], b""
    async for event in relay._events(stream, connection):
        if isinstance(event, BytesMessage):
            pending += event.data
            if event.message_finished:
                out.append(pending)
                pending = b""
        elif isinstance(event, CloseConnection):
            break
    return out


async def run_exec(port: int, query: str, send: list[bytes] = ()):
    stream, accepted = await dial(port, f"/exec/default/web/main?{query}", [channels.V5])
    assert isinstance(accepted, relay.Accepted) and accepted.subprotocol == channels.V5
    for data in send:
        await stream.send_all(accepted.connection.send(BytesMessage(data=data)))
    with trio.fail_after(10):
        got = await messages(stream, accepted.connection)
    await stream.aclose()
    outputs = {channel: b"".join(m[1:] for m in got if m[0] == channel) for channel in (1, 2)}
    status = json.loads([m for m in got if m[0] == channels.ERROR][-1][1:])
    return outputs, status


async def test_exec_sends_both_outputs_and_the_exit_code_as_a_status(kubelet):
    outputs, status = await run_exec(kubelet, "command=sh&command=-c&command=echo+out;echo+err>%262;exit+3"
                                              "&stdout=true&stderr=true")
    assert outputs == {1: b"out\n", 2: b"err\n"}
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"][0]["message"] == "3"


async def test_exec_stdin_ends_with_the_v5_close(kubelet):
    outputs, status = await run_exec(kubelet, "command=cat&stdin=true&stdout=true",
                                     [b"\x00hello ", b"\x00world", b"\xff\x00"])
    assert outputs[1] == b"hello world" and status == {"metadata": {}, "status": "Success"}


async def test_exec_with_a_tty_is_resized(kubelet):
    outputs, status = await run_exec(kubelet, "command=sh&command=-c&command=sleep+0.5;stty+size"
                                              "&stdin=true&stdout=true&tty=true",
                                     [b'\x04{"Width":111,"Height":33}'])
    assert b"33 111" in outputs[1] and status["status"] == "Success"


async def test_exec_with_a_tty_starts_on_kubectls_terminal_size(kubelet):
    """kubectl sends its terminal's size as the session opens: the process starts on it (before,
    one that read it at once, as `stty size` does, could find a 0x0 terminal), and input typed
    ahead of the size still reaches it."""
    outputs, status = await run_exec(kubelet, "command=sh&command=-c&command=stty+size;read+v;echo+v=$v"
                                              "&stdin=true&stdout=true&tty=true",
                                     [b"\x00typed-ahead\n", b'\x04{"Width":111,"Height":33}'])
    assert b"33 111" in outputs[1] and b"v=typed-ahead" in outputs[1] and status["status"] == "Success"


@pytest.mark.parametrize("target, protocols, code, text", [
    ("/exec/default/web/other?command=true&stdout=true", [channels.V5], 400, "container other is not running"),
    ("/exec/default/web/main?command=true&stdout=true", ["channel.k8s.io"], 400, "v5.channel.k8s.io"),
    ("/exec/default/web/main?stdout=true", [channels.V5], 400, "at least one command"),
    ("/attach/default/web/main?stdout=true", [channels.V5], 500, "container main not found in pod web_default"),
    ("/nothing", [channels.V5], 404, "expected /exec"),
])
async def test_refusals_are_statuses_before_the_upgrade(kubelet, target, protocols, code, text):
    stream, refused = await dial(kubelet, target, protocols)
    await stream.aclose()
    assert isinstance(refused, relay.Refused) and refused.code == code
    status = json.loads(refused.body)
    assert status["kind"] == "Status" and status["code"] == code and text in status["message"]


@pytest.mark.parametrize("path, code, text", [
    (b"/exec/default/web/main", b"400", b"v5.channel.k8s.io"),
    (b"/exec/default/web/other", b"400", b"container other is not running"),  # the reason first
    (b"/attach/default/web/main", b"500", b"container main not found in pod web_default"),
])
async def test_a_spdy_upgrade_over_plain_http_gets_a_status_naming_the_protocols_or_the_reason(kubelet, path, code,
                                                                                                text):
    stream = await trio.open_tcp_stream("127.0.0.1", kubelet)
    await stream.send_all(b"POST " + path + b"?command=true HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                          b"Upgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n"
                          b"Content-Length: 0\r\n\r\n")
    answer = b""
    with trio.fail_after(5):
        while b"}" not in answer:
            answer += await stream.receive_some(4096)
    await stream.aclose()
    assert answer.startswith(b"HTTP/1.1 " + code) and text in answer


async def test_port_forward_pairs_streams_and_carries_bytes_both_ways(kubelet):
    stream, accepted = await dial(kubelet, "/portForward/default/web", [channels.PORT_FORWARD_TUNNEL])
    assert isinstance(accepted, relay.Accepted)
    ws, codec = accepted.connection, spdy.Codec()
    frames: list = []
    events = relay._events(stream, ws)

    async def send(*out):
        await stream.send_all(ws.send(BytesMessage(data=b"".join(codec.encode(f) for f in out))))

    async def until(predicate):
        with trio.fail_after(10):
            while not predicate():
                event = await events.__anext__()
                if isinstance(event, BytesMessage):
                    frames.extend(codec.feed(event.data))

    await send(spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}),
               spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}),
               spdy.Data(3, b"hello"), spdy.Data(3, b"", fin=True))
    await until(lambda: spdy.Data(1, b"", True) in frames)
    assert spdy.SynReply(1, {}) in frames and spdy.SynReply(3, {}) in frames
    assert b"".join(f.data for f in frames if isinstance(f, spdy.Data) and f.stream_id == 3) == b"HELLO"
    frames.clear()
    await send(spdy.SynStream(5, {"streamtype": "error", "port": "81", "requestid": "1"}),
               spdy.SynStream(7, {"streamtype": "data", "port": "81", "requestid": "1"}))
    await until(lambda: spdy.Data(5, b"", True) in frames)
    assert b"error forwarding port 81" in b"".join(f.data for f in frames if isinstance(f, spdy.Data))
    await stream.aclose()
