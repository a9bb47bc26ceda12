"""Fault schedules are a pure function of the seed: a run can be replayed."""

from orchestrator.lab.chaos import make_schedule


def test_the_same_seed_gives_the_same_schedule():
    assert make_schedule(7, ["partition", "kill"], 5, 60) == make_schedule(7, ["partition", "kill"], 5, 60)


def test_another_seed_gives_another_schedule():
    assert make_schedule(7, ["partition", "kill"], 5, 60) != make_schedule(8, ["partition", "kill"], 5, 60)


def test_faults_stay_in_the_first_three_quarters_and_partitions_leave_a_majority():
    for seed in range(20):
        for fault in make_schedule(seed, ["partition", "oneway", "pause"], 5, 40):
            assert fault.start_s < 30
            if fault.kind in ("partition", "oneway"):
                assert 1 <= len(fault.targets) <= 2
