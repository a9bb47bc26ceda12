"""Fault schedules and partition shapes: pure functions of their arguments, so a seed replays.

A schedule is a list of `ScheduledFault(start_s, duration_s, kind, targets)`, one fault at a
time, each healed at `start_s + duration_s`. `targets` are member indexes; what they mean
depends on the kind:

| kind | targets | effect |
|---|---|---|
| partition | the minority side | random halves: targets and the rest stop hearing each other |
| partition-leader | () | the member that leads when the fault starts is cut off from all others |
| oneway | the minority side | targets stop hearing the rest; the rest still hear them |
| deaf-to-leader | (i,) | i stops hearing the member that leads when the fault starts; the leader still hears i |
| ring | every member, in ring order | each member hears only its neighbours within `ring_reach` steps |
| bridge | every member, in order | first half and second half cut apart; the middle member hears both |
| loss | (i,) | 30% of i's packets dropped, both ways |
| bandwidth | (i,) | i's link limited to 256 kbit/s (tbf) |
| kill | (i,) | SIGKILL, restarted at the heal |
| pause | (i,) | SIGSTOP, SIGCONT at the heal |
| hog | (i,) | a busy-loop process on i's host |
| member | (i,) | i is killed and removed from the cluster; at the heal it is re-added empty |
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations

FAULTS = ("partition", "partition-leader", "oneway", "deaf-to-leader", "ring", "bridge", "loss", "bandwidth",
          "kill", "pause", "hog", "member")
NETWORK_FAULTS = {"partition", "partition-leader", "oneway", "deaf-to-leader", "ring", "bridge", "loss",
                  "bandwidth"}
PARTITION_KINDS = {"partition", "partition-leader", "oneway", "deaf-to-leader", "ring", "bridge"}
LEADER_KINDS = {"partition-leader", "deaf-to-leader"}  # their cut depends on who leads
ONE_WAY_KINDS = {"oneway", "deaf-to-leader"}
EVERY_MEMBER_KINDS = {"ring", "bridge"}  # their targets are a permutation of every member
MINORITY_KINDS = {"partition", "oneway"}


@dataclass(frozen=True)
class ScheduledFault:
    start_s: float
    duration_s: float
    kind: str
    targets: tuple[int, ...]


def make_schedule(seed: int, faults: list[str], members: int, duration_s: float) -> list[ScheduledFault]:
    """Faults take the first 75% of the run, one at a time with a pause between them; the same
    arguments give the same schedule."""
    rng = random.Random(seed)
    schedule, t = [], 1.0
    while t < duration_s * 0.75:
        kind = rng.choice(faults)
        length = rng.uniform(1.0, min(6.0, duration_s * 0.2))
        schedule.append(ScheduledFault(round(t, 3), round(length, 3), kind, _draw_targets(rng, kind, members)))
        t += length + rng.uniform(0.5, 2.0)
    return schedule


def _draw_targets(rng: random.Random, kind: str, members: int) -> tuple[int, ...]:
    if kind in MINORITY_KINDS:
        return tuple(sorted(rng.sample(range(members), rng.randint(1, max(1, (members - 1) // 2)))))
    if kind in EVERY_MEMBER_KINDS:
        return tuple(rng.sample(range(members), members))
    if kind == "partition-leader":
        return ()
    return (rng.randrange(members),)


def ring_reach(members: int) -> int:
    """How many ring steps a member hears in a `ring` fault: 1 for up to 8 members (with 4 or 5,
    each member hears a majority, but no two members hear the same one)."""
    return max(1, members // 4)


def cut_pairs(kind: str, targets: tuple[int, ...], members: int, leader: int | None = None) -> list[tuple[int, int]]:
    """The unordered member pairs a network partition cuts (both ways unless the kind is one
    of ONE_WAY_KINDS, where the pair is (deaf, unheard)). Empty when the shape cuts nothing (a ring of 3)."""
    everyone = range(members)
    if kind == "partition-leader":
        if leader is None:
            return []
        return [(leader, other) for other in everyone if other != leader]
    if kind == "deaf-to-leader":
        return [(target, leader) for target in targets if leader is not None and target != leader]
    if kind in MINORITY_KINDS:
        return [(a, b) for a in targets for b in everyone if b not in targets]
    if kind == "ring":
        position = {member: i for i, member in enumerate(targets)}
        reach = ring_reach(members)

        def distance(a: int, b: int) -> int:
            steps = abs(position[a] - position[b])
            return min(steps, members - steps)
        return [(a, b) for a, b in combinations(targets, 2) if distance(a, b) > reach]
    if kind == "bridge":
        half = members // 2
        left, right = targets[:half], targets[half + 1:]
        return [(a, b) for a in left for b in right]
    raise ValueError(f"{kind} is not a partition")


def who_hears_whom(pairs: list[tuple[int, int]], members: int, one_way: bool = False) -> dict[int, set[int]]:
    """For each member, the members it still hears (a test and reading aid)."""
    hears = {m: set(range(members)) - {m} for m in range(members)}
    for deaf, unheard in pairs:
        hears[deaf].discard(unheard)
        if not one_way:
            hears[unheard].discard(deaf)
    return hears
