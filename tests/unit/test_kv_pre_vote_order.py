"""Pre-vote between two members that lost their leader at once, messages delivered in a chosen
order: whatever the order, at most one of them stands for the next term (two would split the
vote and make every client wait a whole election timeout more)."""

from __future__ import annotations

import time
import types

from hypothesis import given
from hypothesis import strategies as st
from pysyncobj.monotonic import monotonic as raft_clock

from kvstore.replica_elections import PreVote


class Member(PreVote):
    """Just the Raft state PreVote reads, of a follower whose leader is gone; sent messages go
    to the shared outbox instead of a socket."""

    def __init__(self, name: str, others: set[str], outbox: list):
        self.selfNode, self.otherNodes, self.outbox = name, others, outbox
        self.raftCurrentTerm = 3
        self.timing = types.SimpleNamespace(election_min_s=0.5)
        self._pre_vote, self._pre_votes_given = None, (0, set())
        self._transfer_election, self._last_leader_contact_s = False, 0.0
        self._held_deadline = None
        self.connected = True
        self._SyncObj__raftElectionDeadline = 0.0  # due now
        self._SyncObj__transferInProgress = False
        self._SyncObj__connectedNodes = set(others)

    def _isLeader(self):  # noqa: N802 (pysyncobj's names)
        return False

    def _getLeader(self):  # noqa: N802
        return None

    def _SyncObj__connectedToAnyone(self):  # noqa: N802
        return self.connected

    def _SyncObj__generateRaftTimeout(self):  # noqa: N802
        return 0.75

    def _SyncObj__getCurrentLogIndex(self):  # noqa: N802
        return 40

    def _SyncObj__getCurrentLogTerm(self):  # noqa: N802
        return 3

    def doTick(self, wait_s):  # noqa: N802 (pysyncobj's check, run by a thread descheduled a moment)
        time.sleep(0.01)
        if self._SyncObj__raftElectionDeadline < raft_clock():
            self.raftCurrentTerm += 1

    def _send(self, node, message):
        self.outbox.append((self.selfNode, node, message))

    def stands(self) -> bool:
        return self._pre_vote is not None and self._pre_vote["passed"]


def deliver(members: dict[str, Member], outbox: list, sender: str, receiver: str, kind: str) -> None:
    """Deliver the first queued message of that kind from sender to receiver."""
    at = next(i for i, (s, r, m) in enumerate(outbox) if (s, r, m["type"]) == (sender, receiver, kind))
    _, _, message = outbox.pop(at)
    handler = {"pre_vote": PreVote._on_pre_vote, "pre_vote_resp": PreVote._on_pre_vote_resp}[kind]
    handler(members[receiver], sender, message)


def two_members():
    outbox: list = []
    members = {name: Member(name, {"a", "b", "c"} - {name}, outbox) for name in ("a", "b")}  # c is dead
    return members, outbox


def test_a_pre_vote_that_passed_on_an_answer_just_before_the_others_request_is_the_only_one_standing():
    """b asks first; a grants, then a's own deadline comes and a asks; b takes a's grant and
    a's request in one batch. Before the fix b (its pre-vote passed, so about to stand) granted
    a's too, and a, the lower id, stood as well: both stood for term 4."""
    members, outbox = two_members()
    a, b = members["a"], members["b"]
    b._may_elect_now()
    deliver(members, outbox, "b", "a", "pre_vote")
    a._may_elect_now()
    deliver(members, outbox, "a", "b", "pre_vote_resp")   # b's pre-vote passes
    deliver(members, outbox, "a", "b", "pre_vote")        # a's request, same batch
    deliver(members, outbox, "b", "a", "pre_vote_resp")
    assert b.stands() and not a.stands()


def test_crossing_pre_votes_leave_the_lower_id_standing():
    members, outbox = two_members()
    a, b = members["a"], members["b"]
    a._may_elect_now()
    b._may_elect_now()
    deliver(members, outbox, "a", "b", "pre_vote")
    deliver(members, outbox, "b", "a", "pre_vote")
    deliver(members, outbox, "b", "a", "pre_vote_resp")
    deliver(members, outbox, "a", "b", "pre_vote_resp")
    assert a.stands() and not b.stands()


@given(st.lists(st.sampled_from(["a times out", "b times out", "a->b", "b->a"]), max_size=30))
def test_in_any_order_at_most_one_of_them_stands(schedule):
    """Each member's deadline comes once, at any point; each link delivers in order (TCP)."""
    members, outbox = two_members()
    for step in schedule:
        if step.endswith("times out"):
            members[step[0]]._may_elect_now()
            outbox[:] = [sent for sent in outbox if sent[1] != "c"]
            continue
        sender, receiver = step.split("->")
        queued = [m for s, r, m in outbox if (s, r) == (sender, receiver)]
        if queued:
            deliver(members, outbox, sender, receiver, queued[0]["type"])
        assert not (members["a"].stands() and members["b"].stands()), schedule


def test_a_tick_that_runs_late_starts_no_election_before_a_pre_vote_passed():
    """pysyncobj checks its deadline inside its tick, a moment after the replica looked: a
    deadline that falls due in between (here 6 ms, the check runs 10 ms late) would start
    an election, and raise the term, without a pre-vote."""
    members, outbox = two_members()
    a = members["a"]
    a._SyncObj__raftElectionDeadline = raft_clock() + 0.006
    a._tick_electing_after_pre_vote(0)
    assert a.raftCurrentTerm == 3 and a._SyncObj__raftElectionDeadline > raft_clock() - 0.01
    a._tick_electing_after_pre_vote(0)  # now due: it asks first
    assert a.raftCurrentTerm == 3 and [m["type"] for _, _, m in outbox] == ["pre_vote"] * 2
    deliver(members, outbox, "a", "b", "pre_vote")
    deliver(members, outbox, "b", "a", "pre_vote_resp")
    a._tick_electing_after_pre_vote(0)
    assert a.raftCurrentTerm == 4


def test_a_pre_vote_that_passed_before_a_leader_was_heard_starts_no_election_later():
    members, outbox = two_members()
    a = members["a"]
    a._may_elect_now()
    deliver(members, outbox, "a", "b", "pre_vote")
    deliver(members, outbox, "b", "a", "pre_vote_resp")
    assert a.stands()
    a._heard_leader()  # b won meanwhile (pysyncobj reset the deadline on its append)
    a._SyncObj__raftElectionDeadline = raft_clock() - 0.001  # much later, the leader is lost again
    assert a._may_elect_now() is False and a._pre_vote == {"term": 4, "granted": {"a"}, "passed": False}


def test_a_member_connected_to_nobody_looks_again_after_a_timeout_not_at_once():
    members, outbox = two_members()
    a = members["a"]
    a.connected = False
    assert a._may_elect_now() is False and outbox == []
    assert a._SyncObj__raftElectionDeadline > raft_clock() + 0.5  # the loop waits, instead of spinning
