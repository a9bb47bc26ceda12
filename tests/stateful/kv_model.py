"""A deliberately naive model of the kv store: a list holding every revision's full key map.

It shares no code with `kvstore` beyond the wire format, so a rule broken in the store shows
up as a disagreement. Slow on purpose: every write copies the whole map.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

MIN_TTL = 2
WINDOW = 64  # results remembered per client (kvstore.sessions.MAX_RESULTS_PER_CLIENT)


class ModelError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class KV(NamedTuple):
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


def inside(key: bytes, start: bytes, end: bytes | None) -> bool:
    if not end:
        return key == start
    if end == b"\0":
        return key >= start
    return start <= key < end


def holds(actual: Any, result: str, expected: Any) -> bool:
    return {"=": actual == expected, "!=": actual != expected,
            "<": actual < expected, ">": actual > expected}[result]


class Model:
    def __init__(self) -> None:
        self.maps: list[dict[bytes, KV] | None] = [None, {}]  # maps[r]: the keys at revision r
        self.events: dict[int, list[tuple]] = {}
        self.compact_revision = 0
        self.leases: dict[int, list] = {}  # id -> [ttl, deadline]
        self.next_lease = 1
        self.results: dict[tuple, dict] = {}
        self.recent: dict[Any, list[int]] = {}  # client -> its recorded seqs, oldest first

    @property
    def revision(self) -> int:
        return len(self.maps) - 1

    def current(self) -> dict[bytes, KV]:
        return self.maps[-1]

    # --- reads ----------------------------------------------------------------------------

    def check_revision(self, revision: int) -> None:
        if revision > self.revision:
            raise ModelError("FUTURE_REVISION")
        if revision and revision < self.compact_revision:
            raise ModelError("COMPACTED")

    def range(self, key, end, revision=0, limit=0, keys_only=False, count_only=False, m=None):
        self.check_revision(revision)
        m = m if m is not None else self.maps[revision or self.revision]
        found = [(k, kv) for k, kv in sorted(m.items()) if inside(k, key, end)]
        shown = found[:limit] if limit else found
        kvs = [] if count_only else [(k, b"" if keys_only else kv.value, *kv[1:]) for k, kv in shown]
        return {"kvs": kvs, "count": len(found), "more": len(shown) < len(found) and not count_only}

    # --- writes ---------------------------------------------------------------------------

    def _commit(self, m: dict, events: list) -> None:
        if events:
            self.maps.append(m)
            self.events[self.revision] = events

    def put(self, m, key, value, lease, rev, events):
        prev = m.get(key)
        kv = KV(value, prev.create_revision if prev else rev, rev, prev.version + 1 if prev else 1, lease)
        m[key] = kv
        events.append(("PUT", key, kv, prev))
        return prev

    def delete(self, m, key, end, rev, events):
        gone = []
        for k in sorted(m):
            if inside(k, key, end):
                prev = m.pop(k)
                events.append(("DELETE", k, None, prev))
                gone.append((k, prev))
        return gone

    def do_put(self, key, value, lease):
        if lease and lease not in self.leases:
            raise ModelError("LEASE_NOT_FOUND")
        m, events = dict(self.current()), []
        prev = self.put(m, key, value, lease, self.revision + 1, events)
        self._commit(m, events)
        return prev

    def do_delete(self, key, end):
        m, events = dict(self.current()), []
        gone = self.delete(m, key, end, self.revision + 1, events)
        self._commit(m, events)
        return gone

    # --- transactions ---------------------------------------------------------------------

    def compare_holds(self, cmp) -> bool:
        found = [kv for k, kv in self.current().items() if inside(k, cmp["key"], cmp.get("range_end"))]
        if not found:
            return cmp["target"] != "value" and holds(0, cmp["result"], cmp["value"])
        return all(holds(getattr(kv, cmp["target"]), cmp["result"], cmp["value"]) for kv in found)

    def path(self, txn) -> tuple[bool, list]:
        ok = all(self.compare_holds(cmp) for cmp in txn.get("compare", []))
        ops = [("txn", self.path(op)) if op["op"] == "txn" else (op["op"], op)
               for op in txn["success" if ok else "failure"]]
        return ok, ops

    def writes_are_unique(self, ops: list[dict]) -> tuple[set, list]:
        """etcd's checkIntervals, restated: nested txns are checked in order; each one's puts may
        not repeat a put seen so far or fall in a delete of this level or of an earlier nested
        txn (its then and else may share keys); its deletes then count for what follows; last,
        this level's own puts. Order-dependent, as in etcd. Raises INVALID_ARGUMENT."""
        puts: set = set()
        dels = [(op["key"], op.get("range_end")) for op in ops if op["op"] == "delete_range"]

        def add(key, shared=()):
            if (key in puts and key not in shared) or any(inside(key, k, e) for k, e in dels):
                raise ModelError("INVALID_ARGUMENT")
            puts.add(key)

        for op in ops:
            if op["op"] == "txn":
                then_puts, then_dels = self.writes_are_unique(op["success"])
                else_puts, else_dels = self.writes_are_unique(op["failure"])
                for key in then_puts:
                    add(key)
                for key in else_puts:
                    add(key, shared=then_puts)
                dels += then_dels + else_dels
        for op in ops:
            if op["op"] == "put":
                add(op["key"])
        return puts, dels

    def do_txn(self, txn):
        self.writes_are_unique(txn["success"])
        self.writes_are_unique(txn["failure"])
        ok, ops = self.path(txn)
        self._check_path(ops)
        m, events = dict(self.current()), []
        out = self._run(ops, m, events, ok)
        self._commit(m, events)
        return out

    def _check_path(self, ops):
        for kind, op in ops:
            if kind == "txn":
                self._check_path(op[1])
            elif kind == "put" and op.get("lease") and op["lease"] not in self.leases:
                raise ModelError("LEASE_NOT_FOUND")
            elif kind == "range":
                self.check_revision(op.get("revision", 0))

    def _run(self, ops, m, events, ok):
        rev = self.revision + 1
        responses = []
        for kind, op in ops:
            if kind == "txn":
                responses.append(("txn", self._run(op[1], m, events, op[0])))
            elif kind == "put":
                responses.append(("put", self.put(m, op["key"], op["value"], op.get("lease", 0), rev, events)))
            elif kind == "delete_range":
                responses.append(("delete", self.delete(m, op["key"], op.get("range_end"), rev, events)))
            else:
                at = op.get("revision", 0)
                responses.append(("range", self.range(op["key"], op.get("range_end"), at,
                                                      op.get("limit", 0), op.get("keys_only", False),
                                                      op.get("count_only", False), m=None if at else m)))
        return ok, responses

    # --- compaction, watch ----------------------------------------------------------------

    def compact(self, revision):
        if revision <= 0:
            raise ModelError("INVALID_ARGUMENT")
        if revision <= self.compact_revision:
            raise ModelError("COMPACTED")
        if revision > self.revision:
            raise ModelError("FUTURE_REVISION")
        self.compact_revision = revision

    def watch(self, start):
        if start < self.compact_revision:
            raise ModelError("COMPACTED")
        return [(r, self.events[r]) for r in range(max(start, 2), self.revision + 1)]

    # --- leases ---------------------------------------------------------------------------

    def grant(self, ttl, now, lease_id=0):
        if lease_id in self.leases:
            raise ModelError("INVALID_ARGUMENT")
        if not lease_id:
            while self.next_lease in self.leases:
                self.next_lease += 1
            lease_id = self.next_lease
            self.next_lease += 1
        ttl = max(ttl, MIN_TTL)
        self.leases[lease_id] = [ttl, now + ttl]
        return lease_id, ttl

    def revoke(self, lease_id):
        if lease_id not in self.leases:
            raise ModelError("LEASE_NOT_FOUND")
        attached = sorted(k for k, kv in self.current().items() if kv.lease == lease_id)
        m, events = dict(self.current()), []
        for key in attached:
            self.delete(m, key, None, self.revision + 1, events)
        self._commit(m, events)
        del self.leases[lease_id]

    def keepalive(self, lease_id, now):
        if lease_id not in self.leases or self.leases[lease_id][1] <= now:
            raise ModelError("LEASE_NOT_FOUND")
        self.leases[lease_id][1] = now + self.leases[lease_id][0]
        return self.leases[lease_id][0]

    def expire(self, now):
        gone = sorted(i for i, (_, deadline) in self.leases.items() if deadline <= now)
        for lease_id in gone:
            self.revoke(lease_id)
        return gone

    def promote(self, now, extend):
        for lease in self.leases.values():
            lease[1] = now + lease[0] + extend

    def time_to_live(self, lease_id, now):
        if lease_id not in self.leases:
            return -1, 0, []
        ttl, deadline = self.leases[lease_id]
        left = math.ceil(deadline - now) if deadline > now else -1
        return left, ttl, sorted(k for k, kv in self.current().items() if kv.lease == lease_id)

    # --- exactly once ---------------------------------------------------------------------

    def remember(self, client, seq, result):
        self.results[(client, seq)] = result
        self.recent.setdefault(client, []).append(seq)
        del self.recent[client][:-WINDOW]
