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
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from kvstore.member import new_secret_file
from orchestrator.lab import history as histories
from orchestrator.lab import linearizability as lin
from orchestrator.lab import report
from orchestrator.lab.hosts import Host, Lab, LabProcess, wait_port
from orchestrator.lab.nemesis import Nemesis
from orchestrator.lab.schedule import (
    LEADER_KINDS,
    NETWORK_FAULTS,
    ONE_WAY_KINDS,
    PARTITION_KINDS,
    ScheduledFault,
    cut_pairs,
    make_schedule,
)

CLIENT_PORT, PEER_PORT = 2379, 2380
MEMBER_CHANGE_TIMEOUT_S = 20.0


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
        if not lab.isolated and NETWORK_FAULTS & ({f.kind for f in schedule} | set(self.faults)):
            lab.close()
            raise RuntimeError("network faults need root and network namespaces; use --faults kill,pause,member")
        self.lab, self.nemesis = lab, Nemesis(lab, self.out / "faults.jsonl")
        self.client_host, self.removed = lab.hosts[-1], set()
        self.peers = [f"{h.address}:{PEER_PORT}" for h in lab.hosts[:self.members]]
        self.endpoints = [f"{h.address}:{CLIENT_PORT}" for h in lab.hosts[:self.members]]
        try:
            self._write_secrets()
            self.processes = [self._start_member(i) for i in range(self.members)]
            for host in lab.hosts[:self.members]:
                wait_port(lab, host, CLIENT_PORT)
            workload = [self._start_client(i) for i in range(self.clients)]
            observer = self._start_observer()
            started = time.monotonic()
            self.nemesis.record("start", seed=self.seed, members=self.members)
            for fault in schedule:
                _sleep_until(started + fault.start_s)
                self._inject(fault)
                _sleep_until(started + fault.start_s + fault.duration_s)
                self._heal(fault)
            self.nemesis.heal_all()
            for client in workload:
                client.process.wait(timeout=self.duration_s + 120)
            lab.stop(observer)
        finally:
            self.nemesis.heal_all()
            lab.close()
        return self._judge(schedule, started)

    # --- processes ----------------------------------------------------------------------------

    def _write_secrets(self) -> None:
        tokens = self.out / "tokens"
        tokens.write_text(secrets.token_hex(16) + "\n")
        secret = self.out / "peer-secret"
        if secret.exists():
            secret.unlink()
        new_secret_file(secret)

    def _client_argv(self, module: str, *args: str) -> list[str]:
        return [sys.executable, "-m", module, *args, "--endpoints", ",".join(self.endpoints),
                "--token-file", str(self.out / "tokens")]

    def _start_client(self, i: int) -> LabProcess:
        return self.lab.start(self.client_host, f"client{i}", self._client_argv(
            "orchestrator.lab.workload", "--index", str(i), "--clients", str(self.clients),
            "--duration", str(self.duration_s), "--seed", str(self.seed), "--out", str(self.out)))

    def _start_observer(self) -> LabProcess:
        return self.lab.start(self.client_host, "observer", self._client_argv(
            "orchestrator.lab.observer", "--out", str(self.out / "leaders.jsonl"),
            "--duration", str(self.duration_s + 5)))

    def _start_member(self, i: int) -> LabProcess:
        cluster = ",".join(f"m{j + 1}={peer}" for j, peer in enumerate(self.peers))
        argv = [sys.executable, "-m", "orchestrator.cli", "kv", "serve", "--name", f"m{i + 1}",
                "--data-dir", str(self.out / f"m{i + 1}"), "--listen-client", self.endpoints[i],
                "--initial-cluster", cluster, "--token-file", str(self.out / "tokens"),
                "--peer-secret-file", str(self.out / "peer-secret")]
        argv += ["--unsafe-local-reads"] if self.unsafe_local_reads else []
        return self.lab.start(self.lab.hosts[i], f"m{i + 1}", argv)

    # --- faults -------------------------------------------------------------------------------

    def _inject(self, fault: ScheduledFault) -> None:
        hosts: list[Host] = self.lab.hosts[:self.members]
        nemesis, i = self.nemesis, (fault.targets or (None,))[0]
        if fault.kind in PARTITION_KINDS:
            leader = None
            if fault.kind in LEADER_KINDS:
                leader = report.current_leader(_lines(self.out / "leaders.jsonl"), self.peers)
            pairs = cut_pairs(fault.kind, fault.targets, self.members, leader)
            nemesis.cut([(hosts[a], hosts[b]) for a, b in pairs], fault.kind, one_way=fault.kind in ONE_WAY_KINDS)
        elif fault.kind == "loss":
            nemesis.loss(hosts[i], 30)
        elif fault.kind == "bandwidth":
            nemesis.bandwidth(hosts[i], "256kbit")
        elif fault.kind in ("kill", "member"):
            nemesis.kill(self.processes[i])
            if fault.kind == "member" and self._member_change("remove", i):
                self.removed.add(i)
        elif fault.kind == "pause":
            nemesis.pause(self.processes[i])
        elif fault.kind == "hog":
            nemesis.cpu_hog(hosts[i])

    def _heal(self, fault: ScheduledFault) -> None:
        if fault.kind not in ("kill", "member"):
            self.nemesis.heal_all()
            return
        i = fault.targets[0]
        if i in self.removed:
            # Its removal was acknowledged, so committed: it comes back as a new, empty member
            # (etcd's replace procedure). An unacknowledged removal keeps its data: wiping a
            # member that may still count towards a quorum could lose acknowledged writes.
            shutil.rmtree(self.out / f"m{i + 1}", ignore_errors=True)
            self._member_change("add", i)
            self.removed.discard(i)
        self.processes[i] = self._start_member(i)
        self.nemesis.record("restart", host=self.lab.hosts[i].name, pid=self.processes[i].pid)

    def _kv_cli(self, *args: str) -> subprocess.CompletedProcess | subprocess.CalledProcessError:
        """`ketch kv ARGS` from the client host; the finished process, or its error."""
        argv = [sys.executable, "-m", "orchestrator.cli", "kv", *args, "--endpoints", ",".join(self.endpoints),
                "--token-file", str(self.out / "tokens"), "--timeout", "5"]
        try:
            return self.lab.run_in(self.client_host, *argv)
        except subprocess.CalledProcessError as err:
            return err
        except subprocess.TimeoutExpired as err:
            return subprocess.CalledProcessError(-1, argv, "", f"timed out after {err.timeout} s")

    def _member_change(self, action: str, i: int) -> bool:
        """Retry until the change is acknowledged; record what happened either way."""
        deadline, answer = time.monotonic() + MEMBER_CHANGE_TIMEOUT_S, None
        while time.monotonic() < deadline:
            answer = self._kv_cli("member", action, self.peers[i])
            if answer.returncode == 0:
                break
            time.sleep(0.5)
        self.nemesis.record(f"member_{action}", host=self.lab.hosts[i].name, peer=self.peers[i],
                            ok=answer is not None and answer.returncode == 0,
                            error=None if answer is None else answer.stderr.strip()[-300:])
        return answer is not None and answer.returncode == 0

    # --- verdict ------------------------------------------------------------------------------

    def _judge(self, schedule: list[ScheduledFault], started: float) -> dict:
        history = report.merge_histories([self.out / f"history-{i}.jsonl" for i in range(self.clients)])
        (self.out / "history.jsonl").write_text("".join(line + "\n" for line in history))
        events = histories.parse_history(history)
        result = lin.check(histories.operations(events), lin.REGISTER)
        adds = report.combine_adds([report.lost_adds(_lines(self.out / f"adds-{i}.jsonl"))
                                    for i in range(self.clients)])
        completions = [e for e in events if e.type != "invoke"]
        summary = {
            "seed": self.seed, "members": self.members, "duration_s": self.duration_s, "faults": self.faults,
            "scheduled_faults": len(schedule), "operations": len(completions),
            "ok": sum(e.type == "ok" for e in completions), "fail": sum(e.type == "fail" for e in completions),
            "info": sum(e.type == "info" for e in completions), "verdict": result.verdict.value,
            "adds": adds, "acknowledged_lost": len(adds["lost"]) + len(adds["unexpected"]),
            **report.leader_changes(_lines(self.out / "leaders.jsonl"), self.peers, started),
            **report.members_at_end(_lines(self.out / "leaders.jsonl"), self.peers),
            "availability": report.fault_windows(events, schedule, started),
        }
        (self.out / "verdict.txt").write_text(f"{result.verdict.value}\n{result.explanation}\n")
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        return summary


def _lines(path: Path) -> list[str]:
    """A record file's complete lines (a process stopped mid-write leaves no half line here)."""
    if not path.exists():
        return []
    text = path.read_text()
    return [line for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]


def _sleep_until(when: float) -> None:
    delay = when - time.monotonic()
    if delay > 0:
        time.sleep(delay)
