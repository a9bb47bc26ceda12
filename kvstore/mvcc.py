"""The multi-version key space (pure): keys, revisions, history, compaction, the watch feed.

Theory of operation (etcd v3's data model, https://etcd.io/docs/v3.4/learning/data_model/):

- One global ``revision``: 1 for an empty store, +1 for every write transaction that changes at
  least one key. All writes of one transaction share its revision.
- Every key keeps its history as a list of ``(revision, KeyValue | None)``; None is a tombstone.
  ``version`` is 1 on create and +1 per put; a delete ends the key's generation, and a key
  created again starts over at version 1 with a new ``create_revision``.
- ``compact(C)`` forgets history below C: for each key it keeps the newest version at or below C
  (unless that is a tombstone) and everything after. Reads at revisions below C, and watches
  starting below C, answer COMPACTED. Reads at C itself still work.
- The watch feed keeps, for every revision >= the compact revision, its events in the order the
  transaction made them, with the previous value of each key.

Writes happen between `start_write()` and `end_write()`. The caller (the state machine) has
validated everything beforehand, so a write never fails halfway: there is nothing to roll back.
Reads inside a write see the transaction's own earlier writes, as in etcd.
"""

from __future__ import annotations

from bisect import bisect_right
from operator import itemgetter
from typing import Iterator, NamedTuple

from sortedcontainers import SortedDict

from kvstore.errors import compacted, future_revision

PUT = "PUT"
DELETE = "DELETE"
# Rough bookkeeping cost of one stored version (revision, key record), for the db size estimate.
VERSION_OVERHEAD_BYTES = 48


class KeyValue(NamedTuple):
    key: bytes
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


class Event(NamedTuple):
    type: str  # PUT or DELETE
    kv: KeyValue  # for DELETE: the key and the deleting revision only, as etcd sends it
    prev_kv: KeyValue | None


class RangeResult(NamedTuple):
    kvs: list[KeyValue]
    count: int
    more: bool


_revision_of = itemgetter(0)


