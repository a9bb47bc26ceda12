"""Fault schedules are a pure function of the seed: a run can be replayed."""

from orchestrator.lab.schedule import FAULTS, cut_pairs, make_schedule, who_hears_whom


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


def test_every_kind_draws_targets_it_can_use():
    for seed in range(30):
        for fault in make_schedule(seed, list(FAULTS), 5, 60):
            if fault.kind in ("ring", "bridge"):
                assert sorted(fault.targets) == [0, 1, 2, 3, 4]
            elif fault.kind == "partition-leader":
                assert fault.targets == ()
            else:
                assert fault.targets and all(0 <= t < 5 for t in fault.targets)


def test_isolating_the_leader_cuts_it_from_everyone_and_nothing_else():
    hears = who_hears_whom(cut_pairs("partition-leader", (), 5, leader=2), 5)
    assert hears[2] == set()
    assert all(hears[m] == {0, 1, 3, 4} - {m} for m in (0, 1, 3, 4))
    assert cut_pairs("partition-leader", (), 5, leader=None) == []  # no leader known: no cut


def test_a_ring_of_five_lets_each_member_hear_its_two_neighbours():
    order = (3, 0, 4, 1, 2)
    hears = who_hears_whom(cut_pairs("ring", order, 5), 5)
    for position, member in enumerate(order):
        assert hears[member] == {order[position - 1], order[(position + 1) % 5]}
    # each member with itself is a majority (3 of 5), yet no two members share the same majority
    assert len({frozenset(h | {m}) for m, h in hears.items()}) == 5


def test_a_bridge_cuts_the_halves_apart_and_the_middle_hears_both():
    order = (4, 2, 0, 3, 1)
    hears = who_hears_whom(cut_pairs("bridge", order, 5), 5)
    assert hears[0] == {1, 2, 3, 4}  # the middle
    assert hears[4] == {2, 0} and hears[2] == {4, 0}
    assert hears[3] == {1, 0} and hears[1] == {3, 0}


def test_a_one_way_cut_leaves_the_other_direction_open():
    hears = who_hears_whom(cut_pairs("oneway", (1,), 3), 3, one_way=True)
    assert hears[1] == set() and hears[0] == {1, 2} and hears[2] == {0, 1}


def test_a_ring_of_three_cuts_nothing():
    assert cut_pairs("ring", (0, 1, 2), 3) == []


def test_deaf_to_leader_cuts_only_the_leader_to_target_direction():
    pairs = cut_pairs("deaf-to-leader", (3,), 5, leader=1)
    hears = who_hears_whom(pairs, 5, one_way=True)
    assert pairs == [(3, 1)]
    assert hears[3] == {0, 2, 4} and hears[1] == {0, 2, 3, 4}
    assert cut_pairs("deaf-to-leader", (1,), 5, leader=1) == []  # the leader cannot be deaf to itself
    assert cut_pairs("deaf-to-leader", (3,), 5, leader=None) == []
