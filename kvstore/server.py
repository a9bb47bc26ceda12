"""A kv member's client port (trio): auth, requests in flight, watches, bad input.

Every connection must authenticate first with a cluster token (constant-time compare). After
that, each request runs in its own task, up to MAX_IN_FLIGHT per connection; when that many are
in flight the member stops reading from the connection (backpressure). Writes go through the
replica's group commit, linearizable reads through ReadIndex, serializable reads from local
state. A request that provably did nothing (no leader yet) waits for a leader and runs again,
within REQUEST_TIMEOUT_S. A frame that cannot be read (too long, not msgpack, not a map) gets
an error frame with id 0 and ends that connection only.

Time: operations that need the leader's time (lease grant, keepalive, time-to-live) are stamped
with this member's wall clock here; a client cannot supply one. Across VMs that makes lease
timing as good as the members' clock sync (NTP); the leader's expiry decisions and the
promote-on-election rebase bound the damage to that skew.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import time
from typing import Any, Awaitable, Callable

import prometheus_client
import trio

from kvstore import commands
from kvstore.errors import ErrorCode, KVError, invalid, unavailable
from kvstore.replica import Replica
from kvstore.requests import READ_OPS, parse_command
from kvstore.timeline import HOP_BUCKETS_S, READ_HOPS, WRITE_HOPS, hop_durations
from kvstore.wire import FrameReader, frame, receive_message

log = logging.getLogger("ketch.kv.server")

MAX_IN_FLIGHT = 256
WATCH_PUSH_BYTES = 512 * 1024  # a burst of changes (1,000 nodes registering) is sent in pieces of about this


def watch_batches(groups: list[dict], limit_bytes: int) -> list[list[dict]]:
    """Revision groups in order, cut into runs of about limit_bytes of keys and values (a group
    larger than that alone makes one run: a revision is never split)."""
    batches: list[list[dict]] = []
    size = limit_bytes
    for group in groups:
        weight = sum(len(e["kv"].get("key", b"")) + len(e["kv"].get("value", b"")) + 64 +
                     len((e.get("prev_kv") or {}).get("value", b"")) for e in group["events"])
        if size + weight > limit_bytes and size > 0:
            batches.append([])
            size = 0
        batches[-1].append(group)
        size += weight
    return batches
REQUEST_TIMEOUT_S = 5.0
READ_TIMED_OUT = ("no quorum confirmed the read index in time", False)  # (message, ambiguous)
WRITE_TIMED_OUT = ("the write was not committed in time; it may still apply", True)
RETRY_WAIT_S = 0.05  # after a failure that applied nothing: wait this long for a new leader, then retry
AUTH_TIMEOUT_S = 10.0
RECEIVE_BYTES = 64 * 1024
TIMED_OPS = {"lease_grant", "lease_keepalive", "lease_time_to_live"}
INTERNAL_OPS = {"lease_expire", "lease_promote"}  # proposed by the leader itself, never by clients

Send = Callable[[dict], Awaitable[None]]


class Reply:
    """A one-shot value for a trio task; set on the trio thread (ReplicaEvents.deliver)."""

    def __init__(self) -> None:
        self._event = trio.Event()
        self.value: Any = None

    def __call__(self, value: Any) -> None:
        self.value = value
        self._event.set()

    async def wait(self, timeout_s: float) -> Any:
        with trio.move_on_after(timeout_s):
            await self._event.wait()
            return self.value
        return None


class ReplicaEvents:
    """What Raft tells the trio side: results, a new applied revision, a new leader. A member
    runs Raft in its trio thread (Replica.run), so these are plain calls; from a Raft thread
    each is one TrioToken.run_sync_soon per loop turn, never one per request."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self._token = token
        self._trio_thread = threading.get_ident()
        self._revision_changed = trio.Event()
        self._leader_changed = trio.Event()

    def _soon(self, fn, *args) -> None:  # any thread
        if threading.get_ident() == self._trio_thread:
            fn(*args)
            return
        try:
            self._token.run_sync_soon(fn, *args)
        except trio.RunFinishedError:
            pass

    def deliver(self, deliveries: list) -> None:
        self._soon(_deliver_all, deliveries)

    def applied(self, revision: int) -> None:
        self._soon(self._wake_revision)

    def leader_changed(self) -> None:
        self._soon(self._wake_leader)

    def _wake_revision(self) -> None:
        self._revision_changed.set()
        self._revision_changed = trio.Event()

    def _wake_leader(self) -> None:
        self._leader_changed.set()
        self._leader_changed = trio.Event()

    async def wait_change(self) -> None:
        await self._revision_changed.wait()

    async def wait_leader_change(self, timeout_s: float) -> None:
        with trio.move_on_after(timeout_s):
            await self._leader_changed.wait()


