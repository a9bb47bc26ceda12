"""What a chaos run's files say: pure functions from the run's records to its summary.

- `merge_histories`: the clients' history-<i>.jsonl files, in time order, as one history.
- `lost_adds`: the acknowledged-write check. Every add a client saw acknowledged (ok) must be in
  its final read; an add whose outcome is unknown (info) may or may not be; one never attempted
  must not be. Independent of the linearizability checker, as Jepsen's set checker is.
- `leader_changes`: from the observer's lines, the terms in which some member named a leader.
- `fault_windows`: per scheduled fault, how many operations completed in its window and what
  share of them succeeded (ok), next to the same figure outside every fault.
"""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.lab import history
from orchestrator.lab.schedule import ScheduledFault


def merge_histories(paths: list[Path]) -> list[str]:
    events = []
    for path in paths:
        for line in path.read_text().splitlines():
            if line.strip():
                events.append((json.loads(line)["time"], line))
    return [line for _, line in sorted(events, key=lambda e: e[0])]


def lost_adds(adds_lines: list[str]) -> dict:
    """One client's adds file -> {acknowledged, unknown, lost, unexpected, final_read}."""
    outcomes: dict[str, str] = {}
    final: list[str] | None = None
    for line in adds_lines:
        record = json.loads(line)
        if "final_read" in record:
            final = record["final_read"]
        else:
            outcomes[record["element"]] = record["outcome"]
    acknowledged = {e for e, outcome in outcomes.items() if outcome == "ok"}
    report = {"acknowledged": len(acknowledged), "unknown": sum(o == "info" for o in outcomes.values()),
              "final_read": final is not None, "lost": [], "unexpected": []}
    if final is not None:
        seen = set(final)
        report["lost"] = sorted(acknowledged - seen)
        # present but surely not applied (fail), or never attempted at all
        report["unexpected"] = sorted(e for e in seen if outcomes.get(e, "fail") == "fail")
    return report


def combine_adds(reports: list[dict]) -> dict:
    return {
        "acknowledged": sum(r["acknowledged"] for r in reports),
        "unknown": sum(r["unknown"] for r in reports),
        "clients_without_final_read": sum(not r["final_read"] for r in reports),
        "lost": [e for r in reports for e in r["lost"]],
        "unexpected": [e for r in reports for e in r["unexpected"]],
    }


def leader_changes(observation_lines: list[str], peers: list[str], started: float) -> dict:
    """Terms in which a member named a leader, in order of first sight (seconds into the run),
    with who led."""
    first_seen: dict[int, tuple[float, str]] = {}
    for line in observation_lines:
        record = json.loads(line)
        if record.get("leader") and record.get("term") is not None:
            first_seen.setdefault(record["term"], (record["time"], record["leader"]))
    terms = sorted(first_seen, key=lambda term: first_seen[term][0])
    names = {peer: f"m{i + 1}" for i, peer in enumerate(peers)}
    leaders = [{"term": term, "time_s": round(first_seen[term][0] - started, 3),
                "leader": names.get(first_seen[term][1], first_seen[term][1])} for term in terms]
    return {"leader_changes": max(0, len(leaders) - 1), "leaders": leaders}


def members_at_end(observation_lines: list[str], peers: list[str]) -> dict:
    """Each member's last answer: whom it follows and in which term. `settled` is true when every
    member answered and all name the same leader in the same term (the cluster recovered)."""
    last: dict[int, dict] = {}
    for line in observation_lines:
        record = json.loads(line)
        last[record["member"]] = record
    names = {peer: f"m{i + 1}" for i, peer in enumerate(peers)}
    view = {f"m{i + 1}": ({"leader": names.get(last[i].get("leader")), "term": last[i].get("term")}
                          if i in last and "error" not in last[i] else None) for i in range(len(peers))}
    answers = {(v["leader"], v["term"]) for v in view.values() if v is not None}
    settled = None not in view.values() and len(answers) == 1 and None not in next(iter(answers))
    return {"members_at_end": view, "settled": settled}


def current_leader(observation_lines: list[str], peers: list[str]) -> int | None:
    """The member index named leader in the highest term among the newest answers."""
    best: tuple[int, str] | None = None
    for line in observation_lines[-4 * len(peers):]:
        record = json.loads(line)
        if record.get("leader") in peers and (best is None or record["term"] > best[0]):
            best = (record["term"], record["leader"])
    return peers.index(best[1]) if best else None


def fault_windows(events: list[history.Event], schedule: list[ScheduledFault], started: float) -> dict:
    windows = [(started + f.start_s, started + f.start_s + f.duration_s) for f in schedule]
    per_fault = [[0, 0] for _ in schedule]
    outside = [0, 0]
    for event in events:
        if event.type == "invoke":
            continue
        hits = [i for i, (a, b) in enumerate(windows) if a <= event.time <= b]
        for counts in [per_fault[i] for i in hits] or [outside]:
            counts[0] += event.type == "ok"
            counts[1] += 1

    def share(ok: int, total: int) -> float | None:
        return round(ok / total, 3) if total else None
    return {
        "outside_faults": {"completed": outside[1], "ok_share": share(*outside)},
        "per_fault": [{"kind": f.kind, "targets": list(f.targets), "start_s": f.start_s,
                       "duration_s": f.duration_s, "completed": total, "ok_share": share(ok, total)}
                      for f, (ok, total) in zip(schedule, per_fault, strict=True)],
    }
