"""ReadIndex bookkeeping (kvstore.read_index) and the election rules (kvstore.elections)."""

from __future__ import annotations

import pytest

from kvstore import elections
from kvstore.read_index import AppliedGate, FollowerRequests, LeaderRounds


def test_a_round_is_confirmed_only_by_answers_to_heartbeats_sent_after_it_began():
    rounds = LeaderRounds()
    first = rounds.start(read_index=10, waiters=["r1"], now_s=0.0)
    second = rounds.start(read_index=12, waiters=["r2"], now_s=0.1)
    rounds.acked("b", first.number - 1)  # answers a heartbeat sent before the reads arrived
    rounds.acked("c", first.number - 1)
    assert rounds.confirmed(["b", "c"]) == []  # proves nothing about now: a newer leader may exist
    rounds.acked("b", first.number)
    assert rounds.confirmed(["b", "c"]) == [first]  # itself and b: 2 of 3, for the first round only
    rounds.acked("c", second.number)  # a later tag answers every earlier round too
    assert rounds.confirmed(["b", "c"]) == [second]
    assert len(rounds) == 0


@pytest.mark.parametrize("voters, acks, confirmed", [
    ([], [], True),                              # a member alone is its own majority
    (["b"], [], False), (["b"], ["b"], True),    # two members need both
    (["b", "c", "d", "e"], ["b"], False),        # five need three
    (["b", "c", "d", "e"], ["b", "e"], True),
])
def test_majority_includes_the_leader_itself(voters, acks, confirmed):
    rounds = LeaderRounds()
    round_ = rounds.start(7, [], 0.0)
    for node in acks:
        rounds.acked(node, round_.number)
    assert (rounds.confirmed(voters) == [round_]) is confirmed


def test_unconfirmed_rounds_expire_and_are_all_dropped_when_leadership_ends():
    rounds = LeaderRounds()
    old = rounds.start(1, ["a"], now_s=0.0)
    young = rounds.start(2, ["b"], now_s=4.0)
    assert rounds.expired(now_s=5.5, timeout_s=5.0) == [old]
    assert rounds.drop_all() == [young] and len(rounds) == 0


def test_follower_requests_are_orphaned_when_the_leader_changes_or_time_runs_out():
    requests = FollowerRequests()
    to_a = requests.add("a", ["r1"], now_s=0.0)
    requests.add("a", ["r2"], now_s=9.0)
    assert requests.answered(to_a).waiters == ["r1"] and requests.answered(to_a) is None
    assert requests.orphaned("a", now_s=10.0, timeout_s=5.0) == []
    assert [f.waiters for f in requests.orphaned("b", now_s=10.0, timeout_s=5.0)] == [["r2"]]
    late = requests.add("a", ["r3"], now_s=0.0)
    assert [f.waiters for f in requests.orphaned("a", now_s=6.0, timeout_s=5.0)] == [["r3"]]
    assert requests.answered(late) is None


def test_reads_run_only_once_their_index_is_applied_in_index_order():
    gate = AppliedGate()
    gate.wait(12, "late")
    gate.wait(10, "early")
    gate.wait(10, "early-too")
    assert gate.release(9) == []
    assert gate.release(11) == ["early", "early-too"]
    assert gate.release(12) == ["late"] and len(gate) == 0


@pytest.mark.parametrize("candidate, own, up_to_date", [
    ((3, 10), (3, 10), True), ((3, 11), (3, 10), True), ((4, 1), (3, 10), True),
    ((3, 9), (3, 10), False), ((2, 99), (3, 1), False),
])
def test_log_comparison_is_last_term_then_length(candidate, own, up_to_date):
    assert elections.log_at_least_as_up_to_date(*candidate, *own) is up_to_date


@pytest.mark.parametrize("candidate_term, own_term, hears_leader, log_ok, granted", [
    (6, 5, False, True, True),
    (6, 5, True, True, False),    # a live leader is heard: the asker is the disruptive one
    (5, 5, False, True, False),   # not a higher term
    (6, 5, False, False, False),  # its log is behind
])
def test_pre_vote_is_granted_only_without_a_live_leader(candidate_term, own_term, hears_leader, log_ok, granted):
    last = (3, 10) if log_ok else (3, 9)
    assert elections.grant_pre_vote(candidate_term, own_term, *last, 3, 10, hears_leader) is granted


@pytest.mark.parametrize("since_contact_s, connected, hears", [
    (0.1, True, True), (0.4, True, False), (0.1, False, False),  # a closed connection voids the lease
])
def test_a_follower_hears_its_leader_only_recently_and_while_connected(since_contact_s, connected, hears):
    assert elections.follower_has_leader(10.0, 10.0 - since_contact_s, connected, 0.3) is hears


def test_a_leader_keeps_its_lease_only_with_a_recent_quorum():
    assert elections.leader_has_quorum(10.0, [9.9, 9.0, 9.0, 9.95], 0.3)       # itself + 2 of 4
    assert not elections.leader_has_quorum(10.0, [9.9, 9.0, 9.0, 9.0], 0.3)    # itself + 1 of 4
    assert elections.leader_has_quorum(10.0, [], 0.3)                          # alone


@pytest.mark.parametrize("own, pre_voted_for, stands_back", [
    ("127.0.0.1:2002", ["127.0.0.1:2001"], True),    # granted a lower id: let it stand
    ("127.0.0.1:2001", ["127.0.0.1:2002"], False),   # granted a higher id: that one stands back
    ("127.0.0.1:2002", [], False),                   # granted nobody's
    ("127.0.0.1:2003", ["127.0.0.1:2004", "127.0.0.1:2001"], True),
])
def test_of_two_members_whose_pre_votes_both_passed_only_the_lower_id_stands(own, pre_voted_for, stands_back):
    assert elections.stands_back(own, pre_voted_for) is stands_back
