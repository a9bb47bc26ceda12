"""The kv client library (async, trio).

    async with KVClient(["127.0.0.1:2379", ...], token) as kv:
        await kv.put(b"k", b"v")
        result = await kv.range(b"k")

- Endpoints are tried in turn; a member that is down or answers UNAVAILABLE makes the client
  move to the next one at once (no pause; a member already waits for a new leader before it
  answers UNAVAILABLE), until `timeout_s` has passed. Any member forwards to the leader, so the
  client needs no leader hint; it pauses RETRY_PAUSE_S only when no member accepts a connection.
- Every write carries (client_id, seq). A write retried after a lost connection or an
  ambiguous failure is applied once (the state machine remembers). At most
  MAX_WRITES_IN_FLIGHT writes are outstanding, the window the members remember per client.
- When the outcome of a write cannot be known (every retry failed after one that may have
  applied), the error says so: KVError(UNAVAILABLE, ambiguous=True). Never "failed" for a
  write that may have applied.
- `watch` yields {"revision", "events"} groups and resumes from the last revision it delivered
  on another member when its member dies.
"""

from __future__ import annotations

import itertools
import os
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import trio

from kvstore import commands as c
from kvstore.errors import ErrorCode, KVError
from kvstore.requests import READ_OPS
from kvstore.sessions import MAX_RESULTS_PER_CLIENT
from kvstore.wire import FrameReader, frame, receive_message

MAX_WRITES_IN_FLIGHT = MAX_RESULTS_PER_CLIENT
# What a member may answer in one frame: a range over every pod of a large cluster is far over the
# request limit (etcd's client takes up to 2 GiB); bounded still, against a member gone wrong.
MAX_RESPONSE_FRAME_BYTES = 256 * 1024 * 1024
RETRY_PAUSE_S = 0.1


class ConnectionLost(Exception):
    pass


class _Connection:
    """One authenticated connection to one member, with requests multiplexed by id."""

    def __init__(self, stream: trio.SocketStream, endpoint: str) -> None:
        self.stream = stream
        self.endpoint = endpoint
        self.reader = FrameReader(MAX_RESPONSE_FRAME_BYTES)
        self.pending: dict[int, list] = {}  # id -> [event, message]
        self.watches: dict[int, trio.MemorySendChannel] = {}
        self.ids = itertools.count(1)
        self.send_lock = trio.Lock()
        self.closed = False

    async def send(self, message: dict) -> None:
        try:
            async with self.send_lock:
                await self.stream.send_all(frame(message))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as err:
            raise ConnectionLost(str(err)) from None

    async def receive(self) -> dict | None:
        return await receive_message(self.stream, self.reader)

    async def request(self, body: dict) -> dict:
        request_id = next(self.ids)
        slot = [trio.Event(), None]
        self.pending[request_id] = slot
        try:
            await self.send({"id": request_id, **body})
            await slot[0].wait()
        finally:
            self.pending.pop(request_id, None)
        if slot[1] is None:
            raise ConnectionLost(f"connection to {self.endpoint} closed")
        return slot[1]

    async def read_loop(self) -> None:
        try:
            while True:
                message = await self.receive()
                if message is None:
                    break
                request_id = message.get("id")
                if request_id in self.watches:
                    channel = self.watches[request_id]
                    try:
                        channel.send_nowait(message)
                    except trio.WouldBlock:  # a watcher that does not read: end its watch
                        channel.close()
                        self.watches.pop(request_id, None)
                elif request_id in self.pending:
                    slot = self.pending[request_id]
                    slot[1] = message
                    slot[0].set()
                elif request_id == 0 and "error" in message:
                    break  # the member refused the connection
        finally:
            self.closed = True
            for slot in self.pending.values():
                slot[0].set()
            for channel in self.watches.values():
                channel.close()
            with trio.CancelScope(shield=True):
                await self.stream.aclose()


