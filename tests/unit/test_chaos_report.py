"""A chaos run's verdict pieces: the lost-write check, leader changes, availability per fault."""

import json

from orchestrator.lab import history, report
from orchestrator.lab.schedule import ScheduledFault

PEERS = ["10.0.0.1:2380", "10.0.0.2:2380", "10.0.0.3:2380"]


def adds(*records) -> list[str]:
    return [json.dumps(r) for r in records]


def test_an_acknowledged_add_missing_from_the_final_read_is_lost():
    result = report.lost_adds(adds({"element": "a", "outcome": "ok"}, {"element": "b", "outcome": "ok"},
                                   {"final_read": ["a"]}))
    assert result["lost"] == ["b"] and result["acknowledged"] == 2


def test_an_unknown_add_may_be_present_or_absent_but_a_failed_one_must_be_absent():
    result = report.lost_adds(adds({"element": "a", "outcome": "info"}, {"element": "b", "outcome": "info"},
                                   {"element": "c", "outcome": "fail"}, {"final_read": ["a", "c", "zz"]}))
    assert result["lost"] == [] and result["unknown"] == 2
    assert result["unexpected"] == ["c", "zz"]  # failed yet applied; never attempted yet present


def test_without_a_final_read_nothing_is_claimed():
    result = report.lost_adds(adds({"element": "a", "outcome": "ok"}))
    assert result["final_read"] is False and result["lost"] == []
    assert report.combine_adds([result])["clients_without_final_read"] == 1


def observation(time, member, leader=None, term=None, error=None):
    if error:
        return json.dumps({"time": time, "member": member, "error": error})
    return json.dumps({"time": time, "member": member, "leader": leader, "term": term, "has_quorum": True})


def test_leader_changes_count_terms_with_a_leader():
    lines = [observation(10, 0, PEERS[0], 1), observation(10, 1, PEERS[0], 1), observation(11, 1, None, 2),
             observation(12, 2, PEERS[2], 3), observation(13, 0, PEERS[2], 3)]
    result = report.leader_changes(lines, PEERS, started=9)
    assert result["leader_changes"] == 1
    assert [(e["term"], e["leader"], e["time_s"]) for e in result["leaders"]] == [(1, "m1", 1), (3, "m3", 3)]


def test_the_current_leader_is_named_in_the_highest_recent_term():
    lines = [observation(10, 0, PEERS[0], 1), observation(10, 1, PEERS[1], 2), observation(10, 2, error="TooSlowError")]
    assert report.current_leader(lines, PEERS) == 1
    assert report.current_leader([observation(10, 0, None, 4)], PEERS) is None


def test_a_cluster_is_settled_only_when_every_member_follows_one_leader_in_one_term():
    agreeing = [observation(10, m, PEERS[1], 5) for m in range(3)]
    assert report.members_at_end(agreeing, PEERS)["settled"] is True
    lagging = agreeing[:2] + [observation(10, 2, None, 4)]
    assert report.members_at_end(lagging, PEERS)["settled"] is False
    silent = agreeing[:2] + [observation(10, 2, error="TooSlowError")]
    assert report.members_at_end(silent, PEERS)["members_at_end"]["m3"] is None


def test_availability_is_counted_per_fault_window():
    events = [history.Event(process=0, type=t, f="read", key="r", value=None, time=time)
              for time, t in [(100.5, "invoke"), (101, "ok"), (102.5, "fail"), (103, "info"), (110, "ok")]]
    schedule = [ScheduledFault(1.0, 2.0, "pause", (0,)), ScheduledFault(2.5, 1.0, "kill", (1,))]
    result = report.fault_windows(events, schedule, started=100)
    assert [(w["completed"], w["ok_share"]) for w in result["per_fault"]] == [(3, 0.333), (2, 0.0)]
    assert result["outside_faults"] == {"completed": 1, "ok_share": 1.0}


def test_histories_of_several_clients_merge_in_time_order(tmp_path):
    (tmp_path / "a").write_text(json.dumps({"time": 1}) + "\n" + json.dumps({"time": 4}) + "\n")
    (tmp_path / "b").write_text(json.dumps({"time": 2}) + "\n")
    merged = report.merge_histories([tmp_path / "a", tmp_path / "b"])
    assert [json.loads(line)["time"] for line in merged] == [1, 2, 4]
