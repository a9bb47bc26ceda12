"""CPU use of a local control plane's processes, from /proc, for the benchmarks beside this file."""

from __future__ import annotations

import os
from pathlib import Path

from orchestrator.lab.local_plane import LocalControlPlane

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live descendants (an API server's workers)."""
    total = 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                total += cpu_seconds(int(child))
    except (OSError, ValueError, IndexError):
        pass
    return total


def plane_processes(plane: LocalControlPlane) -> dict[str, int]:
    """name -> pid of each process of the plane (kv members, API server, components)."""
    named = {f"kv {m.name}": m.process.pid for m in plane.kv.nodes if m.process is not None}
    for process in plane.processes:
        argv = process.args if isinstance(process.args, list) else []
        role = next((a for a in argv if a in ("apiserver", "scheduler", "controller-manager", "hollow-nodes")), "?")
        named[role] = process.pid
    return named
