"""What a controller created or deleted that its informer has not shown yet (Kubernetes'
ControllerExpectations). A controller that plans again from a cache that has not seen its own
last writes creates the same pods twice (generated names never collide), so it waits until
every pod it created is seen and every pod it deleted is gone or marked for deletion, or until
the timeout (a lost watch event must not stop it for ever)."""

from __future__ import annotations

from dataclasses import dataclass

EXPECTATIONS_TIMEOUT_S = 30.0  # Kubernetes: 5 minutes; a lab recovers sooner


@dataclass
class Pending:
    created: set[str]
    deleted: set[str]
    since: float


class Expectations:
    def __init__(self, timeout_s: float = EXPECTATIONS_TIMEOUT_S) -> None:
        self.timeout_s = timeout_s
        self.pending: dict[str, Pending] = {}  # owner uid -> what the cache must show

    def expect(self, owner_uid: str, created: list[str], deleted: list[str], now: float) -> None:
        if created or deleted:
            self.pending[owner_uid] = Pending(set(created), set(deleted), now)

    def satisfied(self, owner_uid: str, pods: list[dict], now: float) -> bool:
        """True when the cache (the owner's pods as the informer has them) has shown every write.
        A write counts once shown, so a created pod deleted again before the next look (a
        node's pods evicted) does not hold the owner until the timeout."""
        pending = self.pending.get(owner_uid)
        if pending is None:
            return True
        seen = {p["metadata"]["name"]: p for p in pods}
        pending.created -= seen.keys()
        pending.deleted = {name for name in pending.deleted
                           if name in seen and not seen[name]["metadata"].get("deletionTimestamp")}
        if (not pending.created and not pending.deleted) or now - pending.since > self.timeout_s:
            del self.pending[owner_uid]
            return True
        return False

    def forget(self, owner_uid: str) -> None:
        self.pending.pop(owner_uid, None)
