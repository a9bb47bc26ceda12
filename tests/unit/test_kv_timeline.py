"""The write timeline (kvstore.timeline): hop durations and per-entry stamps."""

from __future__ import annotations

from kvstore.timeline import READ_HOPS, WRITE_HOPS, EntryStamps, hop_durations, quorum_index


def test_hops_are_measured_from_the_latest_earlier_stamp_and_never_negative():
    stamps = {"received": 1.0, "proposed": 1.5, "appended": 2.0, "synced": 4.0, "quorum": 3.0,
              "applied": 4.5, "answered": 5.0}
    assert hop_durations(WRITE_HOPS, stamps) == [("proposed", 0.5), ("appended", 0.5), ("synced", 2.0),
                                                 ("quorum", 0.0), ("applied", 0.5), ("answered", 0.5)]
    assert hop_durations(READ_HOPS, {"received": 1.0, "answered": 3.0}) == [("answered", 2.0)]
    assert hop_durations(WRITE_HOPS, {"proposed": 1.0}) == []  # never received: nothing to measure


def test_entries_are_stamped_when_synced_and_on_a_quorum_and_forgotten_when_applied():
    entries = EntryStamps()
    for index, now in ((5, 1.0), (6, 1.1), (7, 1.2)):
        entries.appended(index, now)
    entries.synced(6, 2.0)
    entries.quorum(5, 2.5)
    entries.synced(7, 3.0)
    entries.quorum(7, 3.5)
    assert entries.take(6) == {"appended": 1.1, "synced": 2.0, "quorum": 3.5}
    assert entries.take(5) == {}  # forgotten with 6: applied in order
    assert entries.take(7) == {"appended": 1.2, "synced": 3.0, "quorum": 3.5}


def test_a_cut_log_forgets_the_cut_entries_and_their_sync():
    entries = EntryStamps()
    entries.appended(5, 1.0)
    entries.appended(6, 1.1)
    entries.synced(6, 2.0)
    entries.appended(6, 5.0)  # a new leader's entry 6 replaces ours
    entries.synced(6, 6.0)
    assert entries.take(6) == {"appended": 5.0, "synced": 6.0}


def test_tracking_is_bounded():
    entries = EntryStamps(limit=3)
    for index in range(1, 6):
        entries.appended(index, float(index))
    assert entries.take(2) == {} and entries.take(5) == {"appended": 5.0}


def test_quorum_index_is_the_highest_index_a_majority_reached():
    assert quorum_index([9, 7, 3]) == 7
    assert quorum_index([9, 7, 3, 1, 8]) == 7
    assert quorum_index([4]) == 4
