"""A leader's empty AppendEntries, held back briefly: the commit-index notice after each commit.

Theory: after every commit the leader tells each follower the new commit index in an
AppendEntries with no entries, and each follower answers it. For a client writing one key at
a time that is two more messages per follower per write, each a wake-up of another process,
beside the two that carry the entry; on a 2-core machine they were a fifth of the leader's CPU
(py-spy) and delayed the next write. Held for at most `hold_s`, the notice is usually overtaken
by the next AppendEntries to that follower, which carries the same commit index with the next
entries, and is dropped; otherwise it goes out when its time is up.

What it costs: a follower applies (and its watchers and serializable reads see) a write up to
`hold_s` later. What it never delays: entries (only empty AppendEntries are held), a
ReadIndex round (the replica holds nothing while one is open), any other message (a held
notice goes out first, so the order of messages to a follower is kept), or the commit a
follower waits for to answer a write it forwarded (`awaits`: that notice goes at once). Dropping a notice is
safe: Raft tolerates lost messages, and a later AppendEntries carries everything it said.
"""

from __future__ import annotations

from typing import Any, Hashable


class HeldNotices:
    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self._held: dict[Hashable, tuple[Any, float]] = {}  # follower -> (message, due)
        self._awaited: dict[Hashable, int] = {}  # follower -> log index of a write it forwarded

    def awaits(self, node: Hashable, index: int) -> None:
        """`node` forwarded a write, appended at `index`: it answers its client once it learns
        that the index is committed."""
        self._awaited[node] = max(self._awaited.get(node, 0), index)

    def may_hold(self, node: Hashable, commit_index: int) -> bool:
        """Whether an empty AppendEntries announcing `commit_index` may wait (not if it brings a
        follower the commit of a write it forwarded)."""
        return commit_index < self._awaited.get(node, commit_index + 1)

    def sent(self, node: Hashable, commit_index: int) -> None:
        """An AppendEntries announcing `commit_index` went to `node`."""
        if self._awaited.get(node, commit_index + 1) <= commit_index:
            del self._awaited[node]

    def hold(self, node: Hashable, message: Any, now: float) -> None:
        """Hold a notice for `node`; it replaces one already held but keeps its due time (a
        stream of notices cannot hold one back for ever)."""
        due = self._held[node][1] if node in self._held else now + self.hold_s
        self._held[node] = (message, due)

    def overtaken(self, node: Hashable) -> None:
        """A later AppendEntries goes to `node`: it says everything the held notice said."""
        self._held.pop(node, None)

    def take(self, node: Hashable) -> Any | None:
        """The notice held for `node`, if any, to send before another kind of message."""
        held = self._held.pop(node, None)
        return None if held is None else held[0]

    def due(self, now: float) -> list[tuple[Hashable, Any]]:
        """Take every notice whose time is up."""
        ready = [(node, message) for node, (message, due) in self._held.items() if due <= now]
        for node, _ in ready:
            del self._held[node]
        return ready

    def next_due(self) -> float | None:
        return min((due for _, due in self._held.values()), default=None)

    def clear(self) -> None:
        self._held.clear()
        self._awaited.clear()

    def __len__(self) -> int:
        return len(self._held)