class KeySpace:
    def __init__(self) -> None:
        self.revision = 1
        self.compact_revision = 0
        # key -> [(revision, KeyValue | None), ...] oldest first
        self._history: SortedDict = SortedDict()
        # revision -> events of that revision; consecutive from _changes_first
        self._changes: list[tuple[Event, ...]] = []
        self._changes_first = 2
        self._pending: list[Event] | None = None
        self._write_revision = 0
        self.live_keys = 0
        self.history_bytes = 0

    # --- reads -------------------------------------------------------------------------------

    def check_read_revision(self, revision: int) -> None:
        """Raise unless a read at `revision` (0 = current) can be answered."""
        if revision == 0:
            return
        if revision > self.revision:
            raise future_revision(self.revision)
        if revision < self.compact_revision:
            raise compacted(self.compact_revision)

    def range(
        self, key: bytes, range_end: bytes | None, revision: int = 0, limit: int = 0
    ) -> RangeResult:
        """Live keys in etcd's interval [key, range_end), sorted, at `revision` (0 = current)."""
        self.check_read_revision(revision)
        at = revision or None
        kvs: list[KeyValue] = []
        count = 0
        for hist in self._histories(key, range_end):
            kv = _version_at(hist, at)
            if kv is None:
                continue
            count += 1
            if not limit or len(kvs) < limit:
                kvs.append(kv)
        return RangeResult(kvs, count, count > len(kvs))

    def get(self, key: bytes) -> KeyValue | None:
        hist = self._history.get(key)
        return hist[-1][1] if hist else None

    def _histories(self, key: bytes, range_end: bytes | None) -> Iterator[list]:
        if range_end is None:
            hist = self._history.get(key)
            if hist is not None:
                yield hist
            return
        if range_end == b"\0":
            keys = self._history.irange(minimum=key)
        elif range_end <= key:
            return
        else:
            keys = self._history.irange(minimum=key, maximum=range_end, inclusive=(True, False))
        history = self._history
        for k in keys:
            yield history[k]

    # --- writes ------------------------------------------------------------------------------

    def start_write(self) -> None:
        assert self._pending is None, "write already in progress"
        self._pending = []
        self._write_revision = self.revision + 1

    def end_write(self) -> tuple[Event, ...]:
        """Finish the write; the revision advances only if something changed."""
        events = tuple(self._pending)
        self._pending = None
        if events:
            self.revision = self._write_revision
            self._changes.append(events)
        return events

    def put(self, key: bytes, value: bytes, lease: int) -> KeyValue | None:
        """Write `key`; answer its previous live value."""
        rev = self._write_revision
        hist = self._history.get(key)
        prev = hist[-1][1] if hist else None
        if prev is None:
            kv = KeyValue(key, value, rev, rev, 1, lease)
            self.live_keys += 1
        else:
            kv = KeyValue(key, value, prev.create_revision, rev, prev.version + 1, lease)
        if hist is None:
            self._history[key] = [(rev, kv)]
        else:
            hist.append((rev, kv))
        self.history_bytes += len(key) + len(value) + VERSION_OVERHEAD_BYTES
        self._pending.append(Event(PUT, kv, prev))
        return prev

    def delete_range(self, key: bytes, range_end: bytes | None) -> list[KeyValue]:
        """Delete the live keys in the interval; answer what they held."""
        rev = self._write_revision
        deleted = []
        for hist in list(self._histories(key, range_end)):
            prev = hist[-1][1]
            if prev is None:
                continue
            hist.append((rev, None))
            self.live_keys -= 1
            self.history_bytes += len(prev.key) + VERSION_OVERHEAD_BYTES
            self._pending.append(Event(DELETE, KeyValue(prev.key, b"", 0, rev, 0, 0), prev))
            deleted.append(prev)
        return deleted

    # --- compaction and the watch feed ------------------------------------------------------

    def compact(self, revision: int) -> None:
        """Forget history below `revision` (etcd: error if <= the last compaction or > current)."""
        if revision <= self.compact_revision:
            raise compacted(self.compact_revision)
        if revision > self.revision:
            raise future_revision(self.revision)
        emptied = []
        size = 0
        for key, hist in self._history.items():
            keep_from = bisect_right(hist, revision, key=_revision_of) - 1
            if keep_from >= 0 and hist[keep_from][1] is None:
                keep_from += 1  # a tombstone at or below the compaction point is forgotten
            if keep_from > 0:
                del hist[:keep_from]
            if not hist:
                emptied.append(key)
                continue
            size += sum(len(key) + (len(kv.value) if kv else 0) + VERSION_OVERHEAD_BYTES
                        for _, kv in hist)
        for key in emptied:
            del self._history[key]
        drop = max(0, revision - self._changes_first)
        del self._changes[:drop]
        self._changes_first += drop
        self.compact_revision = revision
        self.history_bytes = size

    def changes_since(self, start_revision: int) -> Iterator[tuple[int, tuple[Event, ...]]]:
        """Every revision from `start_revision` on, with its events, in order.

        A start below the compact revision raises COMPACTED (a watcher must re-list)."""
        if start_revision < self.compact_revision:
            raise compacted(self.compact_revision)
        first = max(start_revision, self._changes_first)
        for offset in range(first - self._changes_first, len(self._changes)):
            yield self._changes_first + offset, self._changes[offset]

    # --- snapshot support -------------------------------------------------------------------

    def base_versions(self) -> Iterator[KeyValue]:
        """The versions at or below the compact revision: what no change record rebuilds."""
        for hist in self._history.values():
            for rev, kv in hist:
                if rev > self.compact_revision:
                    break
                yield kv

    @classmethod
    def restore(
        cls,
        revision: int,
        compact_revision: int,
        base: list[KeyValue],
        changes: list[tuple[int, tuple[Event, ...]]],
    ) -> KeySpace:
        """Rebuild from a snapshot: the base versions, then every change after the compaction."""
        space = cls()
        space.compact_revision = compact_revision
        for kv in base:
            space._history[kv.key] = [(kv.mod_revision, kv)]
            space.live_keys += 1
            space.history_bytes += len(kv.key) + len(kv.value) + VERSION_OVERHEAD_BYTES
        if changes:
            space._changes_first = changes[0][0]
        else:
            space._changes_first = revision + 1
        for rev, events in changes:
            space._changes.append(events)
            if rev <= compact_revision:
                continue  # already reflected in the base
            space._write_revision = rev
            for event in events:
                space._replay(rev, event)
        space.revision = revision
        return space

    def _replay(self, rev: int, event: Event) -> None:
        key = event.kv.key
        hist = self._history.setdefault(key, [])
        if event.type == PUT:
            if event.prev_kv is None:
                self.live_keys += 1
            hist.append((rev, event.kv))
            self.history_bytes += len(key) + len(event.kv.value) + VERSION_OVERHEAD_BYTES
        else:
            self.live_keys -= 1
            hist.append((rev, None))
            self.history_bytes += len(key) + VERSION_OVERHEAD_BYTES


def _version_at(hist: list, revision: int | None) -> KeyValue | None:
    if revision is None:
        return hist[-1][1]
    i = bisect_right(hist, revision, key=_revision_of) - 1
    return hist[i][1] if i >= 0 else None
