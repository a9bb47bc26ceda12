"""Chaos runs: a kv cluster in network namespaces, a register workload, faults, the checker.

`make test` runs a bounded budget; KETCH_CHAOS_SOAK=N runs N longer hypothesis schedules.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.lab.chaos import ChaosRun, ScheduledFault

SOAK = int(os.environ.get("KETCH_CHAOS_SOAK", "0"))


def test_every_fault_at_once_leaves_the_history_linearizable(tmp_path):
    summary = ChaosRun(5, 15, ["partition", "kill", "pause", "loss", "oneway", "hog"], seed=11,
                       out=tmp_path).run()
    assert summary["verdict"] == "linearizable", (tmp_path / "verdict.txt").read_text()
    assert summary["ok"] > 100 and summary["scheduled_faults"] >= 2


def test_the_harness_catches_unsafe_local_reads(tmp_path):
    """A checker that never fails proves nothing: serve reads from local state, partition
    members away, and the history must be found not linearizable (within three seeds)."""
    verdicts = []
    for seed in (1, 3, 5):
        summary = ChaosRun(3, 12, ["partition"], seed=seed, out=tmp_path / f"s{seed}",
                           unsafe_local_reads=True).run()
        verdicts.append(summary["verdict"])
        if summary["verdict"] == "not linearizable":
            break
    assert "not linearizable" in verdicts, verdicts


MEMBERS = 3
faults = st.builds(
    ScheduledFault,
    start_s=st.floats(0.5, 5.0),
    duration_s=st.floats(0.5, 3.0),
    kind=st.sampled_from(["partition", "kill", "pause", "loss", "oneway"]),
    targets=st.sampled_from([(0,), (1,), (2,)]),
)
schedules = st.lists(faults, min_size=1, max_size=3).map(lambda fs: sorted(fs, key=lambda f: f.start_s))


@settings(max_examples=max(SOAK, 2), deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(schedule=schedules)
def test_drawn_fault_schedules_stay_linearizable(tmp_path_factory, schedule):
    """Hypothesis draws (fault, targets, start, duration) lists; a failure shrinks to a minimal
    schedule, which hypothesis prints (it is the whole repro: schedules are explicit)."""
    out = tmp_path_factory.mktemp("schedule")
    duration = 10 if not SOAK else 30
    summary = ChaosRun(MEMBERS, duration, sorted({f.kind for f in schedule}), seed=0, out=out,
                       schedule=schedule).run()
    assert summary["verdict"] == "linearizable", (out / "verdict.txt").read_text()
