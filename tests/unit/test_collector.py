"""The full-collection policy of members and API servers (kvstore/collector.py), in-process."""

from __future__ import annotations

import gc
import weakref

import pytest

from kvstore import collector


class Record:
    """A tracked object, as the MVCC history's named tuples and the watch cache's dicts are."""

    def __init__(self, n: int) -> None:
        self.n = n


@pytest.fixture
def policy():
    before = list(gc.callbacks)
    gc.collect()
    yield
    gc.callbacks[:] = before
    gc.unfreeze()
    gc.collect()


def test_survivors_of_a_full_collection_are_frozen_and_still_freed_when_dropped(policy):
    collector.keep_full_collections_short(refresh_s=3600)
    collector.keep_full_collections_short(refresh_s=3600)  # installed once
    assert sum(isinstance(c, collector._Policy) for c in gc.callbacks) == 1
    live = [Record(i) for i in range(10_000)]
    gc.collect()
    assert gc.get_freeze_count() >= len(live)  # the next full collection will not walk them
    watcher = weakref.ref(live[0])
    live.clear()  # acyclic: reference counting frees them although they are frozen
    assert watcher() is None


def test_a_cycle_that_forms_among_frozen_objects_waits_for_the_refresh(policy):
    collector.keep_full_collections_short(refresh_s=3600)
    installed = next(c for c in gc.callbacks if isinstance(c, collector._Policy))
    a, b = Record(1), Record(2)
    gc.collect()  # both survive: frozen
    a.other, b.other = b, a
    watcher = weakref.ref(a)
    del a, b
    gc.collect()
    assert watcher() is not None  # the window the policy accepts: frozen cycles wait
    installed.refreshed -= 3600  # the refresh is due
    gc.collect()  # ends by unfreezing everything
    gc.collect()  # walks it all
    assert watcher() is None
