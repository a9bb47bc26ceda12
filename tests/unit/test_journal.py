"""The durable Raft log: what was added comes back, a torn tail is cut, compaction is whole."""

import os

import pytest

from kvstore.journal import MAGIC, DurableJournal


def filled(path, n=5):
    journal = DurableJournal(path)
    for i in range(1, n + 1):
        journal.add(b"cmd%d" % i, i, 1)
    journal.sync()
    return journal


def test_entries_come_back_after_reopening(tmp_path):
    filled(tmp_path / "j")._destroy()
    again = DurableJournal(tmp_path / "j")
    assert [e[1] for e in again] == [1, 2, 3, 4, 5] and again[2] == (b"cmd3", 3, 1)
    assert again.durable_index == 5


@pytest.mark.parametrize("crash", ["file cut short", "record half written into preallocated space"])
def test_a_torn_tail_is_cut_at_the_last_whole_record(tmp_path, crash):
    journal = filled(tmp_path / "j")
    end = journal._end
    journal._destroy()
    with open(tmp_path / "j", "r+b") as f:  # a crash in the middle of writing record 5
        if crash == "file cut short":
            f.truncate(end - 3)
        else:
            f.seek(end - 3)
            f.write(b"\0\0\0")
    again = DurableJournal(tmp_path / "j")
    assert [e[1] for e in again] == [1, 2, 3, 4]
    again.add(b"new5", 5, 2)
    again.sync()
    again._destroy()
    assert DurableJournal(tmp_path / "j")[4] == (b"new5", 5, 2)


def test_a_corrupt_record_ends_the_log_there(tmp_path):
    filled(tmp_path / "j")._destroy()
    data = bytearray((tmp_path / "j").read_bytes())
    data[len(MAGIC) + 60] ^= 0xFF  # inside record 3
    (tmp_path / "j").write_bytes(bytes(data))
    assert len(DurableJournal(tmp_path / "j")) < 5


def test_delete_entries_from_truncates_a_conflicting_suffix(tmp_path):
    journal = filled(tmp_path / "j")
    journal.deleteEntriesFrom(3)
    journal.add(b"other", 4, 2)
    journal.sync()
    journal._destroy()
    assert [(e[1], e[2]) for e in DurableJournal(tmp_path / "j")] == [(1, 1), (2, 1), (3, 1), (4, 2)]


def test_compaction_keeps_the_tail_in_a_whole_new_file(tmp_path):
    journal = filled(tmp_path / "j", 10)
    journal.deleteEntriesTo(7)
    assert [e[1] for e in journal] == [8, 9, 10]
    journal.add(b"cmd11", 11, 1)
    journal.sync()
    journal._destroy()
    assert [e[1] for e in DurableJournal(tmp_path / "j")] == [8, 9, 10, 11]
    assert not (tmp_path / "j.tmp").exists()


def test_term_and_vote_survive_reopening(tmp_path):
    journal = filled(tmp_path / "j", 1)
    journal.setCurrentTerm(7, "127.0.0.1:2380")
    os.close(journal._fd)  # no orderly shutdown: setCurrentTerm alone must have made it durable
    again = DurableJournal(tmp_path / "j")
    assert (again.getCurrentTerm(), again.getVotedForNodeId()) == (7, "127.0.0.1:2380")


def test_sync_only_touches_the_disk_when_something_was_added(tmp_path):
    journal = filled(tmp_path / "j", 2)
    syncs = journal.syncs
    journal.sync()
    assert journal.syncs == syncs
    journal.add(b"x", 3, 1)
    journal.sync()
    assert journal.syncs == syncs + 1 and journal.durable_index == 3
