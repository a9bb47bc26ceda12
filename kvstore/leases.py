"""Leases (pure): TTLs decided by the leader's clock, which arrives inside commands.

Theory of operation (etcd's lessor, https://etcd.io/docs/v3.4/learning/api/#lease-api):
- A lease has a granted TTL and a deadline in the proposing leader's time (`now` + ttl).
- Keepalive moves the deadline to `now` + ttl. A lease whose deadline has passed cannot be kept
  alive (LEASE_NOT_FOUND), even before the leader's expiry command has revoked it.
- Expiry is a command carrying the leader's `now`: every lease with deadline <= now is revoked,
  in id order. Time is never read here, so every member makes the same decision.
- On a leader change the new leader's clock is not the old one's: `promote(now, extend)` restarts
  every deadline at now + ttl + extend (etcd extends by the election timeout the same way), so a
  failover never expires a lease that was being kept alive.
- Keys attached to a lease are kept here as a set, maintained from the key space's events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from kvstore.errors import invalid, lease_not_found

# etcd's minimum TTL is 1.5 x the election timeout, rounded up: 2 s with its defaults. A shorter
# lease could expire during an ordinary election.
MIN_LEASE_TTL_S = 2


@dataclass(slots=True)
class Lease:
    id: int
    ttl: int
    deadline: float
    keys: set[bytes] = field(default_factory=set)

    def remaining_s(self, now: float) -> int:
        remaining = self.deadline - now
        return math.ceil(remaining) if remaining > 0 else -1


class LeaseTable:
    def __init__(self) -> None:
        self.leases: dict[int, Lease] = {}
        self.next_id = 1

    def __len__(self) -> int:
        return len(self.leases)

    def require(self, lease_id: int) -> Lease:
        lease = self.leases.get(lease_id)
        if lease is None:
            raise lease_not_found(lease_id)
        return lease

    def grant(self, lease_id: int, ttl: int, now: float) -> Lease:
        if lease_id in self.leases:
            raise invalid("lease already exists")
        if lease_id == 0:
            lease_id = self._allocate_id()
        ttl = max(ttl, MIN_LEASE_TTL_S)
        lease = Lease(lease_id, ttl, now + ttl)
        self.leases[lease_id] = lease
        return lease

    def _allocate_id(self) -> int:
        while self.next_id in self.leases:
            self.next_id += 1
        lease_id = self.next_id
        self.next_id += 1
        return lease_id

    def check_alive(self, lease_id: int, now: float) -> Lease:
        lease = self.require(lease_id)
        if lease.deadline <= now:
            raise lease_not_found(lease_id)
        return lease

    def keepalive(self, lease: Lease, now: float) -> None:
        lease.deadline = now + lease.ttl

    def expired(self, now: float) -> list[int]:
        return sorted(lid for lid, lease in self.leases.items() if lease.deadline <= now)

    def promote(self, now: float, extend_s: float) -> None:
        for lease in self.leases.values():
            lease.deadline = now + lease.ttl + extend_s

    def remove(self, lease_id: int) -> None:
        del self.leases[lease_id]

    def attach(self, lease_id: int, key: bytes) -> None:
        lease = self.leases.get(lease_id)
        if lease is not None:
            lease.keys.add(key)

    def detach(self, lease_id: int, key: bytes) -> None:
        lease = self.leases.get(lease_id)
        if lease is not None:
            lease.keys.discard(key)
