"""Cgroups for pods and containers, on cgroup v1 (and hybrid, as on this machine's kernel) or v2.

Layout: `<prefix>/pod-<uid>/<container>-<attempt>` in each controller (memory, cpu, cpuacct,
pids on v1; one tree on v2), with a unique prefix per kubelet (`ketch-<node>`) so several nodes
share one machine. The limits live on these directories, which the runtime creates and removes
itself: runc gets a child of the container's directory (`.../runc`) as its cgroupsPath and removes
only that, so the memory cgroup that counted an OOM kill is still there to be read once the
container has exited (Kubernetes' OOMKilled). Directories are removed deepest first.

Translation (Kubernetes' kubelet, cgroup v1): cpu.shares = max(2, milli * 1024 / 1000);
cfs_quota_us = milli * 100 ms / 1000 with a 100 ms period; memory.limit_in_bytes; pids.max.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from orchestrator.kubelet.runtime.base import InvalidSpec, Resources

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
CPU_PERIOD_US = 100_000
MIN_MEMORY_BYTES = 4 * 1024 * 1024  # below this not even a shell starts; Kubernetes refuses < 4 MiB too
MAX_PIDS = 4_194_304


def unified() -> bool:
    return (ROOT / "cgroup.controllers").exists()


def available() -> bool:
    return os.geteuid() == 0 and (unified() or (ROOT / "memory").is_dir())


def check(resources: Resources) -> None:
    """Refuse limits no container can run with, before anything on the host changes."""
    if resources.memory_limit_bytes is not None and resources.memory_limit_bytes < MIN_MEMORY_BYTES:
        raise InvalidSpec(f"memory limit {resources.memory_limit_bytes} bytes is below the minimum of "
                          f"{MIN_MEMORY_BYTES} bytes")
    if resources.cpu_limit_milli is not None and resources.cpu_limit_milli < 1:
        raise InvalidSpec("a cpu limit must be at least 1m")
    if resources.pids_limit is not None and not 1 <= resources.pids_limit <= MAX_PIDS:
        raise InvalidSpec(f"pids limit {resources.pids_limit} is out of range 1..{MAX_PIDS}")


class Cgroup:
    """One cgroup path (relative, e.g. "ketch-n1/pod-abc/web-0") in every hierarchy we use."""

    def __init__(self, relative: str) -> None:
        self.relative = relative.strip("/")

    def dirs(self) -> list[Path]:
        if unified():
            return [ROOT / self.relative]
        return [ROOT / controller / self.relative for controller in V1_CONTROLLERS if (ROOT / controller).is_dir()]

    def child(self, name: str) -> Cgroup:
        return Cgroup(f"{self.relative}/{name}")

    def create(self) -> None:
        if unified():
            self._enable_v2()
        for directory in self.dirs():
            directory.mkdir(parents=True, exist_ok=True)

    def _enable_v2(self) -> None:
        """v2: controllers must be enabled in every parent's subtree_control."""
        parts = self.relative.split("/")
        for depth in range(len(parts)):
            parent = ROOT.joinpath(*parts[:depth])
            parent.mkdir(parents=True, exist_ok=True)
            try:
                (parent / "cgroup.subtree_control").write_text("+memory +cpu +pids")
            except OSError:
                pass

    def limit(self, resources: Resources) -> None:
        check(resources)
        if unified():
            base = ROOT / self.relative
            if resources.memory_limit_bytes is not None:
                _write(base / "memory.max", resources.memory_limit_bytes)
            if resources.cpu_limit_milli is not None:
                _write(base / "cpu.max", f"{resources.cpu_limit_milli * CPU_PERIOD_US // 1000} {CPU_PERIOD_US}")
            if resources.cpu_request_milli:
                _write(base / "cpu.weight", max(1, min(10000, 1 + ((_shares(resources) - 2) * 9999) // 262142)))
            if resources.pids_limit is not None:
                _write(base / "pids.max", resources.pids_limit)
            return
        if resources.memory_limit_bytes is not None:
            _write(ROOT / "memory" / self.relative / "memory.limit_in_bytes", resources.memory_limit_bytes)
        cpu = ROOT / "cpu" / self.relative
        if resources.cpu_request_milli:
            _write(cpu / "cpu.shares", _shares(resources))
        if resources.cpu_limit_milli is not None:
            _write(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
            _write(cpu / "cpu.cfs_quota_us", max(1000, resources.cpu_limit_milli * CPU_PERIOD_US // 1000))
        if resources.pids_limit is not None:
            _write(ROOT / "pids" / self.relative / "pids.max", resources.pids_limit)

    def join(self, pid: int) -> None:
        for directory in self.dirs():
            _write(directory / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        found: set[int] = set()
        for directory in self.everywhere():
            for procs in directory.rglob("cgroup.procs"):
                try:
                    found.update(int(p) for p in procs.read_text().split())
                except (OSError, ValueError):
                    pass
        return sorted(found)

    def kill_all(self, sig: int) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def oom_killed(self) -> bool:
        """Did the kernel kill a process here for memory? v2: memory.events (counts the subtree).
        v1 counts oom_kill only in the cgroup of the victim, which runc removed with its child
        cgroup; the limit on this one was hit (failcnt) is what is left to read, and the caller
        asks only for a workload that died of a SIGKILL nobody sent."""
        try:
            if unified():
                text = (ROOT / self.relative / "memory.events").read_text()
                values = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
                return int(values.get("oom_kill", "0")) > 0
            memory = ROOT / "memory" / self.relative
            text = (memory / "memory.oom_control").read_text()
            values = dict(line.split() for line in text.splitlines() if len(line.split()) == 2)
            limited = int((memory / "memory.limit_in_bytes").read_text()) < 2 ** 62
            failed = int((memory / "memory.failcnt").read_text()) > 0
            return int(values.get("oom_kill", "0")) > 0 or (limited and failed)
        except (OSError, ValueError):
            return False

    def usage(self) -> tuple[int, int]:
        """(cpu ns, memory working set bytes): usage minus inactive file pages, as cAdvisor counts it."""
        try:
            if unified():
                base = ROOT / self.relative
                stat = dict(line.split() for line in (base / "cpu.stat").read_text().splitlines())
                cpu = int(stat.get("usage_usec", 0)) * 1000
                memory = int((base / "memory.current").read_text())
                mstat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
                return cpu, max(0, memory - int(mstat.get("inactive_file", 0)))
            cpu = int((ROOT / "cpuacct" / self.relative / "cpuacct.usage").read_text())
            memory_dir = ROOT / "memory" / self.relative
            memory = int((memory_dir / "memory.usage_in_bytes").read_text())
            mstat = dict(line.split() for line in (memory_dir / "memory.stat").read_text().splitlines())
            return cpu, max(0, memory - int(mstat.get("total_inactive_file", 0)))
        except (OSError, ValueError):
            return 0, 0

    def everywhere(self) -> list[Path]:
        """This path in every mounted hierarchy: runc also makes it in blkio, cpuset, devices, ..."""
        if unified():
            return [ROOT / self.relative]
        return [h / self.relative for h in ROOT.iterdir() if h.is_dir() and not h.is_symlink()]

    def remove(self, timeout_s: float = 5.0) -> None:
        """Remove this cgroup and everything below it, deepest first, once its processes are gone."""
        deadline = time.monotonic() + timeout_s
        for directory in self.everywhere():
            if not directory.exists():
                continue
            below = sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for sub in below + [directory]:
                while True:
                    try:
                        sub.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)


def _shares(resources: Resources) -> int:
    return max(2, resources.cpu_request_milli * 1024 // 1000)


def _write(path: Path, value) -> None:
    try:
        path.write_text(str(value))
    except OSError as err:
        raise InvalidSpec(f"cannot set {path.name} to {value}: {err.strerror}") from None
