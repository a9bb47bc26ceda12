"""Reading a container's CRI log file for /containerLogs (adapter over crilog.py): the file, or
its last lines, then with follow what is appended until the container stops."""

from __future__ import annotations

import os
from typing import AsyncIterator, Callable

import trio

from orchestrator.kubelet import crilog
from orchestrator.kubelet.crilog import LogOptions

CHUNK = 64 * 1024
FOLLOW_POLL_S = 0.2


def _tail_offset(path: str, lines: int) -> int:
    """An offset at or before the start of the last `lines` log lines (partial lines need more
    entries than lines: twice as many are kept); 0 for a short file."""
    with open(path, "rb") as handle:
        position = handle.seek(0, os.SEEK_END)
        found = 0
        while position > 0:
            step = min(CHUNK, position)
            position -= step
            handle.seek(position)
            found += handle.read(step).count(b"\n")
            if found > lines * 2 + 1:
                return position
        return 0


def _complete_lines(pending: bytes) -> tuple[list[bytes], bytes]:
    lines = pending.split(b"\n")
    return lines[:-1], lines[-1]


async def stream_log(path: str, options: LogOptions, running: Callable[[], bool]) -> AsyncIterator[bytes]:
    """The rendered log; with follow it waits for more while running() says the container runs."""
    limit = crilog.Limit(options.limit_bytes)
    start = 0
    if options.tail_lines is not None:
        start = await trio.to_thread.run_sync(_tail_offset, path, options.tail_lines)
    try:
        handle = await trio.open_file(path, "rb")
    except OSError:
        return
    async with handle:
        await handle.seek(start)
        pending = b""
        if options.tail_lines is not None:  # the last lines: read to the end, then choose
            pending = await handle.read()
            lines, pending = _complete_lines(pending)
            if start:
                lines = lines[1:]  # the offset fell inside a line
            out = limit.take(b"".join(crilog.render(e, options) for e in crilog.select(lines, options)))
            if out:
                yield out
        stopped_once = False
        while not limit.exhausted:
            chunk = await handle.read(CHUNK)
            if chunk:
                lines, pending = _complete_lines(pending + chunk)
                entries = (crilog.parse_line(line) for line in lines)
                out = limit.take(b"".join(crilog.render(e, options) for e in entries
                                          if e is not None and crilog.wanted(e, options)))
                if out:
                    yield out
                continue
            if not options.follow or stopped_once:
                return
            if not running():
                stopped_once = True  # one more read: what it wrote just before it stopped
                continue
            await trio.sleep(FOLLOW_POLL_S)
