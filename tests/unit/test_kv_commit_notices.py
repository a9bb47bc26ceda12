"""The leader's held commit-index notices (kvstore.commit_notices)."""

from kvstore.commit_notices import HeldNotices


def test_a_notice_overtaken_by_the_next_append_entries_is_never_sent():
    notices = HeldNotices(0.002)
    notices.hold("f1", {"commit_index": 7}, now=10.0)
    notices.overtaken("f1")
    assert notices.due(now=11.0) == [] and len(notices) == 0


def test_a_notice_goes_out_when_its_time_is_up_and_a_newer_one_keeps_the_first_due_time():
    notices = HeldNotices(0.002)
    notices.hold("f1", {"commit_index": 7}, now=10.0)
    notices.hold("f1", {"commit_index": 8}, now=10.0015)  # replaces it, not later
    assert notices.next_due() == 10.002
    assert notices.due(now=10.001) == []
    assert notices.due(now=10.002) == [("f1", {"commit_index": 8})]
    assert notices.next_due() is None


def test_each_follower_has_its_own_notice_and_another_message_takes_it_first():
    notices = HeldNotices(0.002)
    notices.hold("f1", {"commit_index": 7}, now=10.0)
    notices.hold("f2", {"commit_index": 7}, now=10.0)
    assert notices.take("f1") == {"commit_index": 7}
    assert notices.take("f1") is None
    assert notices.due(now=10.01) == [("f2", {"commit_index": 7})]


def test_the_commit_a_follower_waits_for_to_answer_a_forwarded_write_is_not_held():
    notices = HeldNotices(0.002)
    notices.awaits("f1", 12)  # f1 forwarded a write, appended at 12
    assert notices.may_hold("f1", 11)       # not yet the commit it waits for
    assert not notices.may_hold("f1", 12)   # this one it waits for: send it now
    assert notices.may_hold("f2", 12)       # another follower waits for nothing
    notices.sent("f1", 12)
    assert notices.may_hold("f1", 13)       # answered: later notices may wait again
