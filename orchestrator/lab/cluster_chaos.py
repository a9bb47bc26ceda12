"""`ketch chaos run --lab DIR --workload deployments`: faults anywhere in a running lab while a
workload keeps changing Deployments and Services through the API, then a convergence check.

Faults (seeded, one at a time, each healed before the next; every fault and heal logged):
- `partition` (a random minority of hosts stops hearing the rest), `oneway`, `isolate` (one host),
  `loss` (30% of a host's packets), `bandwidth` (256 kbit/s): nft and tbf in the lab's fabric;
- `kill` (SIGKILL a component on a host, restarted at the heal), `pause` (SIGSTOP, SIGCONT at the
  heal): any component the host runs (kv, apiserver, scheduler, controller-manager, kubelet, ...).
The workload (`deployments`) creates Deployments with a Service each, scales them, rolls them and
deletes some, recording what the API acknowledged. After the heal the run waits (up to
--converge-seconds) until `convergence.problems` is empty, and reports how long that took.
Outputs: faults.jsonl, ops.jsonl, summary.json, report.html (fault timeline over availability).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from orchestrator.client import kubeconfig
from orchestrator.client.api import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    NAMESPACES,
    PODS,
    REPLICASETS,
    SERVICES,
    APIClient,
    APIStatusError,
    Unreachable,
)
from orchestrator.lab import fabric
from orchestrator.lab.cluster import LabState
from orchestrator.lab.components import Paths
from orchestrator.lab.convergence import Acked, problems
from orchestrator.lab.hosts import Host
from orchestrator.lab.nemesis import Nemesis
from orchestrator.lab.node import Running, alive, read_run_file, write_run_file

CLUSTER_FAULTS = ("partition", "oneway", "isolate", "loss", "bandwidth", "kill", "pause")
NETWORK = {"partition", "oneway", "isolate", "loss", "bandwidth"}
NAMESPACE = "chaos"


@dataclass(frozen=True)
class ClusterFault:
    start_s: float
    duration_s: float
    kind: str
    hosts: tuple[str, ...]
    component: str = ""


def make_cluster_schedule(seed: int, faults: list[str], hosts: dict[str, list[str]],
                          duration_s: float) -> list[ClusterFault]:
    """hosts: name -> the components it runs. Pure: the same arguments give the same schedule."""
    if not faults:
        return []
    rng = random.Random(seed)
    names = sorted(hosts)
    schedule, t = [], 2.0
    while t < duration_s * 0.7:
        kind = rng.choice(faults)
        length = round(rng.uniform(3.0, min(15.0, max(3.0, duration_s * 0.2))), 3)
        component = ""
        if kind in ("partition", "oneway"):
            targets = tuple(sorted(rng.sample(names, rng.randint(1, max(1, (len(names) - 1) // 2)))))
        else:
            targets = (rng.choice(names),)
            if kind in ("kill", "pause"):
                component = rng.choice(sorted(hosts[targets[0]]))
        schedule.append(ClusterFault(round(t, 3), length, kind, targets, component))
        t += length + rng.uniform(2.0, 5.0)
    return schedule


class LabFaults:
    """The nemesis for a persistent lab: network faults through the shared Nemesis (fabric nft and
    tbf), process faults on the pids `ketch node` records."""

    def __init__(self, state: LabState, log_path: Path) -> None:
        self.state = state
        self.config = state.config()
        self.paths = Paths(self.config.directory)
        self.hosts = {h.name: Host(h.name, h.address, state.hosts.get(h.name), fabric.veth_name(state.lab, i))
                      for i, h in enumerate(self.config.hosts)}
        self.nemesis = Nemesis(self, log_path, clock=time.time) if state.netns else None
        self.log_path = log_path
        self.killed: list[tuple[str, dict]] = []
        self.paused: list[int] = []

    # what Nemesis needs of a lab
    @property
    def isolated(self) -> bool:
        return self.state.netns

    def in_fabric(self, *argv: str, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", fabric.fabric_name(self.state.lab), *argv], input=input,
                              capture_output=True, text=True, timeout=30, check=True)

    def record(self, event: str, **details) -> None:
        with open(self.log_path, "a") as log:
            log.write(json.dumps({"time": time.time(), "event": event, **details}) + "\n")

    def component(self, host: str, name: str) -> dict | None:
        for entry in read_run_file(self.paths.run_file(host)).get("components") or []:
            if entry["name"] == name:
                return entry
        return None

    def inject(self, fault: ClusterFault) -> None:
        if fault.kind in NETWORK and self.nemesis is None:
            self.record("skipped", kind=fault.kind, reason="network faults need a namespace lab (root)")
            return
        targets = [self.hosts[h] for h in fault.hosts]
        rest = [h for name, h in self.hosts.items() if name not in fault.hosts]
        if fault.kind in ("partition", "isolate"):
            self.nemesis.partition(targets, rest)
        elif fault.kind == "oneway":
            self.nemesis.partition(targets, rest, one_way=True)
        elif fault.kind == "loss":
            self.nemesis.loss(targets[0], 30)
        elif fault.kind == "bandwidth":
            self.nemesis.bandwidth(targets[0], "256kbit")
        elif fault.kind in ("kill", "pause"):
            entry = self.component(fault.hosts[0], fault.component)
            if entry is None or not alive(entry["pid"]):
                self.record("skipped", kind=fault.kind, host=fault.hosts[0], component=fault.component,
                            reason="not running")
                return
            if fault.kind == "kill":
                os.killpg(entry["pid"], signal.SIGKILL)
                self.killed.append((fault.hosts[0], entry))
            else:
                os.killpg(entry["pid"], signal.SIGSTOP)
                self.paused.append(entry["pid"])
            self.record(fault.kind, host=fault.hosts[0], component=fault.component, pid=entry["pid"])

    def heal(self) -> None:
        if self.nemesis is not None:
            self.nemesis.heal_all()
        for pid in self.paused:
            try:
                os.killpg(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            self.record("resume", pid=pid)
        self.paused.clear()
        for host, entry in self.killed:
            self.restart(host, entry)
        self.killed.clear()

    def restart(self, host: str, entry: dict) -> None:
        """Start a killed component again with its own command line, inside its host, and record its
        new pid where `ketch node` and `ketch status` look."""
        with open(entry["log"], "ab") as out:
            process = subprocess.Popen(fabric.enter(self.state.hosts.get(host)) + entry["argv"], stdout=out,
                                       stderr=out, stdin=subprocess.DEVNULL, start_new_session=True)
        run_file = self.paths.run_file(host)
        run = read_run_file(run_file)
        components = [Running(**c) if c["name"] != entry["name"] else
                      Running(entry["name"], process.pid, entry["argv"], entry["log"], entry["health"], time.time())
                      for c in run.get("components") or []]
        write_run_file(run_file, host, components)
        self.record("restart", host=host, component=entry["name"], pid=process.pid)


class DeploymentsWorkload:
    """Clients that create, scale, roll and delete Deployments (each with a Service), recording ops."""

    def __init__(self, api: APIClient, rng: random.Random, ops_path: Path, image: str) -> None:
        self.api, self.rng, self.ops_path, self.image = api, rng, ops_path, image
        self.acked = Acked()
        self.live: list[str] = []
        self.counter = 0

    def record(self, op: str, name: str, outcome: str, started: float) -> None:
        with open(self.ops_path, "a") as log:
            log.write(json.dumps({"op": op, "name": name, "outcome": outcome, "start": started,
                                  "end": time.time()}) + "\n")

    def deployment(self, name: str, replicas: int) -> dict:
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": NAMESPACE},
                "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                         "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [
                             {"name": "web", "image": self.image, "command": ["httpd", "-f", "-p", "8080"],
                              "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 2}}]}}}}

    async def step(self) -> None:
        choice = self.rng.random()
        started = time.time()
        if not self.live or choice < 0.35:
            self.counter += 1
            name = f"d{self.counter}"
            op, calls = (
                "create",
                [
                    (DEPLOYMENTS, "create", self.deployment(name, self.rng.randint(1, 3))),
                    (
                        SERVICES,
                        "create",
                        {
                            "apiVersion": "v1",
                            "kind": "Service",
                            "metadata": {"name": name, "namespace": NAMESPACE},
                            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
                        },
                    ),
                ],
            )
        else:
            name = self.rng.choice(self.live)
            if choice < 0.6:
                op, calls = "scale", [(DEPLOYMENTS, "patch", {"spec": {"replicas": self.rng.randint(0, 3)}})]
            elif choice < 0.85:
                op, calls = (
                    "roll",
                    [
                        (
                            DEPLOYMENTS,
                            "patch",
                            {"spec": {"template": {"metadata": {"annotations": {"chaos/rolled": str(self.counter)}}}}},
                        )
                    ],
                )
                self.counter += 1
            else:
                op, calls = "delete", [(DEPLOYMENTS, "delete", None), (SERVICES, "delete", None)]
        try:
            for res, verb, body in calls:
                if verb == "create":
                    await self.api.create(res, NAMESPACE, body)
                elif verb == "patch":
                    await self.api.patch(res, NAMESPACE, name, body)
                else:
                    await self.api.delete(res, NAMESPACE, name)
        except (APIStatusError, Unreachable) as err:
            code = getattr(err, "code", 0)
            outcome = "fail" if code and code < 500 else "unknown"
            self.record(op, name, outcome, started)
            return
        full = f"{NAMESPACE}/{name}"
        if op == "create":
            self.acked.deployments.add(full)
            self.acked.services.add(full)
            self.live.append(name)
        elif op == "delete":
            self.acked.deployments.discard(full)
            self.acked.services.discard(full)
            self.acked.deleted.update({f"deployment:{full}", f"service:{full}"})
            self.live.remove(name)
        self.record(op, name, "ok", started)

    async def run(self, until: float, pause_s: float = 0.5) -> None:
        while time.time() < until:
            with trio.move_on_after(15):
                await self.step()
            await trio.sleep(pause_s)


async def cluster_state(api: APIClient) -> dict:
    lists = {}
    for name, res in (
        ("deployments", DEPLOYMENTS),
        ("replicasets", REPLICASETS),
        ("pods", PODS),
        ("services", SERVICES),
        ("slices", ENDPOINTSLICES),
    ):
        lists[name] = (await api.list(res, NAMESPACE))["items"]
    return lists


async def run_cluster_chaos(
    state: LabState,
    faults: list[str],
    seed: int,
    duration_s: float,
    out: Path,
    converge_s: float = 180.0,
    image: str = "busybox",
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    lab_faults = LabFaults(state, out / "faults.jsonl")
    hosts = {
        name: [c["name"] for c in read_run_file(lab_faults.paths.run_file(name)).get("components") or []]
        for name in lab_faults.hosts
    }
    schedule = make_cluster_schedule(seed, faults, hosts, duration_s)
    (out / "schedule.json").write_text(json.dumps([f.__dict__ for f in schedule], indent=1))
    access = kubeconfig.load(str(Paths(state.directory).kubeconfig("admin")))
    started = time.time()
    async with APIClient(access, timeout_s=10) as api:
        try:
            await api.create(NAMESPACES, None, {"metadata": {"name": NAMESPACE}})
        except APIStatusError as err:
            if err.code != 409:
                raise
        workload = DeploymentsWorkload(api, random.Random(seed), out / "ops.jsonl", image)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(workload.run, started + duration_s)
            try:
                for fault in schedule:
                    await trio.sleep_until(trio.current_time() + max(0.0, started + fault.start_s - time.time()))
                    await trio.to_thread.run_sync(lab_faults.inject, fault)
                    await trio.sleep(fault.duration_s)
                    await trio.to_thread.run_sync(lab_faults.heal)
            finally:
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(lab_faults.heal)
        healed = time.time()
        found, converged_after = ["not checked"], None
        deadline = healed + converge_s
        while time.time() < deadline:
            try:
                found = problems(**await cluster_state(api), acked=workload.acked, namespace=NAMESPACE)
            except (APIStatusError, Unreachable) as err:
                found = [f"the API does not answer: {err}"]
            if not found:
                converged_after = round(time.time() - healed, 1)
                break
            await trio.sleep(2)
    summary = summarize(out, schedule, started, healed, converged_after, found, seed, faults)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_report(out, summary)
    return summary


def summarize(out: Path, schedule, started: float, healed: float, converged_after, found, seed, faults) -> dict:
    ops = (
        [json.loads(line) for line in (out / "ops.jsonl").read_text().splitlines()]
        if (out / "ops.jsonl").exists()
        else []
    )
    windows = []
    for fault in schedule:
        begin, end = started + fault.start_s, started + fault.start_s + fault.duration_s
        inside = [o for o in ops if begin <= o["start"] < end]
        windows.append(
            {
                "kind": fault.kind,
                "hosts": list(fault.hosts),
                "component": fault.component,
                "start_s": fault.start_s,
                "duration_s": fault.duration_s,
                "ops": len(inside),
                "ok_share": round(sum(o["outcome"] == "ok" for o in inside) / len(inside), 3) if inside else None,
            }
        )
    return {
        "seed": seed,
        "faults": faults,
        "duration_s": round(healed - started, 1),
        "ops": len(ops),
        "ok": sum(o["outcome"] == "ok" for o in ops),
        "fail": sum(o["outcome"] == "fail" for o in ops),
        "unknown": sum(o["outcome"] == "unknown" for o in ops),
        "converged": converged_after is not None,
        "converged_after_s": converged_after,
        "problems": found[:50],
        "per_fault": windows,
    }


def write_report(out: Path, summary: dict) -> None:
    """An HTML page: the fault windows over a timeline, with the share of successful API operations."""
    ops = (
        [json.loads(line) for line in (out / "ops.jsonl").read_text().splitlines()]
        if (out / "ops.jsonl").exists()
        else []
    )
    width, total = 900, max(1.0, summary["duration_s"])
    first = min((o["start"] for o in ops), default=0.0)
    bars = "".join(
        f'<rect x="{w["start_s"] / total * width:.1f}" y="10" width="{w["duration_s"] / total * width:.1f}" '
        f'height="30" fill="#f4a261"><title>{w["kind"]} {w["hosts"]} {w["component"]}</title></rect>'
        for w in summary["per_fault"]
    )
    dots = "".join(
        f'<circle cx="{(o["start"] - first) / total * width:.1f}" cy="{70 if o["outcome"] == "ok" else 90}" '
        f'r="2" fill="{"#2a9d8f" if o["outcome"] == "ok" else "#e63946"}"/>'
        for o in ops
    )
    verdict = "converged" if summary["converged"] else "did NOT converge"
    html = (
        f"<html><head><title>ketch chaos {summary['seed']}</title></head><body>"
        f"<h1>Cluster chaos, seed {summary['seed']}: {verdict}</h1>"
        f"<p>{summary['ops']} operations, {summary['ok']} ok, {summary['fail']} failed, "
        f"{summary['unknown']} unknown; converged after {summary['converged_after_s']} s</p>"
        f'<svg width="{width}" height="110">{bars}{dots}</svg>'
        "<p>orange: faults; green: acknowledged operations; red: failed or unknown</p>"
        f"<pre>{json.dumps(summary['per_fault'], indent=1)}</pre>"
        f"<pre>{chr(10).join(summary['problems'])}</pre></body></html>"
    )
    (out / "report.html").write_text(html)