def _deliver_all(deliveries: list) -> None:
    for done, value in deliveries:
        done(value)


class KVServer:
    def __init__(self, replica: Replica, tokens: set[str], name: str, feed: ReplicaEvents,
                 unsafe_local_reads: bool = False) -> None:
        self.replica = replica
        # A teaching switch (`ketch kv serve --unsafe-local-reads`): every read is served from
        # local state, as pysyncobj alone would. It breaks linearizability under partitions,
        # on purpose, so that the chaos harness has something to catch.
        self.unsafe_local_reads = unsafe_local_reads
        self.tokens = tokens
        self.name = name
        self.feed = feed
        self.connections = 0
        self.write_hops = prometheus_client.Histogram(
            "ketch_kv_write_hop_seconds", "A write's time per hop on the member it reached (kvstore.timeline).",
            ["hop"], buckets=HOP_BUCKETS_S, registry=None)
        self.read_hops = prometheus_client.Histogram(
            "ketch_kv_read_hop_seconds", "A linearizable read's time per hop (kvstore.timeline).",
            ["hop"], buckets=HOP_BUCKETS_S, registry=None)
        self._hop_children = {(histogram, hop): histogram.labels(hop)
                              for histogram, hops in ((self.write_hops, WRITE_HOPS), (self.read_hops, READ_HOPS))
                              for hop in hops[1:]}
        # etcd's member ids are 64-bit numbers; ours is derived from the name, stable across restarts
        self.member_id = int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") >> 1

    async def serve(self, host: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(port, host=host)
        log.info("event=listening member=%s address=%s:%s", self.name, host,
                 listeners[0].socket.getsockname()[1])
        await trio.serve_listeners(self.handle_connection, listeners, task_status=task_status)

    # --- one connection ---------------------------------------------------------------------

    async def handle_connection(self, stream: trio.SocketStream) -> None:
        """Serve one client. Nothing that happens on one connection may end the member: a
        vanished client or a bug in a request is logged and ends this connection only."""
        self.connections += 1
        try:
            await self._converse(stream)
        except Exception:  # includes ExceptionGroups from the request nursery
            log.exception("event=connection_error member=%s", self.name)
        finally:
            self.connections -= 1
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _converse(self, stream: trio.SocketStream) -> None:
        reader = FrameReader()
        send_lock = trio.Lock()

        async def send(message: dict) -> None:
            async with send_lock:
                try:
                    await stream.send_all(frame(message))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # the client is gone; its answer has nowhere to go

        if not await self._authenticate(stream, reader, send):
            return
        limiter = trio.Semaphore(MAX_IN_FLIGHT)
        async with trio.open_nursery() as nursery:
            watches: dict[int, trio.CancelScope] = {}
            while True:
                try:
                    message = await receive_message(stream, reader, RECEIVE_BYTES)
                except KVError as err:  # a frame we cannot read: say why, then hang up
                    log.info("event=bad_frame member=%s code=%s reason=%r", self.name, err.code, err.message)
                    with trio.move_on_after(1):
                        await send({"id": 0, "error": err.to_wire()})
                        await _drain(stream)
                    break
                if message is None:
                    break
                await limiter.acquire()
                nursery.start_soon(self._dispatch, message, send, limiter, watches, nursery)
            nursery.cancel_scope.cancel()

    async def _authenticate(self, stream, reader, send: Send) -> bool:
        with trio.move_on_after(AUTH_TIMEOUT_S):
            message = await receive_message(stream, reader, RECEIVE_BYTES)
            token = message.get("token") if message and message.get("type") == "auth" else None
            if isinstance(token, str) and any(hmac.compare_digest(token, t) for t in self.tokens):
                await send({"type": "auth_ok", "member": self.name})
                return True
            if message is None:
                return False  # connected and left without a word (a port probe)
            log.info("event=auth_failed member=%s", self.name)
            await send({"id": 0, "error": KVError(ErrorCode.UNAUTHENTICATED,
                                                   "a valid cluster token is required").to_wire()})
        return False

    # --- one request --------------------------------------------------------------------------

    async def _dispatch(self, message: dict, send: Send, limiter: trio.Semaphore,
                        watches: dict, nursery: trio.Nursery) -> None:
        request_id = message.get("id")
        try:
            if not isinstance(request_id, int) or isinstance(request_id, bool):
                raise invalid("every request needs an integer id")
            if "cmd" in message:
                reply = await self.execute(message["cmd"], bool(message.get("serializable")))
            elif "watch" in message:
                limiter.release()
                limiter = None
                async def push(update: dict) -> None:
                    await send({"id": request_id, **update})
                await self.run_watch(request_id, message["watch"], push, watches)
                return
            elif "cancel_watch" in message:
                scope = watches.pop(message["cancel_watch"], None)
                if scope is not None:
                    scope.cancel()
                reply = {"canceled": scope is not None}
            elif "admin" in message:
                reply = await self._admin(message)
            else:
                raise invalid("unknown request")
            await send({"id": request_id, "result": reply})  # failures arrive as KVError
        except KVError as err:
            await send({"id": request_id if isinstance(request_id, int) else 0, "error": err.to_wire()})
        finally:
            if limiter is not None:
                limiter.release()

    async def execute(self, command: Any, serializable: bool = False) -> dict:
        """Run one client command the way the client port does (the gateway uses it too)."""
        if not isinstance(command, dict):
            raise invalid("cmd must be a map")
        op = command.get("op")
        if op in INTERNAL_OPS:
            raise invalid(f"{op} is proposed by the leader, not by clients")
        if op in TIMED_OPS:
            command = {**command, "now": time.time()}
        parse_command(command)  # refuse malformed commands here, before they cost a log entry
        if op in READ_OPS and (serializable or self.unsafe_local_reads):
            result = self.replica.read_local([command])[0]
        elif op in READ_OPS:
            result = await self._until_answered(self.replica.submit_reads, [command], self.read_hops, READ_HOPS,
                                                READ_TIMED_OUT)
            result = result[0] if isinstance(result, list) else result
        else:
            result = await self._until_answered(self.replica.submit_write, command, self.write_hops, WRITE_HOPS,
                                                WRITE_TIMED_OUT)
        if isinstance(result, KVError):
            raise result
        return result

    async def _until_answered(self, submit, request, histogram, hops: tuple[str, ...],
                              timed_out: tuple[str, bool]) -> Any:
        """Submit until the replica answers. An answer that proves nothing was done (no leader
        yet, the leader changed before the request was appended, a read index not given) is
        retried here as soon as a leader is known, so a client is answered once a new leader
        is elected instead of waiting out its own timeout. An ambiguous failure goes back."""
        stamps = {"received": time.perf_counter()}
        deadline = trio.current_time() + REQUEST_TIMEOUT_S
        while True:
            reply = Reply()
            submit(request, reply, stamps)
            result = await reply.wait(max(0.0, deadline - trio.current_time()))
            if result is None:
                raise unavailable(*timed_out)
            if not (isinstance(result, KVError) and result.code == ErrorCode.UNAVAILABLE
                    and not result.details.get("ambiguous")) or trio.current_time() >= deadline:
                stamps["answered"] = time.perf_counter()
                for hop, seconds in hop_durations(hops, stamps):
                    self._hop_children[histogram, hop].observe(seconds)
                return result
            await self.feed.wait_leader_change(max(0.0, min(RETRY_WAIT_S, deadline - trio.current_time())))

    async def run_watch(self, watch_id: int, spec: Any, push: Send, watches: dict) -> None:
        """Push {"created", "revision"}, then {"revision", "events"} whenever events for the
        watched keys are applied (revision = the store's revision they were read at; each
        event's kv has its own mod_revision; a revision is never split), until cancelled;
        {"canceled", "compact_revision"} if the start revision is compacted. Both the msgpack port
        and the JSON gateway use this loop."""
        if not isinstance(spec, dict) or not isinstance(spec.get("key"), bytes) or not spec["key"]:
            raise invalid("watch needs a non-empty bytes key")
        key, range_end = spec["key"], spec.get("range_end") or None
        prev_kv = bool(spec.get("prev_kv"))
        start = spec.get("start_revision") or 0
        if not isinstance(start, int) or start < 0:
            raise invalid("start_revision must be a non-negative integer")
        next_revision = start or self.replica.revision + 1
        with trio.CancelScope() as scope:
            watches[watch_id] = scope
            await push({"created": True, "revision": self.replica.revision})
            while True:
                try:
                    groups, read_at = self.replica.watch_events(next_revision, key, range_end, prev_kv)
                except KVError as err:  # compacted: the watcher must re-read and start again
                    await push({"canceled": True, "compact_revision": err.details.get("compact_revision", 0)})
                    return
                # like etcd: what is ready goes out together, never half a revision, in pushes of
                # about WATCH_PUSH_BYTES; a push short of the end says the revision of its own last
                # events (a watcher takes "revision" as how far it has seen)
                batches = watch_batches(groups, WATCH_PUSH_BYTES)
                for number, batch in enumerate(batches, 1):
                    seen = read_at if number == len(batches) else batch[-1]["revision"]
                    await push({"revision": seen, "events": [e for g in batch for e in g["events"]]})
                next_revision = max(next_revision, read_at + 1)
                if self.replica.revision < next_revision:
                    await self.feed.wait_change()
        watches.pop(watch_id, None)

    async def _admin(self, message: dict) -> dict:
        action = message.get("admin")
        if action == "status":
            state = self.replica.read_local([commands.status()])[0]
            return {**state, **self.replica.raft_status(), "member": self.name}
        if action == "member_list":
            return {"members": self.replica.members(), "leader": self.replica.leader()}
        if action in ("member_add", "member_remove"):
            address = message.get("peer")
            if not isinstance(address, str) or ":" not in address:
                raise invalid("peer must be host:port")
            reply = Reply()
            change = self.replica.addNodeToCluster if action == "member_add" else self.replica.removeNodeFromCluster
            change(address, callback=lambda result, error: self.feed.deliver([(reply, error)]))
            error = await reply.wait(REQUEST_TIMEOUT_S)
            if error != 0:
                raise unavailable(f"membership change failed (raft error {error})", ambiguous=error is None)
            return {"members": self.replica.members()}
        raise invalid(f"unknown admin request {action!r}")


async def _drain(stream: trio.SocketStream) -> None:
    """Read and drop what the client still sends until it hangs up (the caller bounds the time):
    closing with unread bytes makes the kernel send a reset, which can destroy the error frame
    just sent before the client reads it."""
    try:
        await stream.send_eof()
        while await stream.receive_some(RECEIVE_BYTES):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        pass
