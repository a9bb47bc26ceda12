"""The kubelet's /stats/summary (the Summary API metrics-server reads), from cumulative CPU time
and memory working sets (pure; the samples come from the runtime's cgroup figures and /proc).

CPU usage is a rate: usageNanoCores is the growth of usageCoreNanoSeconds between two samples
divided by the time between them, as cAdvisor computes it; the first sample of a container has
no rate yet (0). Memory is the working set (usage minus inactive file pages).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.api import timestamps


@dataclass(frozen=True)
class Sample:
    cpu_ns: int             # cumulative CPU time, nanoseconds
    working_set_bytes: int


@dataclass
class RateTracker:
    """Keeps the last sample per key to turn cumulative CPU time into nanocores."""
    min_interval_s: float = 1.0
    last: dict[str, tuple[float, int]] = field(default_factory=dict)
    rates: dict[str, int] = field(default_factory=dict)

    def nano_cores(self, key: str, now: float, cpu_ns: int) -> int:
        previous = self.last.get(key)
        if previous is None or cpu_ns < previous[1]:  # new, or restarted (the counter went back)
            self.last[key] = (now, cpu_ns)
            self.rates[key] = 0
            return 0
        elapsed = now - previous[0]
        if elapsed >= self.min_interval_s:
            self.rates[key] = int((cpu_ns - previous[1]) / elapsed)
            self.last[key] = (now, cpu_ns)
        return self.rates.get(key, 0)

    def forget_except(self, keys: set[str]) -> None:
        for key in set(self.last) - keys:
            self.last.pop(key, None)
            self.rates.pop(key, None)


def _cpu(stamp: str, sample: Sample, rate: int) -> dict:
    return {"time": stamp, "usageNanoCores": rate, "usageCoreNanoSeconds": sample.cpu_ns}


def _memory(stamp: str, sample: Sample, available: int | None = None) -> dict:
    out = {"time": stamp, "workingSetBytes": sample.working_set_bytes, "usageBytes": sample.working_set_bytes}
    if available is not None:
        out["availableBytes"] = available
    return out


@dataclass(frozen=True)
class PodSample:
    name: str
    namespace: str
    uid: str
    start_time: str
    containers: dict[str, Sample]  # container name -> sample (the running attempt)


def summary(node_name: str, node_start: str, node_sample: Sample, memory_total: int, pods: list[PodSample],
            tracker: RateTracker, now: float) -> dict:
    stamp = timestamps.format_epoch(now)
    node_rate = tracker.nano_cores("node", now, node_sample.cpu_ns)
    out_pods, keys = [], {"node"}
    for pod in pods:
        containers, cpu_total, rate_total, memory_total_pod = [], 0, 0, 0
        for name, sample in sorted(pod.containers.items()):
            key = f"{pod.uid}/{name}"
            keys.add(key)
            rate = tracker.nano_cores(key, now, sample.cpu_ns)
            containers.append({"name": name, "startTime": pod.start_time, "cpu": _cpu(stamp, sample, rate),
                               "memory": _memory(stamp, sample)})
            cpu_total += sample.cpu_ns
            rate_total += rate
            memory_total_pod += sample.working_set_bytes
        pod_sample = Sample(cpu_total, memory_total_pod)
        out_pods.append({"podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                         "startTime": pod.start_time, "containers": containers,
                         "cpu": _cpu(stamp, pod_sample, rate_total), "memory": _memory(stamp, pod_sample)})
    tracker.forget_except(keys)
    available = max(0, memory_total - node_sample.working_set_bytes)
    return {"node": {"nodeName": node_name, "startTime": node_start, "cpu": _cpu(stamp, node_sample, node_rate),
                     "memory": _memory(stamp, node_sample, available)},
            "pods": out_pods}
