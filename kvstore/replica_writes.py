"""Writes for the replica: group commit of every write of a loop turn, and the leader's own
lease proposals. A mixin of kvstore.replica.Replica, run on the Raft loop.

A batch is one `apply_batch` entry (msgpack [BATCH_VERSION, [command, ...]]) of at most
MAX_BATCH_BYTES; on a follower pysyncobj forwards it to the leader as one `apply_command` over
the peer connection it keeps. Results go to their waiters through `_deliveries`, each with the
write's timeline stamps (kvstore.timeline) filled in from the entry's.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from pysyncobj import FAIL_REASON

from kvstore import commands
from kvstore.codec import encode
from kvstore.errors import unavailable
from kvstore.requests import MAX_REQUEST_BYTES

Done = Callable[[Any], None]  # receives a result (a list of results for reads), or a KVError
BATCH_VERSION = 1
MAX_BATCH_BYTES = 4 * MAX_REQUEST_BYTES
LEASE_CHECK_S = 0.25
_LEADER = 2  # pysyncobj's _RAFT_STATE.LEADER
# FAIL_REASONs that prove the command was never appended; every other failure is ambiguous.
_NOT_APPLIED = {FAIL_REASON.QUEUE_FULL, FAIL_REASON.REQUEST_DENIED, FAIL_REASON.MISSING_LEADER}


class GroupCommit:
    """Mixin for Replica: needs _pending_lock, _pending_writes, _pending_reads, _kicked,
    _deliveries, _apply_stamps, _lease_proposal_due, machine, state_lock, timing,
    apply_batch and _start_reads."""

    def _propose_pending(self) -> None:
        with self._pending_lock:
            writes, self._pending_writes = self._pending_writes, []
            reads, self._pending_reads = self._pending_reads, []
            self._kicked = False
        now = time.perf_counter()
        start = 0
        while start < len(writes):  # group commit: as few batches as MAX_BATCH_BYTES allows
            end, size = start, 0
            while end < len(writes) and (end == start or size + _size_hint(writes[end][0]) <= MAX_BATCH_BYTES):
                size += _size_hint(writes[end][0])
                end += 1
            batch = writes[start:end]
            for _, _, stamps in batch:
                stamps["proposed"] = now
            self._propose([command for command, _, _ in batch], [(done, stamps) for _, done, stamps in batch])
            start = end
        if reads or self._remote_reads:
            self._start_reads(reads)

    def _propose(self, commands: list[dict], waiters: list[tuple[Done, dict]]) -> None:
        frame = encode([BATCH_VERSION, commands])

        def on_result(results, error):
            if error == FAIL_REASON.SUCCESS:
                if len(results) != len(waiters):  # the batch itself was refused (one error for all)
                    results = results[:1] * len(waiters)
                for (done, stamps), result in zip(waiters, results, strict=True):
                    stamps.update(self._apply_stamps)
                    self._deliveries.append((done, result))
            else:
                failure = unavailable(f"raft: {_fail_name(error)}", error not in _NOT_APPLIED)
                self._deliveries.extend((done, failure) for done, _ in waiters)

        self.apply_batch(frame, callback=on_result)

    def _on_state_changed(self, old_state: int, new_state: int) -> None:
        if new_state == _LEADER:  # became leader: rebase lease deadlines on this member's clock
            self._propose([commands.lease_promote(time.time(), self.timing.election_max_s)], [])

    def _propose_lease_work(self) -> None:
        now = time.time()
        if now < self._lease_proposal_due or not self._isLeader():
            return
        self._lease_proposal_due = now + LEASE_CHECK_S
        with self.state_lock:
            due = self.machine.leases.expired(now)
        if due:
            self._propose([commands.lease_expire(now)], [])


def _size_hint(command: dict) -> int:
    return len(command.get("value", b"")) + len(command.get("key", b"")) + 64


def _fail_name(code: int) -> str:
    for name in dir(FAIL_REASON):
        if not name.startswith("_") and getattr(FAIL_REASON, name) == code:
            return name
    return str(code)
