"""A write's path through a member, hop by hop, as Prometheus histograms (pure: times come in).

A write is stamped at each hop on the member that received it:
    received  the client port or gateway has decoded it
    proposed  the Raft thread has put it into a batch (group commit: one batch per loop turn)
    appended  its batch is in this member's log (on a follower: the leader's AppendEntries
              brought it back, so forwarding to the leader is inside this hop)
    synced    this member's log is fdatasync'd past it
    quorum    a quorum has it on disk (leader: the acknowledgement that made the quorum
              arrived; follower: the leader's commit index told it so)
    applied   the state machine ran it
    answered  the reply is on its way to the client
Linearizable reads are stamped received -> confirmed (ReadIndex: leadership confirmed and the
read index known) -> applied (this member applied up to it) -> answered.

Each hop's duration is (this stamp - the latest earlier stamp), so hops that overlap (a
follower may learn of the quorum before its own sync) count as 0, never negative. The server
keeps them as Prometheus histograms, ketch_kv_write_hop_seconds{hop=...} and
ketch_kv_read_hop_seconds{hop=...}, on the gateway's /metrics.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable

WRITE_HOPS = ("received", "proposed", "appended", "synced", "quorum", "applied", "answered")
READ_HOPS = ("received", "confirmed", "applied", "answered")
HOP_BUCKETS_S = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
MAX_TRACKED_ENTRIES = 100_000


def hop_durations(hops: tuple[str, ...], stamps: dict[str, float]) -> list[tuple[str, float]]:
    """(hop, seconds since the latest earlier stamp) for each hop that was stamped."""
    latest = stamps.get(hops[0])
    if latest is None:
        return []
    durations = []
    for hop in hops[1:]:
        stamp = stamps.get(hop)
        if stamp is not None:
            durations.append((hop, max(0.0, stamp - latest)))
            latest = max(latest, stamp)
    return durations


class EntryStamps:
    """When each log entry reached this member's log, its disk, and a quorum. Kept from append
    to apply; bounded (the oldest are dropped first if apply falls far behind)."""

    def __init__(self, limit: int = MAX_TRACKED_ENTRIES) -> None:
        self._entries: OrderedDict[int, dict[str, float]] = OrderedDict()
        self._limit = limit
        self._synced_up_to = 0
        self._quorum_up_to = 0

    def appended(self, index: int, now: float) -> None:
        if self._entries and next(reversed(self._entries)) >= index:
            # the log was cut back to here (a new leader's log wins): forget what was cut
            for cut in [i for i in self._entries if i >= index]:
                del self._entries[cut]
        self._synced_up_to = min(self._synced_up_to, index - 1)
        self._entries[index] = {"appended": now}
        if len(self._entries) > self._limit:
            self._entries.popitem(last=False)

    def synced(self, durable_index: int, now: float) -> None:
        if durable_index > self._synced_up_to:
            self._mark("synced", self._synced_up_to, durable_index, now)
            self._synced_up_to = durable_index

    def quorum(self, commit_index: int, now: float) -> None:
        if commit_index > self._quorum_up_to:
            self._mark("quorum", self._quorum_up_to, commit_index, now)
            self._quorum_up_to = commit_index

    def _mark(self, hop: str, after: int, up_to: int, now: float) -> None:
        for index, stamps in self._entries.items():  # in index order: appended in order
            if index > up_to:
                break
            if index > after and hop not in stamps:
                stamps[hop] = now

    def take(self, index: int) -> dict[str, float]:
        """The stamps of an entry being applied; entries up to it are forgotten."""
        stamps = self._entries.pop(index, {})
        while self._entries:
            first = next(iter(self._entries))
            if first > index:
                break
            del self._entries[first]
        return stamps


def quorum_index(indexes: Iterable[int]) -> int:
    """The highest index that a majority of these members (one index each) have reached."""
    ordered = sorted(indexes, reverse=True)
    return ordered[len(ordered) // 2] if ordered else 0
