"""The kubelet's end of a container's attach socket (adapter; the protocol is the shim's, in
shim.py, which needs only the standard library and so holds both ends' framing).

    attachment = await ShimAttachment.open(point, stdin=True, stdout=True, stderr=True)
    await attachment.receive() -> (channel, data) | None at the end of the container's output
    await attachment.write(data); await attachment.end(); await attachment.resize(cols, rows)
    await attachment.aclose()    detaches; the container keeps running

`write`, `end` and `resize` are what the channel protocol's input feeder calls
(orchestrator/streaming/exec_session.py), as it does for an exec'd process.
"""

from __future__ import annotations

import collections
import os

import trio

from orchestrator.kubelet.runtime import shim
from orchestrator.kubelet.runtime.base import AttachPoint, RuntimeFailure

HELLO_TIMEOUT_S = 5.0
READ_CHUNK = 64 * 1024


class AttachError(RuntimeFailure):
    """The shim refused the attach, or its protocol broke."""


class ShimAttachment:
    def __init__(self, stream: trio.SocketStream, tty: bool) -> None:
        self.stream, self.tty = stream, tty
        self.reader = shim.FrameReader()
        self.frames: collections.deque[tuple[int, bytes]] = collections.deque()

    @classmethod
    async def open(cls, point: AttachPoint, *, stdin: bool, stdout: bool, stderr: bool) -> ShimAttachment:
        dir_fd = os.open(point.directory, os.O_PATH)
        try:
            stream = await trio.open_unix_socket(shim.socket_path(dir_fd))
        except OSError as err:
            raise AttachError(f"cannot attach to the container: {err.strerror or err}") from None
        finally:
            os.close(dir_fd)
        attachment = cls(stream, point.tty)
        flags = (shim.WANTS_STDIN if stdin and point.stdin else 0) | (shim.WANTS_STDOUT if stdout else 0) | \
            (shim.WANTS_STDERR if stderr and not point.tty else 0)
        try:
            try:
                await stream.send_all(shim.encode(shim.HELLO, bytes([flags])))
            except (trio.BrokenResourceError, OSError):
                pass  # a shim that refuses closes at once; its reason is still there to read
            with trio.fail_after(HELLO_TIMEOUT_S):
                answer = await attachment._next()
            if answer is None or answer[0] != shim.HELLO:
                raise AttachError("the container's shim did not accept the attach")
        except (trio.TooSlowError, trio.BrokenResourceError, OSError):
            await stream.aclose()
            raise AttachError("the container's shim did not answer the attach") from None
        except BaseException:
            await stream.aclose()
            raise
        return attachment

    async def _next(self) -> tuple[int, bytes] | None:
        while not self.frames:
            data = await self.stream.receive_some(READ_CHUNK)
            if not data:
                return None
            try:
                self.frames.extend(self.reader.feed(data))
            except shim.FrameError as err:
                raise AttachError(f"the container's shim broke the attach protocol: {err}") from None
        channel, payload = self.frames.popleft()
        if channel == shim.ERROR:
            raise AttachError(payload.decode(errors="replace"))
        return channel, payload

    async def receive(self) -> tuple[int, bytes] | None:
        """The next output (shim.STDOUT or shim.STDERR, which are the channel protocol's numbers
        too), or None once the container's output has ended or the shim let this session go."""
        try:
            return await self._next()
        except (trio.BrokenResourceError, OSError):
            return None

    async def write(self, data: bytes) -> None:
        await self._send(shim.encode_chunks(shim.STDIN, data))

    async def end(self) -> None:
        await self._send(shim.encode(shim.STDIN_END))

    async def resize(self, cols: int, rows: int) -> None:
        await self._send(shim.encode(shim.RESIZE, shim.SIZE.pack(cols, rows)))

    async def _send(self, data: bytes) -> None:
        try:
            await self.stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # the shim let this session go (the container's output ended): receive() says so

    async def aclose(self) -> None:
        await self.stream.aclose()
