"""Pre-vote and the lease rule for votes, glued to pysyncobj (rules: kvstore.elections).

pysyncobj starts an election inside `_onTick` as soon as its election deadline has passed. The
replica ticks through `_tick_electing_after_pre_vote`: once the deadline is due it asks the
others first (a pre-vote) and pushes the deadline back; only once a majority (itself included)
said yes is the deadline set to 0 and pysyncobj's own election let run. In every other tick
pysyncobj's check is held off altogether, so a tick that runs late (a thread descheduled
between the two checks) cannot start an election without a pre-vote. A real RequestVote that
arrives while this member hears a live leader is dropped by the replica's message handler
(`_hears_leader`), except one from a leadership transfer.
"""

from __future__ import annotations

import logging
import math

from pysyncobj.monotonic import monotonic as raft_clock

from kvstore import elections

log = logging.getLogger("ketch.kv.replica")


class PreVote:
    """Mixin for Replica: needs timing, _pre_vote, _pre_votes_given, _transfer_election,
    _held_deadline, _last_leader_contact_s and _send, and pysyncobj's state.

    Every time here is pysyncobj's clock (`raft_clock`, CLOCK_MONOTONIC_RAW), because it is
    compared with pysyncobj's own deadlines and response times: time.monotonic() ran 0.25 s
    ahead of it on the benchmark machine (the gap grows with uptime), so a deadline written
    with one and read with the other fired 0.25 s early or late."""

    def _hears_leader(self) -> bool:
        now = raft_clock()
        if self._isLeader():
            responses = self._SyncObj__lastResponseTime.values()
            return elections.leader_has_quorum(now, responses, self.timing.election_min_s)
        leader = self._getLeader()
        return leader is not None and elections.follower_has_leader(
            now, self._last_leader_contact_s, leader in self._SyncObj__connectedNodes, self.timing.election_min_s)

    def _heard_leader(self) -> None:
        """An append from this term's leader: a pre-vote that passed before it is stale (it must
        not start an election the next time the deadline comes)."""
        self._last_leader_contact_s = raft_clock()
        self._pre_vote = None

    def _tick_electing_after_pre_vote(self, wait_s: float) -> None:
        """One pysyncobj tick; its own election check may fire only after a passed pre-vote (or
        for a leadership transfer). Otherwise the deadline is hidden from it for the tick, and
        put back unless the tick set a new one (a heartbeat, a vote, a pre-vote's outcome)."""
        if self._may_elect_now():
            self.doTick(wait_s)
            return
        self._held_deadline, self._SyncObj__raftElectionDeadline = self._SyncObj__raftElectionDeadline, math.inf
        try:
            self.doTick(wait_s)
        finally:
            if self._SyncObj__raftElectionDeadline == math.inf:
                self._SyncObj__raftElectionDeadline = self._held_deadline
            self._held_deadline = None

    def _election_deadline(self) -> float:
        """The deadline as it stands, also while a tick holds it back from pysyncobj."""
        return self._SyncObj__raftElectionDeadline if self._held_deadline is None else self._held_deadline

    def _may_elect_now(self) -> bool:
        """Whether pysyncobj may start an election in this tick. A due deadline without a passed
        pre-vote starts one: the deadline is pushed back and the others are asked first."""
        if self._isLeader() or self.selfNode is None:
            return True  # pysyncobj's election check applies to followers and candidates only
        now = raft_clock()
        if self._SyncObj__raftElectionDeadline > now:
            return False
        if not self._SyncObj__connectedToAnyone():  # nobody to ask: look again after a timeout, not at once
            self._SyncObj__raftElectionDeadline = now + self._SyncObj__generateRaftTimeout()
            return False
        if self._SyncObj__transferInProgress:
            self._transfer_election = True  # TimeoutNow from the leader: elect at once
            return True
        term = self.raftCurrentTerm + 1
        if self._pre_vote is not None and self._pre_vote["passed"] and self._pre_vote["term"] == term:
            return True
        self._SyncObj__raftElectionDeadline = now + self._SyncObj__generateRaftTimeout()
        self._pre_vote = {"term": term, "granted": {self.selfNode}, "passed": False}
        message = {"type": "pre_vote", "term": term, "last_log_index": self._SyncObj__getCurrentLogIndex(),
                   "last_log_term": self._SyncObj__getCurrentLogTerm()}
        for node in self.otherNodes:
            self._send(node, dict(message))
        self._count_pre_votes()
        return self._pre_vote is not None and self._pre_vote["passed"]  # alone, it passes at once

    def _on_pre_vote(self, node, message: dict) -> None:
        term = message.get("term", 0)
        own = self._pre_vote
        granted = elections.grant_pre_vote(
            term, self.raftCurrentTerm, message.get("last_log_term", 0),
            message.get("last_log_index", 0), self._SyncObj__getCurrentLogTerm(),
            self._SyncObj__getCurrentLogIndex(), self._hears_leader(),
            stands_in_that_term=own is not None and own["passed"] and own["term"] == term)
        if granted:
            given_term, given = self._pre_votes_given
            self._pre_votes_given = (term, (given if given_term == term else set()) | {node})
        self._send(node, {"type": "pre_vote_resp", "term": message.get("term"), "granted": granted})

    def _on_pre_vote_resp(self, node, message: dict) -> None:
        pre_vote = self._pre_vote
        if pre_vote is None or message.get("term") != pre_vote["term"] or not message.get("granted"):
            return
        pre_vote["granted"].add(node)
        self._count_pre_votes()

    def _count_pre_votes(self) -> None:
        pre_vote = self._pre_vote
        if pre_vote["passed"] or pre_vote["term"] != self.raftCurrentTerm + 1:
            return
        voters = len(self.otherNodes) + 1
        if not elections.majority(len(pre_vote["granted"] & (self.otherNodes | {self.selfNode})), voters):
            return
        given_term, given = self._pre_votes_given
        if given_term == pre_vote["term"] and elections.stands_back(str(self.selfNode), map(str, given)):
            # Both our pre-vote and another's passed for this term: two candidates would split
            # the vote (and wait out a whole election timeout). The higher id stands back and
            # votes for the other.
            log.info("event=pre_vote_stand_back term=%s for=%s", pre_vote["term"], min(map(str, given)))
            self._pre_vote = None
            self._SyncObj__raftElectionDeadline = raft_clock() + self._SyncObj__generateRaftTimeout()
            return
        pre_vote["passed"] = True
        self._SyncObj__raftElectionDeadline = 0  # pysyncobj starts the election next tick

