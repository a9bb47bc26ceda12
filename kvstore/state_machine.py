"""The replicated state machine (pure): `apply(command) -> result`, etcd v3 semantics.

Theory of operation:
- Every member applies the same commands in the same order and so holds the same state: nothing
  here reads a clock, does I/O or draws a random number (lease time arrives in the command).
- A command either applies whole or raises `KVError` and changes nothing. `parse_command`
  checks shape and size; then everything that depends on state (txn path, leases, read
  revisions) is checked; only then is anything written.
- A transaction decides its whole path first, nested txns included, against the state as it was
  before the transaction (etcd's compareToPath), then runs the chosen ops in order; its reads
  see its own earlier writes, and all its writes share one revision.
- A write tagged (client_id, seq) that was applied before returns the recorded result.
- Results are plain dicts of bytes, ints, bools and lists: ready for msgpack.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from kvstore import requests as rq
from kvstore.errors import KVError
from kvstore.leases import LeaseTable
from kvstore.mvcc import PUT, Event, KeySpace, KeyValue
from kvstore.sessions import SessionTable


def kv_to_wire(kv: KeyValue, keys_only: bool = False) -> dict[str, Any]:
    return {
        "key": kv.key,
        "value": b"" if keys_only else kv.value,
        "create_revision": kv.create_revision,
        "mod_revision": kv.mod_revision,
        "version": kv.version,
        "lease": kv.lease,
    }


def event_to_wire(event: Event) -> dict[str, Any]:
    wire = {"type": event.type, "kv": kv_to_wire(event.kv)}
    if event.prev_kv is not None:
        wire["prev_kv"] = kv_to_wire(event.prev_kv)
    return wire


class TxnPlan(NamedTuple):
    """The branch a transaction takes, with the plans of the nested transactions in it."""

    succeeded: bool
    ops: tuple[Any, ...]  # requests, with nested TxnRequests replaced by their TxnPlans


class StateMachine:
    def __init__(self) -> None:
        self.keys = KeySpace()
        self.leases = LeaseTable()
        self.sessions = SessionTable()
        self._handlers: dict[str, Callable[[Any], dict[str, Any]]] = {
            "range": self._range,
            "put": self._put,
            "delete_range": self._delete_range,
            "txn": self._txn,
            "compact": self._compact,
            "lease_grant": self._lease_grant,
            "lease_revoke": self._lease_revoke,
            "lease_keepalive": self._lease_keepalive,
            "lease_expire": self._lease_expire,
            "lease_promote": self._lease_promote,
            "lease_time_to_live": self._lease_time_to_live,
            "lease_leases": self._lease_leases,
            "status": self._status,
        }

    @property
    def revision(self) -> int:
        return self.keys.revision

    # --- the entry point --------------------------------------------------------------------

    def apply(self, command: Any) -> dict[str, Any]:
        """Apply one wire command. Raises `KVError` (and then nothing changed)."""
        cmd = rq.parse_command(command)
        if cmd.client_id is not None:
            recorded = self.sessions.recorded(cmd.client_id, cmd.seq)
            if recorded is not None:
                return recorded
        result = self._handlers[cmd.op](cmd.request)
        result["header"] = {"revision": self.keys.revision}
        if cmd.client_id is not None:
            self.sessions.record(cmd.client_id, cmd.seq, result)
        return result

    def apply_safely(self, command: Any) -> dict[str, Any] | KVError:
        """Like `apply`, but a failure is returned (the exception itself), not raised: one
        command of a batch failing must not stop the others. It meets the wire as an error frame."""
        try:
            return self.apply(command)
        except KVError as err:
            return err

    # --- key-value ops ----------------------------------------------------------------------

    def _range(self, req: rq.RangeRequest) -> dict[str, Any]:
        result = self.keys.range(req.key, req.range_end, req.revision, req.limit)
        kvs = [] if req.count_only else [kv_to_wire(kv, req.keys_only) for kv in result.kvs]
        return {"kvs": kvs, "count": result.count, "more": result.more and not req.count_only}

    def _put(self, req: rq.PutRequest) -> dict[str, Any]:
        if req.lease:
            self.leases.require(req.lease)
        self.keys.start_write()
        prev = self.keys.put(req.key, req.value, req.lease)
        self._track_leases(self.keys.end_write())
        return {"prev_kv": kv_to_wire(prev)} if req.prev_kv and prev is not None else {}

    def _delete_range(self, req: rq.DeleteRangeRequest) -> dict[str, Any]:
        self.keys.start_write()
        body = self._do_delete(req)
        self._track_leases(self.keys.end_write())
        return body

    def _do_delete(self, req: rq.DeleteRangeRequest) -> dict[str, Any]:
        deleted = self.keys.delete_range(req.key, req.range_end)
        body: dict[str, Any] = {"deleted": len(deleted)}
        if req.prev_kv:
            body["prev_kvs"] = [kv_to_wire(kv) for kv in deleted]
        return body

    def _track_leases(self, events: tuple[Event, ...]) -> None:
        """Keep each lease's key set in step with the writes that just happened."""
        for event in events:
            prev = event.prev_kv
            if prev is not None and prev.lease:
                self.leases.detach(prev.lease, prev.key)
            if event.type == PUT and event.kv.lease:
                self.leases.attach(event.kv.lease, event.kv.key)

    # --- transactions -----------------------------------------------------------------------

    def _txn(self, req: rq.TxnRequest) -> dict[str, Any]:
        plan = self._plan(req)
        self._check_plan(plan)
        self.keys.start_write()
        body = self._run_plan(plan)
        self._track_leases(self.keys.end_write())
        return body

    def _plan(self, req: rq.TxnRequest) -> TxnPlan:
        succeeded = all(self._compare_holds(c) for c in req.compare)
        branch = req.success if succeeded else req.failure
        ops = tuple(self._plan(op) if isinstance(op, rq.TxnRequest) else op for op in branch)
        return TxnPlan(succeeded, ops)

    def _compare_holds(self, cmp: rq.Compare) -> bool:
        kvs = self.keys.range(cmp.key, cmp.range_end).kvs
        if not kvs:
            # etcd: a missing key has no value to compare, and zero for every number.
            return cmp.target != "value" and _compare(0, cmp.result, cmp.value)
        # A compare over a range holds only if it holds for every key in it.
        return all(_compare(getattr(kv, cmp.target), cmp.result, cmp.value) for kv in kvs)

    def _check_plan(self, plan: TxnPlan) -> None:
        for op in plan.ops:
            if isinstance(op, TxnPlan):
                self._check_plan(op)
            elif isinstance(op, rq.PutRequest) and op.lease:
                self.leases.require(op.lease)
            elif isinstance(op, rq.RangeRequest):
                self.keys.check_read_revision(op.revision)

    def _run_plan(self, plan: TxnPlan) -> dict[str, Any]:
        responses = []
        for op in plan.ops:
            if isinstance(op, TxnPlan):
                responses.append({"response_txn": self._run_plan(op)})
            elif isinstance(op, rq.PutRequest):
                prev = self.keys.put(op.key, op.value, op.lease)
                body = {"prev_kv": kv_to_wire(prev)} if op.prev_kv and prev is not None else {}
                responses.append({"response_put": body})
            elif isinstance(op, rq.DeleteRangeRequest):
                responses.append({"response_delete_range": self._do_delete(op)})
            else:
                responses.append({"response_range": self._range(op)})
        return {"succeeded": plan.succeeded, "responses": responses}

    # --- compaction -------------------------------------------------------------------------

    def _compact(self, req: rq.CompactRequest) -> dict[str, Any]:
        self.keys.compact(req.revision)
        return {}

    # --- leases -----------------------------------------------------------------------------

    def _lease_grant(self, req: rq.LeaseGrantRequest) -> dict[str, Any]:
        lease = self.leases.grant(req.id, req.ttl, req.now)
        return {"id": lease.id, "ttl": lease.ttl}

    def _lease_revoke(self, req: rq.LeaseRevokeRequest) -> dict[str, Any]:
        self.leases.require(req.id)
        self._revoke(req.id)
        return {}

    def _revoke(self, lease_id: int) -> None:
        """Delete the lease's keys in one revision (none if it has no keys), then the lease."""
        self.keys.start_write()
        for key in sorted(self.leases.leases[lease_id].keys):
            self.keys.delete_range(key, None)
        self._track_leases(self.keys.end_write())
        self.leases.remove(lease_id)

    def _lease_keepalive(self, req: rq.LeaseKeepAliveRequest) -> dict[str, Any]:
        lease = self.leases.check_alive(req.id, req.now)
        self.leases.keepalive(lease, req.now)
        return {"id": lease.id, "ttl": lease.ttl}

    def _lease_expire(self, req: rq.LeaseExpireRequest) -> dict[str, Any]:
        expired = self.leases.expired(req.now)
        for lease_id in expired:  # one revision per lease, as etcd revokes them one by one
            self._revoke(lease_id)
        return {"revoked": expired}

    def _lease_promote(self, req: rq.LeasePromoteRequest) -> dict[str, Any]:
        self.leases.promote(req.now, req.extend)
        return {}

    def _lease_time_to_live(self, req: rq.LeaseTimeToLiveRequest) -> dict[str, Any]:
        lease = self.leases.leases.get(req.id)
        if lease is None:  # etcd answers TTL -1 rather than an error
            return {"id": req.id, "ttl": -1, "granted_ttl": 0}
        body: dict[str, Any] = {"id": lease.id, "ttl": lease.remaining_s(req.now),
                                "granted_ttl": lease.ttl}
        if req.keys:
            body["keys"] = sorted(lease.keys)
        return body

    def _lease_leases(self, req: rq.LeaseLeasesRequest) -> dict[str, Any]:
        return {"leases": [{"id": lease_id} for lease_id in sorted(self.leases.leases)]}

    def _status(self, req: rq.StatusRequest) -> dict[str, Any]:
        return {
            "revision": self.keys.revision,
            "compact_revision": self.keys.compact_revision,
            "keys": self.keys.live_keys,
            "leases": len(self.leases),
            "db_size": self.keys.history_bytes,
        }

    # --- the watch feed ---------------------------------------------------------------------

    def watch_events(
        self, start_revision: int, key: bytes, range_end: bytes | None = None,
        prev_kv: bool = False,
    ) -> list[dict[str, Any]]:
        """Replay: events for keys in [key, range_end) from `start_revision` on, grouped by
        revision: [{"revision": r, "events": [...]}]. Raises COMPACTED below the compaction."""
        if start_revision <= 0:
            start_revision = self.keys.revision + 1  # etcd: revision 0 means "from now on"
        out = []
        for revision, events in self.keys.changes_since(start_revision):
            matching = [event_to_wire(e) if prev_kv else event_to_wire(e._replace(prev_kv=None))
                        for e in events if rq.in_range(e.kv.key, key, range_end)]
            if matching:
                out.append({"revision": revision, "events": matching})
        return out


def _compare(actual: Any, result: str, expected: Any) -> bool:
    """etcd's compare results; the parser has made sure both sides have the target's type."""
    if result == "=":
        return actual == expected
    if result == "!=":
        return actual != expected
    if result == "<":
        return actual < expected
    return actual > expected
