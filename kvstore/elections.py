"""Election rules pysyncobj lacks, pure: pre-vote and the leader-lease rule for votes.

The disruptive member (Raft dissertation §4.2.3, §9.6): a member that cannot hear the leader
but can reach the others times out, raises its term and asks for votes; every member that
sees the higher term drops the leader, so a healthy leader is deposed again and again.
Measured in the chaos runs: a re-added member cut off from the leader forced a new election
about every second. Two rules stop it, as in etcd (PreVote + CheckQuorum):
- pre-vote (§9.6): before raising its term a member asks whether it *would* get votes; a
  member grants that only if it has not heard from a live leader within the minimum election
  timeout and the asker's log is at least as up to date as its own. Nothing changes state on
  a pre-vote, so a member that cannot win never raises its term;
- leader lease for votes (§4.2.3): a real RequestVote that arrives within the minimum
  election timeout of hearing from a current leader is ignored (neither the term nor the vote
  changes), unless it comes from a leadership transfer, which the leader itself started.
And two to keep the election that follows short (a split vote costs a whole election timeout):
two members whose pre-votes for one term both passed (each granted the other's) do not both
stand, the higher id stands back; and a member whose pre-vote passed grants no other for it.
"""

from __future__ import annotations

from typing import Iterable


def log_at_least_as_up_to_date(candidate_last_term: int, candidate_last_index: int,
                               own_last_term: int, own_last_index: int) -> bool:
    """Raft §5.4.1: compare the last entries' terms, then the logs' lengths."""
    return (candidate_last_term, candidate_last_index) >= (own_last_term, own_last_index)


def follower_has_leader(now_s: float, last_leader_contact_s: float, leader_connected: bool,
                        election_min_s: float) -> bool:
    """A follower still hears a live leader: recent contact on a connection that is still up.
    (A leader killed outright closes its connections; waiting out the timeout would only
    delay the election that replaces it.)"""
    return leader_connected and now_s - last_leader_contact_s < election_min_s


def leader_has_quorum(now_s: float, last_response_s: Iterable[float], election_min_s: float) -> bool:
    """A leader heard from a majority (itself included) within the minimum election timeout."""
    responses = list(last_response_s)
    recent = 1 + sum(now_s - t < election_min_s for t in responses)
    return recent > (len(responses) + 1) / 2


def grant_pre_vote(candidate_term: int, own_term: int, candidate_last_term: int, candidate_last_index: int,
                   own_last_term: int, own_last_index: int, hears_leader: bool,
                   stands_in_that_term: bool = False) -> bool:
    """A member whose own pre-vote for that term has passed says no: it is about to stand, and
    a second candidate in the same term would split the vote. (Its pre-vote can pass on an
    answer that arrives just before the other's request, so `stands_back` never sees it.)"""
    return (candidate_term > own_term and not hears_leader and not stands_in_that_term
            and log_at_least_as_up_to_date(candidate_last_term, candidate_last_index, own_last_term, own_last_index))


def stands_back(own_id: str, pre_voted_for: Iterable[str]) -> bool:
    """Two members that lost the leader at once can each grant the other's pre-vote before
    either raises its term; both would then stand and split the vote. The one that granted a
    pre-vote to a lower id stands back (a deterministic tie-break both sides agree on)."""
    return any(other < own_id for other in pre_voted_for)


def majority(granted: int, voters_total: int) -> bool:
    return granted > voters_total / 2
