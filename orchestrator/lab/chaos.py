"""`ketch chaos run`: a kv cluster in a lab, a register workload, a seeded fault schedule, a verdict.

    ketch chaos run --members 5 --duration 60 --faults partition,kill,pause,loss --seed 7 --out DIR

The schedule is a pure function of (seed, faults, members, duration): the same seed replays the
same faults at the same offsets. Faults take the first 75% of the run, each followed by a heal;
the last 25% is fault-free, so the cluster recovers and the final reads see the end state.
DIR gets: history.jsonl, faults.jsonl (what was done, when), schedule.json, verdict.txt,
summary.json, and the lab's process logs. Everything is healed and removed at the end, also
when the run fails halfway.
"""

from __future__ import annotations

import json
import random
import secrets
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kvstore import linearizability as lin
from kvstore.member import new_secret_file
from orchestrator.lab.hosts import Lab, LabProcess, wait_port
from orchestrator.lab.nemesis import Nemesis

FAULTS = ("partition", "kill", "pause", "loss", "oneway", "hog", "bandwidth")
NETWORK_FAULTS = {"partition", "loss", "oneway", "bandwidth"}
CLIENT_PORT, PEER_PORT = 2379, 2380


@dataclass(frozen=True)
class ScheduledFault:
    start_s: float
    duration_s: float
    kind: str
    targets: tuple[int, ...]  # member indexes; for partition: the minority side


