"""One socket write per plain HTTP response.

Hypercorn writes a response's head, its body and its (empty, with a Content-Length) end of
message as three writes: over TLS two records and two send() calls, and a lock and a task switch
for the empty one. Under load the API server spent a sixth of its time in those sends (py-spy,
a 3,000-pod burst on 1,000 hollow nodes: 7.5% in head writes alone). Here the head of a response
with a Content-Length is held until its body (or its end, for an empty body) and goes out in the
same write, and an empty write is not made. A streamed (chunked) response, such as a watch,
sends its head at once: a client waits for it before the first event.

This subclasses Hypercorn's HTTP/1.1 protocol, a private class: the pin in pyproject.toml keeps
the versions this was written against, and `install()` leaves Hypercorn as it is (and says so in
the log) if the class no longer looks as expected.
"""

from __future__ import annotations

import inspect
import logging

import h11

log = logging.getLogger("ketch.apiserver.http")


def _has_length(event: h11.Response) -> bool:
    return any(name.lower() == b"content-length" for name, _ in event.headers)


def install() -> bool:
    """Make Hypercorn's HTTP/1.1 connections in this process write each plain response once."""
    import hypercorn.protocol as protocol
    from hypercorn.events import RawData
    from hypercorn.protocol.h11 import H11Protocol

    if getattr(protocol.H11Protocol, "writes_once", False):
        return True
    if not inspect.iscoroutinefunction(getattr(H11Protocol, "_send_h11_event", None)):
        log.warning("event=one_write_not_installed reason=hypercorn's H11Protocol has changed")
        return False

    class OneWriteH11Protocol(H11Protocol):
        writes_once = True
        held_head = b""

        async def _send_h11_event(self, event) -> None:
            try:
                data = self.connection.send(event)
            except h11.LocalProtocolError:
                if self.connection.their_state != h11.ERROR:
                    raise
                return
            if isinstance(event, h11.Response) and _has_length(event):
                self.held_head = data
                return
            if self.held_head:
                data, self.held_head = self.held_head + data, b""
            if data:
                await self.send(RawData(data=data))

    protocol.H11Protocol = OneWriteH11Protocol
    return True
