"""Snapshots of the whole state machine (pure): versioned msgpack, canonical, self-checking.

Layout (version 1): a map with
    format, version, revision, compact_revision, next_lease_id,
    base      [kv...]                 versions at or below the compact revision (one per key)
    changes   [[rev, [[type, kv, prev_kv|nil]...]]...]  every revision from the compact revision
    leases    [[id, ttl, deadline]...]                    sorted by id
    sessions  [[client_id, floor, [[seq, result]...]]...] least recently used first
where kv is [key, value, create_revision, mod_revision, version, lease].
Per-key history after the compaction point and each lease's key set are rebuilt, not stored:
the snapshot holds each fact once. Everything is in a fixed order, so two members in the same
state produce the same bytes (the determinism tests compare them).
"""

from __future__ import annotations

from typing import Any

from kvstore.codec import decode, encode
from kvstore.errors import KVError, invalid
from kvstore.leases import Lease
from kvstore.mvcc import Event, KeySpace, KeyValue
from kvstore.sessions import ClientSession
from kvstore.state_machine import StateMachine

SNAPSHOT_FORMAT = "ketch-kv-snapshot"
SNAPSHOT_VERSION = 1


def dump(machine: StateMachine) -> bytes:
    keys = machine.keys
    return encode({
        "format": SNAPSHOT_FORMAT,
        "version": SNAPSHOT_VERSION,
        "revision": keys.revision,
        "compact_revision": keys.compact_revision,
        "next_lease_id": machine.leases.next_id,
        "base": [list(kv) for kv in keys.base_versions()],
        "changes": [
            [rev, [[e.type, list(e.kv), list(e.prev_kv) if e.prev_kv else None] for e in events]]
            for rev, events in keys.changes_since(keys.compact_revision)
        ],
        "leases": [[lease.id, lease.ttl, lease.deadline]
                   for _, lease in sorted(machine.leases.leases.items())],
        "sessions": [[client_id, session.floor, list(session.results.items())]
                     for client_id, session in machine.sessions.clients.items()],
    })


def load(data: bytes) -> StateMachine:
    """Restore a state machine. Raises INVALID_ARGUMENT for anything that is not a snapshot."""
    doc = decode(data)
    if not isinstance(doc, dict) or doc.get("format") != SNAPSHOT_FORMAT:
        raise invalid("not a ketch kv snapshot")
    if doc.get("version") != SNAPSHOT_VERSION:
        raise invalid(f"unsupported snapshot version {doc.get('version')!r}")
    try:
        return _restore(doc)
    except KVError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise invalid(f"corrupt snapshot: {err.__class__.__name__}: {err}") from None


def _restore(doc: dict[str, Any]) -> StateMachine:
    machine = StateMachine()
    changes = [
        (rev, tuple(Event(t, KeyValue(*kv), KeyValue(*prev) if prev else None)
                    for t, kv, prev in events))
        for rev, events in doc["changes"]
    ]
    machine.keys = KeySpace.restore(
        doc["revision"], doc["compact_revision"], [KeyValue(*kv) for kv in doc["base"]], changes
    )
    for lease_id, ttl, deadline in doc["leases"]:
        machine.leases.leases[lease_id] = Lease(lease_id, ttl, deadline)
    machine.leases.next_id = doc["next_lease_id"]
    for kv in machine.keys.range(b"\0", b"\0").kvs:
        if kv.lease:
            machine.leases.attach(kv.lease, kv.key)
    for client_id, floor, results in doc["sessions"]:
        machine.sessions.clients[client_id] = ClientSession(dict(results), floor)
    return machine
