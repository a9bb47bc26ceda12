"""The shim's attach protocol (framing), the stdinOnce rule, and an attach's terminal setting."""

from __future__ import annotations

import pytest

from orchestrator.kubelet.runtime import shim
from orchestrator.streaming import channels


def test_frames_come_out_whole_however_the_bytes_are_cut():
    wire = shim.encode(shim.HELLO, b"\x03") + shim.encode(shim.STDIN, b"hello") + shim.encode(shim.STDIN_END)
    for cut in range(1, len(wire)):
        reader = shim.FrameReader()
        frames = reader.feed(wire[:cut]) + reader.feed(wire[cut:])
        assert frames == [(shim.HELLO, b"\x03"), (shim.STDIN, b"hello"), (shim.STDIN_END, b"")]
        assert reader.buffer == b""


def test_long_data_is_cut_into_bounded_frames():
    data = bytes(range(256)) * 600  # 153600 bytes: three frames
    frames = shim.FrameReader().feed(shim.encode_chunks(shim.STDOUT, data))
    assert [len(p) for _, p in frames] == [shim.MAX_FRAME, shim.MAX_FRAME, len(data) - 2 * shim.MAX_FRAME]
    assert b"".join(p for _, p in frames) == data and {c for c, _ in frames} == {shim.STDOUT}


def test_an_oversized_frame_is_an_error_not_a_buffer_without_end():
    with pytest.raises(shim.FrameError, match="at most"):
        shim.FrameReader().feed(shim.HEADER.pack(shim.STDIN, shim.MAX_FRAME + 1))
    with pytest.raises(shim.FrameError):
        shim.encode(shim.STDOUT, b"x" * (shim.MAX_FRAME + 1))


@pytest.mark.parametrize("stdin_once, tty, outcome", [
    (True, False, shim.CLOSE_STDIN),   # kubectl run -i ... -- cat: cat reads EOF and ends
    (True, True, shim.DETACH),         # kubectl run -it: the terminal stays open, as containerd keeps it
    (False, False, shim.DETACH),       # stdin stays open for the next attacher
    (False, True, shim.DETACH),
])
def test_what_the_end_of_an_attachers_stdin_does(stdin_once, tty, outcome):
    assert shim.on_stdin_end(stdin_once, tty) == outcome


def test_an_attach_takes_the_containers_terminal_setting():
    asked = channels.exec_options("stdin=true&stdout=true&stderr=true", attach=True)
    assert not asked.tty and asked.stderr
    on_terminal = channels.with_terminal(asked, True)
    assert on_terminal.tty and not on_terminal.stderr and on_terminal.stdin and on_terminal.stdout
    assert channels.with_terminal(channels.exec_options("stdout=true&tty=true", attach=True), False).tty is False


def test_a_container_that_is_not_running_is_named_as_kubernetes_names_it():
    assert channels.not_found_in_pod("main", "web", "default") == "container main not found in pod web_default"
