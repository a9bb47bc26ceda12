"""The Kubernetes channel protocol (kubectl exec over WebSocket): messages, resize, v5 close,
the exit-code Status kubectl turns into its own exit code, and the request's options."""

import json

import pytest

from orchestrator.streaming import channels
from orchestrator.streaming.channels import V4, V5, ChannelError, Close, Data, Resize


@pytest.mark.parametrize("message, protocol, expected", [
    (b"\x00hello", V5, Data(0, b"hello")),
    (b"\x00", V4, Data(0, b"")),
    (b'\x04{"Width":120,"Height":40}', V5, Resize(120, 40)),
    (b'\x04{"Width":80}', V4, Resize(80, 0)),
    (b"\xff\x00", V5, Close(0)),
])
def test_client_messages_parse(message, protocol, expected):
    assert channels.parse(message, protocol) == expected


@pytest.mark.parametrize("message, protocol, why", [
    (b"", V5, "names no channel"),
    (b"\x01out", V5, "may not write to channel 1"),
    (b"\x03{}", V5, "may not write to channel 3"),
    (b"\xff\x00", V4, "may not write to channel 255"),  # close is v5's
    (b"\xff\x00\x01", V5, "exactly one channel"),
    (b"\x04not json", V5, "is JSON"),
    (b'\x04{"Width":-1,"Height":3}', V5, "out of range"),
    (b'\x04{"Width":"80","Height":3}', V5, "out of range"),
    (b"\x04" + b" " * 300, V5, "at most"),
])
def test_bad_client_messages_are_typed_errors(message, protocol, why):
    with pytest.raises(ChannelError, match=why):
        channels.parse(message, protocol)


@pytest.mark.parametrize("channel, payload, wire", [
    (1, b"out", b"\x01out"), (2, b"", b"\x02"), (3, b"{}", b"\x03{}")])
def test_frames_start_with_their_channel(channel, payload, wire):
    assert channels.frame(channel, payload) == wire


def test_a_channel_is_one_byte():
    with pytest.raises(ChannelError):
        channels.frame(256, b"")


@pytest.mark.parametrize("offered, expected", [
    (["v5.channel.k8s.io"], V5),
    (["v4.channel.k8s.io", "v5.channel.k8s.io"], V5),  # the newest wins, whatever the client's order
    (["v4.channel.k8s.io", "channel.k8s.io"], V4),
    (["base64.channel.k8s.io"], None),
    ([], None),
])
def test_the_newest_offered_protocol_is_chosen(offered, expected):
    assert channels.choose(offered, channels.EXEC_PROTOCOLS) == expected


def test_exit_zero_is_success_and_nonzero_carries_the_code_as_kubectl_reads_it():
    assert channels.exit_status(0, ["true"]) == {"metadata": {}, "status": "Success"}
    failure = channels.exit_status(3, ["sh", "-c", "exit 3"])
    assert failure["status"] == "Failure" and failure["reason"] == "NonZeroExitCode"
    assert failure["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    message = channels.status_message(failure)
    assert message[0] == channels.ERROR and json.loads(message[1:]) == failure


@pytest.mark.parametrize("query, expected", [
    ("command=sh&command=-c&command=exit+3&stdout=true&stderr=true",
     channels.ExecOptions(["sh", "-c", "exit 3"], False, True, True, False)),
    ("command=cat&stdin=true&stdout=true&container=main",
     channels.ExecOptions(["cat"], True, True, False, False, "main")),
    ("command=sh&stdin=true&stdout=true&stderr=true&tty=true",  # a tty has one output: stderr dropped
     channels.ExecOptions(["sh"], True, True, False, True)),
])
def test_exec_options_read_kubectls_query(query, expected):
    assert channels.exec_options(query) == expected


@pytest.mark.parametrize("query, why", [
    ("stdout=true", "at least one command"),
    ("command=ls", "at least one of stdin, stdout, stderr"),
])
def test_exec_options_refuse_what_kubernetes_refuses(query, why):
    with pytest.raises(ChannelError, match=why):
        channels.exec_options(query)


def test_attach_needs_no_command():
    assert channels.exec_options("stdout=true", attach=True).command == []


def test_the_refusal_of_spdy_names_the_protocols_served():
    assert "v5.channel.k8s.io" in channels.websocket_only("exec")
    assert "SPDY/3.1+portforward.k8s.io" in channels.websocket_only("portForward")
