"""Watches: a chunked stream of JSON lines (or Table rows) from the watch cache, from any
resourceVersion the cache still holds (410 Expired otherwise), with bookmarks and timeouts."""

from __future__ import annotations

import random

import trio

from orchestrator.api.resources import Resource
from orchestrator.apiserver import errors, objects, tables
from orchestrator.apiserver.handlers import matcher
from orchestrator.apiserver.request import JSON, Request, Route, encode_line
from orchestrator.apiserver.storage import Store, WatchEvent, parse_resource_version

COALESCE_BYTES = 256 * 1024
INITIAL_EVENTS_PER_WRITE = 100


async def serve_watch(store: Store, bookmark_interval_s: float, request: Request, route: Route) -> None:
    resource = route.resource
    accept = matcher(request, route)
    rv = request.query.get("resourceVersion")
    since = None if rv in (None, "", "0") else parse_resource_version(rv)
    timeout = request.int_param("timeoutSeconds", 0)
    bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
    # Table rows and what they carry, once per watch (a bad includeObject is a 400 before the stream)
    carry = request.table_rows_carry() if request.wants_table else None
    cache = store.cache(resource)
    await cache.ready.wait()
    await request.start_stream(tables.TABLE_CONTENT_TYPE if request.wants_table else JSON)
    try:
        initial, watcher = cache.subscribe(since, accept)
    except errors.APIError as err:
        await request.stream_line({"type": "ERROR", "object": err.status()})
        return await request.end_stream()
    try:
        with trio.move_on_after(timeout or random.uniform(1800, 3600)):
            for start in range(0, len(initial), INITIAL_EVENTS_PER_WRITE):
                await request.stream_bytes(b"".join(watch_line(resource, event, carry)
                                                    for event in initial[start:start + INITIAL_EVENTS_PER_WRITE]))
            while True:
                # Only the wait is under the idle timer: a write it cut short would lose the events
                # in it, and the bookmark sent next would carry the client past them.
                with trio.move_on_after(bookmark_interval_s) as idle:
                    event = await watcher.receive.receive()
                if not idle.cancelled_caught:
                    await request.stream_bytes(with_queued_lines(resource, watcher, event, carry))
                elif bookmarks:
                    await request.stream_line(
                        {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": resource.kind,
                                "apiVersion": resource.api_version,
                                "metadata": {"resourceVersion": str(max(cache.revision, since or 0))},
                            },
                        }
                    )
    except (trio.EndOfChannel, trio.ClosedResourceError, OSError):
        pass  # dropped for being slow, or the cache restarted: the client re-watches
    finally:
        cache.unsubscribe(watcher)
        with trio.CancelScope(shield=True):
            await request.end_stream()


def with_queued_lines(resource: Resource, watcher, event: WatchEvent, carry: str | None) -> bytes:
    """The event's line and those of the events already queued behind it, up to COALESCE_BYTES:
    one write (one TLS record, one send) for what piled up while this watch waited its turn.
    Under load most of the API server's time went to a send per event per watcher."""
    lines = [watch_line(resource, event, carry)]
    size = len(lines[0])
    while size < COALESCE_BYTES:
        try:
            queued = watcher.receive.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break  # an ended channel ends the watch at the next receive, after these are sent
        lines.append(watch_line(resource, queued, carry))
        size += len(lines[-1])
    return b"".join(lines)


def watch_line(resource: Resource, event: WatchEvent, carry: str | None) -> bytes:
    """The event's line, encoded once for all the watchers that want the same form (of the same
    resource: views of one storage, such as events.k8s.io events, answer in their own shape):
    JSON when `carry` is None, else a one-row Table whose row carries what `carry` says."""
    form = ("json " if carry is None else f"table {carry} ") + resource.api_version
    line = event.encoded.get(form)
    if line is None:
        obj = objects.with_type(resource, event.object)
        if carry is not None:
            obj = tables.table(resource.kind, [obj], obj["metadata"]["resourceVersion"], carry)
        line = event.encoded[form] = encode_line({"type": event.type, "object": obj})
    return line

