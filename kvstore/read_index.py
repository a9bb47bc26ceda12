"""ReadIndex bookkeeping (Raft dissertation §6.4), pure: the replica feeds it events and time.

A linearizable read must see every write acknowledged before it arrived. The leader:
1. records its commit index as the read index (it has committed an entry of its own term, so
   that index covers every committed write);
2. confirms it is still the leader *after* the read arrived: it numbers a heartbeat round,
   tags the AppendEntries it sends from then on with that number, and waits until a majority
   (itself included) has answered an AppendEntries tagged with it or a later number. A reply
   to an older AppendEntries proves nothing about now, which is why rounds are numbered
   rather than timed;
3. waits until it has applied the read index, then reads its state.
Every read that arrived while one round was being formed shares it. A follower asks the leader
for a read index (one request for all reads of a loop turn), waits until it has applied that
index itself, and reads locally (etcd's follower reads).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Hashable, Iterable


@dataclass
class Round:
    number: int
    read_index: int
    started_s: float
    waiters: list[Any] = field(default_factory=list)


class LeaderRounds:
    """The leader's heartbeat rounds; numbers only grow, for the life of the process."""

    def __init__(self) -> None:
        self.last_number = 0
        self._acked: dict[Hashable, int] = {}
        self._rounds: deque[Round] = deque()

    def start(self, read_index: int, waiters: list[Any], now_s: float) -> Round:
        self.last_number += 1
        round_ = Round(self.last_number, read_index, now_s, waiters)
        self._rounds.append(round_)
        return round_

    def acked(self, node: Hashable, number: int) -> None:
        """`node` answered an AppendEntries tagged with `number` (TCP keeps them in order)."""
        if number > self._acked.get(node, 0):
            self._acked[node] = number

    def confirmed(self, voters: Iterable[Hashable]) -> list[Round]:
        """Rounds a majority of the voting members (this one and `voters`) have answered."""
        voters = list(voters)
        needed = (len(voters) + 1) // 2 + 1
        done = []
        while self._rounds:
            number = self._rounds[0].number
            if 1 + sum(self._acked.get(v, 0) >= number for v in voters) < needed:
                break
            done.append(self._rounds.popleft())
        return done

    def expired(self, now_s: float, timeout_s: float) -> list[Round]:
        done = []
        while self._rounds and now_s - self._rounds[0].started_s > timeout_s:
            done.append(self._rounds.popleft())
        return done

    def drop_all(self) -> list[Round]:
        """This member stopped leading: no pending round can be confirmed any more."""
        done, self._rounds = list(self._rounds), deque()
        return done

    def __len__(self) -> int:
        return len(self._rounds)


@dataclass
class Forwarded:
    leader: Hashable
    sent_s: float
    waiters: list[Any]


class FollowerRequests:
    """Read-index requests this follower sent to its leader, by request id."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._pending: dict[int, Forwarded] = {}

    def add(self, leader: Hashable, waiters: list[Any], now_s: float) -> int:
        request_id = next(self._ids)
        self._pending[request_id] = Forwarded(leader, now_s, waiters)
        return request_id

    def answered(self, request_id: int) -> Forwarded | None:
        return self._pending.pop(request_id, None)

    def orphaned(self, leader: Hashable | None, now_s: float, timeout_s: float) -> list[Forwarded]:
        """Requests to a member that is no longer the leader, or unanswered for too long."""
        gone = [i for i, f in self._pending.items() if f.leader != leader or now_s - f.sent_s > timeout_s]
        return [self._pending.pop(i) for i in gone]


class AppliedGate:
    """Reads waiting until this member has applied their read index."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, int, Any]] = []
        self._order = itertools.count()

    def wait(self, index: int, waiter: Any) -> None:
        heapq.heappush(self._heap, (index, next(self._order), waiter))

    def release(self, applied_index: int) -> list[Any]:
        ready = []
        while self._heap and self._heap[0][0] <= applied_index:
            ready.append(heapq.heappop(self._heap)[2])
        return ready

    def __len__(self) -> int:
        return len(self._heap)
