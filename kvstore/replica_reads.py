"""Linearizable reads for the replica: ReadIndex (Raft dissertation §6.4) glued to pysyncobj.

The bookkeeping is kvstore.read_index (pure); this mixin feeds it from the Raft loop of
kvstore.replica.Replica and reads pysyncobj's state. Everything here runs on the Raft loop.
- A leader starts at most one heartbeat round per loop turn for every read that arrived
  meanwhile, its own and those followers asked for; `_queue_send` tags each AppendEntries
  with the newest round number, and followers echo the tag in their answers.
- A follower sends one `read_index` request per loop turn to the leader it knows and serves
  the reads locally once it has applied the index it was given.
- Reads wait in an AppliedGate and run right after the entries they must see are applied.
- Failures (no leader, leadership lost, a round not confirmed in READ_TIMEOUT_S) are never
  ambiguous: a read that fails read nothing, and the server may retry it at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

from kvstore.errors import unavailable

READ_TIMEOUT_S = 5.0  # a read index not confirmed by then fails (not ambiguous: nothing was read)


@dataclass
class ReadWaiter:
    commands: list[dict]
    done: Callable[[Any], None]
    stamps: dict


class LinearizableReads:
    """Mixin for Replica: needs _rounds, _rounds_term, _remote_reads, _forwarded, _gate,
    _pending_reads, _pending_lock, _deliveries, machine, state_lock and _send."""

    def _start_reads(self, reads: list[ReadWaiter]) -> None:
        now = time.monotonic()
        if self._isLeader():
            if self.raftCommitIndex < (self._SyncObj__noopIDx or 0):
                # Not yet committed an entry of this term: the commit index may still be behind
                # what earlier leaders committed (§6.4 step 1). Wait for the no-op.
                with self._pending_lock:
                    self._pending_reads[:0] = reads
                return
            if self._rounds_term != self.raftCurrentTerm:
                for old in self._rounds.drop_all():
                    self._fail_reads(old.waiters, "this member stopped leading")
                self._rounds_term = self.raftCurrentTerm
            remote, self._remote_reads = self._remote_reads, []
            self._rounds.start(self.raftCommitIndex, reads + remote, now)
            self._SyncObj__sendAppendEntries()  # the heartbeat round, tagged with round_.number
            self._confirm_rounds()  # a member alone is its own majority
            return
        for node, request_id in self._remote_reads:
            self._send(node, {"type": "read_index_resp", "id": request_id, "error": "not the leader"})
        self._remote_reads = []
        if not reads:
            return
        leader = self._getLeader()
        if leader is None:
            self._fail_reads(reads, "no leader")
            return
        request_id = self._forwarded.add(leader, reads, now)
        self._send(leader, {"type": "read_index", "id": request_id})

    def _confirm_rounds(self) -> None:
        if not self._isLeader() or self.raftCurrentTerm != self._rounds_term:
            return  # dropped and failed after this tick
        now = time.perf_counter()
        for round_ in self._rounds.confirmed(self.otherNodes):
            for waiter in round_.waiters:
                if isinstance(waiter, ReadWaiter):
                    waiter.stamps["confirmed"] = now
                    self._gate.wait(round_.read_index, waiter)
                else:
                    node, request_id = waiter
                    self._send(node, {"type": "read_index_resp", "id": request_id, "index": round_.read_index})

    def _on_read_index(self, node, message: dict) -> None:
        if isinstance(message.get("id"), int):
            self._remote_reads.append((node, message["id"]))

    def _on_read_index_resp(self, node, message: dict) -> None:
        request = self._forwarded.answered(message.get("id"))
        if request is None:
            return
        index = message.get("index")
        if not isinstance(index, int):
            self._fail_reads(request.waiters, f"the leader refused: {message.get('error')}")
            return
        now = time.perf_counter()
        for waiter in request.waiters:
            waiter.stamps["confirmed"] = now
            self._gate.wait(index, waiter)

    def _release_reads(self) -> None:
        ready = self._gate.release(self.raftLastApplied)
        if not ready:
            return
        now = time.perf_counter()
        with self.state_lock:
            for waiter in ready:
                waiter.stamps["applied"] = now
                self._deliveries.append(
                    (waiter.done, [self.machine.apply_safely(command) for command in waiter.commands]))

    def _fail_reads(self, waiters: list, reason: str) -> None:
        for waiter in waiters:
            if isinstance(waiter, ReadWaiter):
                self._deliveries.append((waiter.done, unavailable(f"linearizable read: {reason}", ambiguous=False)))
            else:
                node, request_id = waiter
                self._send(node, {"type": "read_index_resp", "id": request_id, "error": reason})

