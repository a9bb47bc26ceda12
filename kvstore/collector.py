"""Short full garbage collections for processes that hold a large, growing, acyclic heap.

A member's MVCC history (KeyValue and Event named tuples, which CPython never untracks) and an
API server's watch cache are live data that every full collection walks again: 800,000 tracked
objects after 200,000 puts, 135 ms per full collection on this machine, one every few seconds
under load, and every request in flight waits it out (the p99 of `bench/kv.py`).

`keep_full_collections_short()` freezes (gc.freeze) what survives each full collection, so the
next one walks only what arrived since. Frozen objects are still freed by reference counting
the moment they are unreferenced (a compacted revision, a deleted object); only garbage held
in a reference cycle that includes a frozen object (say, a connection's objects that lived
through a full collection) waits for the next refresh, which every REFRESH_S unfreezes
everything so that one full collection walks it all again: a bounded delay, not a leak.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger("ketch.gc")
REFRESH_S = 600.0
LONG_GC_S = 0.05


class _Policy:
    def __init__(self, refresh_s: float) -> None:
        self.refresh_s = refresh_s
        self.refreshed = time.monotonic()
        self.started = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self.started = time.monotonic()
            return
        now = time.monotonic()
        if now - self.started > LONG_GC_S:  # long enough to delay heartbeats: worth a line
            log.warning("event=long_gc generation=%s ms=%.0f collected=%s frozen=%s", info.get("generation"),
                        (now - self.started) * 1000, info.get("collected"), gc.get_freeze_count())
        if info.get("generation") != 2:
            return
        if now - self.refreshed >= self.refresh_s:
            gc.unfreeze()  # the next full collection walks everything, cycles among old objects included
            self.refreshed = now
        else:
            gc.freeze()


def keep_full_collections_short(refresh_s: float = REFRESH_S) -> None:
    """Install the policy (once per process; a second call does nothing)."""
    if not any(isinstance(callback, _Policy) for callback in gc.callbacks):
        gc.callbacks.append(_Policy(refresh_s))