def make_schedule(seed: int, faults: list[str], members: int, duration_s: float) -> list[ScheduledFault]:
    """Deterministic: the same arguments give the same schedule."""
    rng = random.Random(seed)
    schedule, t = [], 1.0
    while t < duration_s * 0.75:
        kind = rng.choice(faults)
        length = rng.uniform(1.0, min(6.0, duration_s * 0.2))
        if kind in ("partition", "oneway"):
            minority = rng.sample(range(members), rng.randint(1, (members - 1) // 2))
            targets = tuple(sorted(minority))
        else:
            targets = (rng.randrange(members),)
        schedule.append(ScheduledFault(round(t, 3), round(length, 3), kind, targets))
        t += length + rng.uniform(0.5, 2.0)
    return schedule


@dataclass
class ChaosRun:
    members: int
    duration_s: float
    faults: list[str]
    seed: int
    out: Path
    clients: int = 5
    unsafe_local_reads: bool = False
    schedule: list[ScheduledFault] | None = None  # default: make_schedule(seed, ...)

    def run(self) -> dict:
        self.out.mkdir(parents=True, exist_ok=True)
        schedule = self.schedule if self.schedule is not None else make_schedule(
            self.seed, self.faults, self.members, self.duration_s)
        (self.out / "schedule.json").write_text(json.dumps([asdict(f) for f in schedule], indent=1))
        lab = Lab.create(self.members + 1, self.out / "lab")
        if not lab.isolated and NETWORK_FAULTS & set(self.faults):
            lab.close()
            raise RuntimeError("network faults need root and network namespaces; use --faults kill,pause")
        nemesis = Nemesis(lab, self.out / "faults.jsonl")
        try:
            member_hosts, client_host = lab.hosts[:self.members], lab.hosts[-1]
            self._write_secrets()
            processes = [self._start_member(lab, i) for i in range(self.members)]
            for host in member_hosts:
                wait_port(lab, host, CLIENT_PORT)
            endpoints = ",".join(f"{h.address}:{CLIENT_PORT}" for h in member_hosts)
            workload = lab.start(client_host, "workload", [
                sys.executable, "-m", "orchestrator.lab.workload", "--endpoints", endpoints,
                "--token-file", str(self.out / "tokens"), "--clients", str(self.clients),
                "--duration", str(self.duration_s), "--seed", str(self.seed),
                "--out", str(self.out / "history.jsonl")])
            started = time.monotonic()
            nemesis.record("start", seed=self.seed, members=self.members)
            for fault in schedule:
                _sleep_until(started + fault.start_s)
                self._inject(lab, nemesis, processes, fault)
                _sleep_until(started + fault.start_s + fault.duration_s)
                self._heal(lab, nemesis, processes, fault)
            nemesis.heal_all()
            workload.process.wait(timeout=self.duration_s + 120)
        finally:
            nemesis.heal_all()
            lab.close()
        return self._judge(schedule, started)

    def _write_secrets(self) -> None:
        tokens = self.out / "tokens"
        tokens.write_text(secrets.token_hex(16) + "\n")
        secret = self.out / "peer-secret"
        if secret.exists():
            secret.unlink()
        new_secret_file(secret)

    def _member_argv(self, lab: Lab, i: int) -> list[str]:
        hosts = lab.hosts[:self.members]
        cluster = ",".join(f"m{j + 1}={h.address}:{PEER_PORT}" for j, h in enumerate(hosts))
        argv = [sys.executable, "-m", "orchestrator.cli", "kv", "serve", "--name", f"m{i + 1}",
                "--data-dir", str(self.out / f"m{i + 1}"), "--listen-client", f"{hosts[i].address}:{CLIENT_PORT}",
                "--initial-cluster", cluster, "--token-file", str(self.out / "tokens"),
                "--peer-secret-file", str(self.out / "peer-secret")]
        return argv + (["--unsafe-local-reads"] if self.unsafe_local_reads else [])

    def _start_member(self, lab: Lab, i: int) -> LabProcess:
        return lab.start(lab.hosts[i], f"m{i + 1}", self._member_argv(lab, i))

    def _inject(self, lab: Lab, nemesis: Nemesis, processes: list[LabProcess], fault: ScheduledFault) -> None:
        hosts = lab.hosts[:self.members]
        targets = [hosts[i] for i in fault.targets]
        others = [h for h in hosts if h not in targets]
        if fault.kind == "partition":
            nemesis.partition(targets, others)
        elif fault.kind == "oneway":
            nemesis.partition(targets, others, one_way=True)
        elif fault.kind == "loss":
            nemesis.loss(targets[0], 30)
        elif fault.kind == "bandwidth":
            nemesis.bandwidth(targets[0], "256kbit")
        elif fault.kind == "kill":
            nemesis.kill(processes[fault.targets[0]])
        elif fault.kind == "pause":
            nemesis.pause(processes[fault.targets[0]])
        elif fault.kind == "hog":
            nemesis.cpu_hog(targets[0])

    def _heal(self, lab: Lab, nemesis: Nemesis, processes: list[LabProcess], fault: ScheduledFault) -> None:
        if fault.kind == "kill":
            i = fault.targets[0]
            processes[i] = self._start_member(lab, i)
            nemesis.record("restart", host=lab.hosts[i].name, pid=processes[i].pid)
        else:
            nemesis.heal_all()

    def _judge(self, schedule: list[ScheduledFault], started: float) -> dict:
        events = lin.parse_history((self.out / "history.jsonl").read_text().splitlines())
        ops = lin.operations(events)
        result = lin.check(ops, lin.REGISTER)
        completions = [e for e in events if e.type != "invoke"]
        summary = {
            "seed": self.seed, "members": self.members, "duration_s": self.duration_s, "faults": self.faults,
            "scheduled_faults": len(schedule), "operations": len(completions),
            "ok": sum(e.type == "ok" for e in completions), "fail": sum(e.type == "fail" for e in completions),
            "info": sum(e.type == "info" for e in completions), "verdict": result.verdict.value,
            "availability_during_faults": _availability(events, schedule, started),
        }
        (self.out / "verdict.txt").write_text(f"{result.verdict.value}\n{result.explanation}\n")
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def _availability(events: list[lin.Event], schedule: list[ScheduledFault], start: float) -> dict:
    """Share of ops completed ok, inside fault windows and outside them."""
    windows = [(start + f.start_s, start + f.start_s + f.duration_s) for f in schedule]
    counts = {"in_faults": [0, 0], "outside": [0, 0]}
    for event in events:
        if event.type == "invoke":
            continue
        bucket = "in_faults" if any(a <= event.time <= b for a, b in windows) else "outside"
        counts[bucket][1] += 1
        counts[bucket][0] += event.type == "ok"
    return {k: round(ok / total, 3) if total else None for k, (ok, total) in counts.items()}


def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)
