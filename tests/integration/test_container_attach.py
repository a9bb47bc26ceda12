"""Attaching to a running container through its shim's socket (shim.py's protocol, the kubelet's
end in runtime/attach.py), with real containers: `local` everywhere, `runc` and `process` as root.
Output from the attach on (not the history), stdin to the workload, stdinOnce's EOF when the
first session ends, a terminal that is resized, several watchers, detaching without stopping
the container, and a container that is not running refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from orchestrator.kubelet.runtime import shim
from orchestrator.kubelet.runtime.attach import AttachError, ShimAttachment
from orchestrator.kubelet.runtime.base import ContainerConfig, Resources, RuntimeFailure
from tests.integration import test_container_runtime
from tests.integration.test_container_runtime import UID, _wait_exited

runtime = test_container_runtime.runtime  # the same runtimes, each in a sandbox removed afterwards

WAIT_S = 15


def _start(rt, argv, *, stdin=False, stdin_once=False, tty=False, name="c"):
    config = ContainerConfig(UID, name, 0, "busybox", argv, [], None, [], Resources(), stdin, tty, stdin_once)
    return rt.start_container(rt.test_sandbox, config)


async def _attach(rt, state, *, stdin=True, stdout=True, stderr=True) -> ShimAttachment:
    point = await trio.to_thread.run_sync(rt.attach_point, state.id)
    return await ShimAttachment.open(point, stdin=stdin, stdout=stdout, stderr=stderr)


async def _read_until(attachment: ShimAttachment, wanted: bytes, channel: int = shim.STDOUT) -> bytes:
    """What arrives on `channel` until `wanted` is in it (or the output ends)."""
    return (await _read_until_all(attachment, {channel: wanted}))[channel]


async def _read_until_all(attachment: ShimAttachment, wanted: dict[int, bytes]) -> dict[int, bytes]:
    """What arrives on each channel until every wanted text is in its channel (or the output
    ends). The shim relays stdout and stderr as each has data, in no set order between the two."""
    got = {channel: b"" for channel in wanted}
    with trio.fail_after(WAIT_S):
        while any(text not in got[channel] for channel, text in wanted.items()):
            output = await attachment.receive()
            if output is None:
                break
            if output[0] in got:
                got[output[0]] += output[1]
    return got


async def _rest(attachment: ShimAttachment) -> tuple[bytes, bytes]:
    """Everything until the shim ends the session: (stdout, stderr)."""
    outputs = {shim.STDOUT: b"", shim.STDERR: b""}
    with trio.fail_after(WAIT_S):
        while (output := await attachment.receive()) is not None:
            outputs[output[0]] += output[1]
    return outputs[shim.STDOUT], outputs[shim.STDERR]


def _running(rt, state) -> bool:
    return next(s for s in rt.list_containers() if s.id == state.id).state == "running"


async def test_stdin_reaches_the_workload_and_a_second_attach_sees_only_new_output(runtime):
    state = _start(runtime, ["sh", "-c", "while read line; do echo got:$line; echo err:$line >&2; done"], stdin=True)
    first = await _attach(runtime, state)
    await first.write(b"one\n")
    got = await _read_until_all(first, {shim.STDOUT: b"got:one", shim.STDERR: b"err:one"})
    assert b"got:one" in got[shim.STDOUT] and b"err:one" in got[shim.STDERR], got
    await first.aclose()
    await trio.sleep(0.2)
    assert _running(runtime, state), "detaching stopped the container"
    second = await _attach(runtime, state)
    await second.write(b"two\n")
    seen = await _read_until(second, b"got:two")
    assert b"got:two" in seen and b"got:one" not in seen, seen
    await second.aclose()
    log = Path(state.log_path).read_text()
    assert "stdout F got:one" in log and "stdout F got:two" in log and "stderr F err:one" in log, log


async def test_stdin_once_closes_stdin_when_the_first_session_ends_its_input(runtime):
    state = _start(runtime, ["sh", "-c", "cat; echo done"], stdin=True, stdin_once=True)
    attachment = await _attach(runtime, state)
    await attachment.write(b"x\n")
    await attachment.end()
    out, _ = await _rest(attachment)
    assert out == b"x\ndone\n"
    ended = await trio.to_thread.run_sync(_wait_exited, runtime, state.id)
    assert ended.exit_code == 0


async def test_stdin_once_closes_stdin_when_the_first_session_leaves(runtime):
    state = _start(runtime, ["sh", "-c", "cat >/dev/null; echo finished"], stdin=True, stdin_once=True)
    attachment = await _attach(runtime, state)
    await attachment.write(b"ignored\n")
    await attachment.aclose()
    ended = await trio.to_thread.run_sync(_wait_exited, runtime, state.id)
    assert ended.exit_code == 0 and "stdout F finished" in Path(state.log_path).read_text()


async def test_without_stdin_once_the_end_of_input_detaches_and_stdin_stays_open(runtime):
    state = _start(runtime, ["cat"], stdin=True)
    attachment = await _attach(runtime, state)
    await attachment.write(b"a\n")
    assert await _read_until(attachment, b"a\n") == b"a\n"
    await attachment.end()
    assert await _rest(attachment) == (b"", b"")  # the session ended without the container's end
    assert _running(runtime, state)
    again = await _attach(runtime, state)
    await again.write(b"b\n")
    assert await _read_until(again, b"b\n") == b"b\n"
    await again.aclose()


async def test_a_terminal_is_resized_and_its_output_is_one_stream_in_the_log(runtime):
    # With runc the size reaches the container's console when runc handles its SIGWINCH, a moment
    # after the shim sets it (as a terminal's resize does): the workload looks until it has come.
    wait_for_size = 'for i in $(seq 100); do s=$(stty size 2>/dev/null); [ "$s" = "33 111" ] && break; sleep 0.1; done'
    state = _start(runtime, ["sh", "-c", f"read line; {wait_for_size}; echo size:$s; echo got:$line; tty"],
                   stdin=True, stdin_once=True, tty=True)
    attachment = await _attach(runtime, state)
    assert attachment.tty
    await attachment.resize(111, 33)
    await attachment.write(b"hi\r")
    out, err = await _rest(attachment)
    assert b"size:33 111" in out and b"got:hi" in out and b"/dev/pts/" in out and err == b"", out
    ended = await trio.to_thread.run_sync(_wait_exited, runtime, state.id)
    assert ended.exit_code == 0
    log = Path(state.log_path).read_text()
    assert "got:hi" in log and " stderr " not in log, log


async def test_several_attachers_each_see_the_output(runtime):
    state = _start(runtime, ["sh", "-c", "while read line; do echo got:$line; done"], stdin=True)
    watchers = [await _attach(runtime, state, stdin=False) for _ in range(3)]
    feeder = await _attach(runtime, state)
    await feeder.write(b"all\n")
    for attachment in [*watchers, feeder]:
        assert b"got:all" in await _read_until(attachment, b"got:all")
        await attachment.aclose()


async def test_a_container_without_stdin_reads_dev_null_and_ignores_attached_input(runtime):
    state = _start(runtime, ["sh", "-c", "cat; echo stdin-ended; sleep 30"])
    with trio.fail_after(WAIT_S):
        while "stdin-ended" not in Path(state.log_path).read_text():
            await trio.sleep(0.05)
    attachment = await _attach(runtime, state)
    await attachment.write(b"lost\n")
    await attachment.aclose()
    assert "lost" not in Path(state.log_path).read_text()


async def test_an_exited_container_cannot_be_attached(runtime):
    state = _start(runtime, ["true"])
    await trio.to_thread.run_sync(_wait_exited, runtime, state.id)
    with pytest.raises(RuntimeFailure, match="not running"):
        await _attach(runtime, state)


async def test_more_attachers_than_the_limit_are_refused_with_a_reason(runtime):
    state = _start(runtime, ["sleep", "30"])
    held = [await _attach(runtime, state, stdin=False) for _ in range(shim.MAX_ATTACHERS)]
    try:
        with pytest.raises(AttachError, match="attach sessions already"):
            await _attach(runtime, state)
    finally:
        for attachment in held:
            await attachment.aclose()