class KVClient:
    def __init__(self, endpoints: list[str], token: str, *, timeout_s: float = 10.0,
                 client_id: str | None = None) -> None:
        if not endpoints:
            raise ValueError("at least one endpoint is needed")
        self.endpoints = list(endpoints)
        self.token = token
        self.timeout_s = timeout_s
        self.client_id = client_id or "client-" + os.urandom(8).hex()
        self._seq = itertools.count(1)
        self._next_endpoint = 0
        self._connection: _Connection | None = None
        self._connect_lock = trio.Lock()
        self._nursery: trio.Nursery | None = None
        self._write_slots = trio.Semaphore(MAX_WRITES_IN_FLIGHT)

    async def __aenter__(self) -> KVClient:
        self._nursery_manager = trio.open_nursery()
        self._nursery = await self._nursery_manager.__aenter__()
        return self

    async def __aexit__(self, *exc) -> bool:
        # Our background tasks (one reader per connection) end here; an error raised in the
        # caller's block goes on as it is, not wrapped in the nursery's ExceptionGroup.
        self._nursery.cancel_scope.cancel()
        await self._nursery_manager.__aexit__(None, None, None)
        return False

    # --- connections ----------------------------------------------------------------------

    async def _connected(self) -> _Connection:
        async with self._connect_lock:
            if self._connection is not None and not self._connection.closed:
                return self._connection
            errors = []
            for _ in range(len(self.endpoints)):
                endpoint = self.endpoints[self._next_endpoint % len(self.endpoints)]
                try:
                    self._connection = await self._open(endpoint)
                    return self._connection
                except (OSError, ConnectionLost, trio.TooSlowError) as err:
                    errors.append(f"{endpoint}: {err}")
                    self._next_endpoint += 1
                except KVError:
                    raise
            raise ConnectionLost("no member reachable: " + "; ".join(errors))

    async def _open(self, endpoint: str) -> _Connection:
        host, _, port = endpoint.rpartition(":")
        with trio.fail_after(2):
            stream = await trio.open_tcp_stream(host, int(port))
        connection = _Connection(stream, endpoint)
        with trio.fail_after(2):
            await connection.send({"type": "auth", "token": self.token})
            answer = await connection.receive()
        if answer is None:
            raise ConnectionLost(f"{endpoint} closed the connection")
        if answer.get("type") != "auth_ok":
            await stream.aclose()
            raise KVError.from_wire(answer["error"])
        self._nursery.start_soon(connection.read_loop)
        return connection

    def _move_on(self, connection: _Connection) -> None:
        """Use another member next time (this one is down or has no quorum)."""
        if self._connection is connection:
            self._connection = None
            self._next_endpoint += 1
            self._nursery.start_soon(connection.stream.aclose)

    # --- requests ---------------------------------------------------------------------------

    async def request(self, body: dict, *, write: bool = False) -> dict:
        """Send one request, retrying on other members until timeout_s. See the module doc."""
        maybe_applied = False
        last_error: Exception | None = None
        with trio.move_on_after(self.timeout_s):
            while True:
                try:
                    connection = await self._connected()
                except ConnectionLost as err:  # no member accepted a connection: pause, then again
                    last_error = err
                    await trio.sleep(RETRY_PAUSE_S)
                    continue
                try:
                    answer = await connection.request(body)
                except ConnectionLost as err:  # its member died: the next one is tried at once
                    last_error = err
                    maybe_applied = maybe_applied or write
                    self._move_on(connection)
                    continue
                if "error" not in answer:
                    return answer["result"]
                error = KVError.from_wire(answer["error"])
                if error.code != ErrorCode.UNAVAILABLE:
                    if maybe_applied and error.details.get("outcome_unknown"):
                        break  # our retry fell out of the members' memory: report it ambiguous
                    raise error
                last_error = error
                maybe_applied = maybe_applied or bool(error.details.get("ambiguous"))
                self._move_on(connection)
                # A member answers UNAVAILABLE only after waiting for a leader itself, so the
                # next member is tried at once.
        raise KVError(ErrorCode.UNAVAILABLE, f"no answer within {self.timeout_s}s: {last_error}",
                      ambiguous=maybe_applied)

    async def command(self, cmd: dict, *, serializable: bool = False) -> dict:
        if cmd["op"] in READ_OPS:
            body = {"cmd": cmd, "serializable": True} if serializable else {"cmd": cmd}
            return await self.request(body)
        async with self._write_slots:
            return await self.request({"cmd": c.tagged(cmd, self.client_id, next(self._seq))}, write=True)

    async def put(self, key: bytes, value: bytes, **kw: Any) -> dict:
        return await self.command(c.put(key, value, **kw))

    async def range(self, key: bytes, range_end: bytes | None = None, *, serializable: bool = False,
                    **kw: Any) -> dict:
        return await self.command(c.range_(key, range_end, **kw), serializable=serializable)

    async def get(self, key: bytes, *, serializable: bool = False) -> dict | None:
        kvs = (await self.range(key, serializable=serializable))["kvs"]
        return kvs[0] if kvs else None

    async def delete_range(self, key: bytes, range_end: bytes | None = None, **kw: Any) -> dict:
        return await self.command(c.delete_range(key, range_end, **kw))

    async def txn(self, compares=(), success=(), failure=()) -> dict:
        return await self.command(c.txn(list(compares), list(success), list(failure)))

    async def compact(self, revision: int) -> dict:
        return await self.command(c.compact(revision))

    async def lease_grant(self, ttl: int, lease_id: int = 0) -> dict:
        return await self.command(c.lease_grant(ttl, lease_id=lease_id))

    async def lease_revoke(self, lease_id: int) -> dict:
        return await self.command(c.lease_revoke(lease_id))

    async def lease_keepalive(self, lease_id: int) -> dict:
        return await self.command(c.lease_keepalive(lease_id))

    async def lease_time_to_live(self, lease_id: int, keys: bool = False) -> dict:
        return await self.command(c.lease_time_to_live(lease_id, keys=keys))

    async def keep_lease_alive(self, lease_id: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Run in a nursery: keep the lease alive at a third of its TTL until cancelled."""
        ttl = (await self.lease_keepalive(lease_id))["ttl"]
        task_status.started()
        while True:
            await trio.sleep(max(ttl / 3, 0.2))
            ttl = (await self.lease_keepalive(lease_id))["ttl"]

    async def status(self) -> dict:
        return await self.request({"admin": "status"})

    async def member_list(self) -> dict:
        return await self.request({"admin": "member_list"})

    async def member_add(self, peer: str) -> dict:
        return await self.request({"admin": "member_add", "peer": peer})

    async def member_remove(self, peer: str) -> dict:
        return await self.request({"admin": "member_remove", "peer": peer})

    # --- watch ------------------------------------------------------------------------------

    @asynccontextmanager
    async def watch(self, key: bytes, range_end: bytes | None = None, *, start_revision: int = 0,
                    prev_kv: bool = False) -> AsyncIterator[AsyncIterator[dict]]:
        """Yields an iterator of {"revision", "events"} (revision: the store's, when the events
        were read; each event's kv has its mod_revision). The watch is in place when the block
        starts: a write made inside it is seen. Raises KVError(COMPACTED) if the start revision
        has been compacted away."""
        watch = _Watch(self, key, range_end, start_revision, prev_kv)
        await watch.establish()
        try:
            yield watch
        finally:
            watch.close()


class _Watch:
    """One watch; re-established on another member, from the next revision, if its member dies."""

    def __init__(self, client: KVClient, key, range_end, start_revision, prev_kv) -> None:
        self.client = client
        self.spec = {"key": key, "range_end": range_end, "prev_kv": prev_kv}
        self.next_revision = start_revision
        self.connection: _Connection | None = None
        self.watch_id = 0
        self.receive: trio.MemoryReceiveChannel | None = None

    async def establish(self) -> None:
        while True:
            try:
                connection = await self.client._connected()
                self.watch_id = next(connection.ids)
                send, self.receive = trio.open_memory_channel(1024)
                connection.watches[self.watch_id] = send
                self.connection = connection
                await connection.send({"id": self.watch_id,
                                       "watch": {**self.spec, "start_revision": self.next_revision}})
                created = await self.receive.receive()
            except (ConnectionLost, trio.EndOfChannel):
                await self._lost()
                continue
            self._check(created)
            if not self.next_revision:
                self.next_revision = created["revision"] + 1
            return

    def _check(self, message: dict) -> None:
        if message.get("canceled"):
            raise KVError(ErrorCode.COMPACTED, "required revision has been compacted",
                          compact_revision=message.get("compact_revision", 0))
        if "error" in message:
            raise KVError.from_wire(message["error"])

    async def _lost(self) -> None:
        if self.connection is not None:
            self.connection.watches.pop(self.watch_id, None)
            self.client._move_on(self.connection)
        await trio.sleep(RETRY_PAUSE_S)

    def __aiter__(self) -> _Watch:
        return self

    async def __anext__(self) -> dict:
        while True:
            try:
                message = await self.receive.receive()
            except trio.EndOfChannel:
                await self._lost()
                await self.establish()
                continue
            self._check(message)
            if "events" in message:
                self.next_revision = message["revision"] + 1
                return {"revision": message["revision"], "events": message["events"]}

    def close(self) -> None:
        if self.connection is not None and not self.connection.closed:
            self.connection.watches.pop(self.watch_id, None)
            self.client._nursery.start_soon(self._cancel, self.connection, self.watch_id)

    @staticmethod
    async def _cancel(connection: _Connection, watch_id: int) -> None:
        try:
            await connection.send({"id": next(connection.ids), "cancel_watch": watch_id})
        except ConnectionLost:
            pass
