"""Compaction and the watch feed."""

import pytest

from kvstore import commands as c
from kvstore.errors import KVError
from tests.kvtools import fails, filled, values_of


def history():
    # revisions: 2 a=1, 3 b=1, 4 a=2, 5 del b, 6 a=3
    sm = filled((b"a", b"1"), (b"b", b"1"), (b"a", b"2"))
    sm.apply(c.delete_range(b"b"))
    sm.apply(c.put(b"a", b"3"))
    return sm


def test_compaction_keeps_reads_at_and_after_the_compact_revision():
    sm = history()
    sm.apply(c.compact(4))
    assert values_of(sm.apply(c.range_(b"\0", b"\0", revision=4))) == {b"a": b"2", b"b": b"1"}
    assert values_of(sm.apply(c.range_(b"\0", b"\0", revision=5))) == {b"a": b"2"}
    assert values_of(sm.apply(c.range_(b"\0", b"\0"))) == {b"a": b"3"}


def test_reads_below_the_compact_revision_answer_compacted():
    sm = history()
    sm.apply(c.compact(4))
    err = fails(sm, c.range_(b"a", revision=3), "COMPACTED")
    assert err.details["compact_revision"] == 4


def test_compaction_does_not_change_the_revision_or_current_values():
    sm = history()
    assert sm.apply(c.compact(6))["header"]["revision"] == 6
    assert values_of(sm.apply(c.range_(b"\0", b"\0"))) == {b"a": b"3"}


def test_compaction_at_the_current_revision_is_allowed_like_etcd():
    sm = history()
    sm.apply(c.compact(6))
    assert sm.apply({"op": "status"})["compact_revision"] == 6


def test_compaction_beyond_the_current_revision_fails():
    fails(history(), c.compact(7), "FUTURE_REVISION")


def test_compaction_at_or_below_a_previous_one_answers_compacted():
    sm = history()
    sm.apply(c.compact(4))
    fails(sm, c.compact(4), "COMPACTED")
    fails(sm, c.compact(3), "COMPACTED")


def test_compaction_forgets_deleted_keys_and_their_history():
    sm = history()
    sm.apply(c.compact(5))  # b was deleted at 5: it is gone, history and all
    assert values_of(sm.apply(c.range_(b"\0", b"\0", revision=5))) == {b"a": b"2"}
    assert [g["revision"] for g in sm.watch_events(5, b"b")] == [5]  # its delete event stays
    before = sm.apply({"op": "status"})["db_size"]
    sm.apply(c.compact(6))  # a's version 2 is forgotten too
    assert sm.apply({"op": "status"})["db_size"] < before


def test_watch_replays_every_revision_in_order_with_prev_kv():
    sm = history()
    feed = sm.watch_events(2, b"\0", b"\0", prev_kv=True)
    assert [(g["revision"], [(e["type"], e["kv"]["key"]) for e in g["events"]]) for g in feed] == [
        (2, [("PUT", b"a")]), (3, [("PUT", b"b")]), (4, [("PUT", b"a")]),
        (5, [("DELETE", b"b")]), (6, [("PUT", b"a")])]
    delete = feed[3]["events"][0]
    assert delete["kv"]["mod_revision"] == 5 and delete["prev_kv"]["value"] == b"1"
    assert "prev_kv" not in feed[0]["events"][0]


def test_watch_filters_by_key_and_range():
    sm = history()
    assert [g["revision"] for g in sm.watch_events(2, b"b")] == [3, 5]
    assert [g["revision"] for g in sm.watch_events(4, b"a", b"b")] == [4, 6]


def test_watch_without_prev_kv_omits_it():
    sm = history()
    assert all("prev_kv" not in e for g in sm.watch_events(2, b"\0", b"\0") for e in g["events"])


def test_watch_from_revision_0_starts_now():
    sm = history()
    assert sm.watch_events(0, b"\0", b"\0") == []
    sm.apply(c.put(b"z", b"1"))
    assert [g["revision"] for g in sm.watch_events(7, b"\0", b"\0")] == [7]


def test_watch_from_the_compact_revision_works_and_below_it_answers_compacted():
    sm = history()
    sm.apply(c.compact(4))
    assert [g["revision"] for g in sm.watch_events(4, b"\0", b"\0")] == [4, 5, 6]
    with pytest.raises(KVError) as info:
        sm.watch_events(3, b"\0", b"\0")
    assert info.value.code == "COMPACTED" and info.value.details["compact_revision"] == 4


def test_watch_pushes_are_cut_between_revisions_never_inside_one():
    from kvstore.server import watch_batches

    def group(revision: int, *sizes: int) -> dict:
        return {"revision": revision, "events": [{"kv": {"key": b"k", "value": b"x" * n}} for n in sizes]}
    groups = [group(1, 400), group(2, 400), group(3, 2000), group(4, 10)]
    cuts = [[g["revision"] for g in batch] for batch in watch_batches(groups, 1000)]
    assert cuts == [[1, 2], [3], [4]]  # 3 alone is over the limit: one push of its own, not split
    assert watch_batches([], 1000) == []
