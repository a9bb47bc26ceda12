"""The nemesis: faults for a lab, applied and removed through one interface, each one logged.

Network faults (root + netns labs only) are rules of one bridge-family nft table in the fabric
namespace, where every host's veth meets the bridge (silent, directional, and all in one
place). The whole table is rewritten in one `nft -f` transaction on every
change, so the rules are always exactly the faults in force. There is no netem on this kernel:
loss is `numgen random`, bandwidth is tbf on the host's veth.

Process faults: SIGKILL and restart (through a callback of the caller's), SIGSTOP/SIGCONT,
and a CPU hog process on a host. `heal_all()` removes every fault; call it in a `finally`.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from orchestrator.lab.hosts import Host, Lab, LabProcess

TABLE = "ketch_chaos"


@dataclass
class Nemesis:
    lab: Lab
    log_path: Path
    clock: Callable[[], float] = time.monotonic
    partitions: list[tuple[list[str], list[str], bool]] = field(default_factory=list)
    losses: dict[str, int] = field(default_factory=dict)
    shaped: set[str] = field(default_factory=set)
    paused: list[LabProcess] = field(default_factory=list)
    hogs: list[LabProcess] = field(default_factory=list)

    def record(self, event: str, **details) -> None:
        with open(self.log_path, "a") as log:
            log.write(json.dumps({"time": self.clock(), "event": event, **details}) + "\n")

    # --- network ------------------------------------------------------------------------------

    def partition(self, side_a: list[Host], side_b: list[Host], one_way: bool = False) -> None:
        """Hosts in side_a stop hearing side_b (and, unless one_way, the other way round)."""
        self.partitions.append(([h.veth for h in side_a], [h.veth for h in side_b], one_way))
        self._apply_rules()
        self.record("partition", a=[h.name for h in side_a], b=[h.name for h in side_b], one_way=one_way)

    def cut(self, pairs: list[tuple[Host, Host]], label: str, one_way: bool = False) -> None:
        """Cut several host pairs in one change (a ring, a bridge, an isolated leader). With
        one_way, the first host of each pair stops hearing the second."""
        self.partitions.extend(([a.veth], [b.veth], one_way) for a, b in pairs)
        self._apply_rules()
        self.record(label, pairs=[[a.name, b.name] for a, b in pairs], one_way=one_way)

    def loss(self, host: Host, percent: int) -> None:
        if not 0 < percent <= 100:
            raise ValueError("loss is a percentage in (0, 100]")
        self.losses[host.veth] = percent
        self._apply_rules()
        self.record("loss", host=host.name, percent=percent)

    def heal_network(self) -> None:
        self.partitions.clear()
        self.losses.clear()
        self._apply_rules()
        self.record("heal_network")

    def bandwidth(self, host: Host, rate: str = "1mbit") -> None:
        self.lab.in_fabric("tc", "qdisc", "replace", "dev", host.veth, "root", "tbf", "rate", rate,
                           "burst", "16kb", "latency", "50ms")
        self.shaped.add(host.veth)
        self.record("bandwidth", host=host.name, rate=rate)

    def unshape(self) -> None:
        for veth in sorted(self.shaped):
            self.lab.in_fabric("tc", "qdisc", "del", "dev", veth, "root")
        self.shaped.clear()
        self.record("unshape")

    def _apply_rules(self) -> None:
        rules = []
        for side_a, side_b, one_way in self.partitions:
            for a in side_a:
                for b in side_b:
                    rules.append(f'iifname "{b}" oifname "{a}" drop')  # a no longer hears b
                    if not one_way:
                        rules.append(f'iifname "{a}" oifname "{b}" drop')
        for veth, percent in sorted(self.losses.items()):
            # numgen's range is 0..99 and nft refuses "< 100": total loss is a plain drop
            chance = "" if percent == 100 else f"numgen random mod 100 < {percent} "
            rules.append(f'iifname "{veth}" {chance}drop')
            rules.append(f'oifname "{veth}" {chance}drop')
        body = "".join(f"    {rule}\n" for rule in rules)
        script = (f"add table bridge {TABLE}\ndelete table bridge {TABLE}\n"
                  f"table bridge {TABLE} {{\n  chain forward {{\n    type filter hook forward priority 0; "
                  f"policy accept;\n{body}  }}\n}}\n")
        self.lab.in_fabric("nft", "-f", "-", input=script)

    # --- processes ----------------------------------------------------------------------------

    def kill(self, process: LabProcess) -> None:
        self.lab.signal(process, signal.SIGKILL)
        process.process.wait(timeout=10)
        self.record("kill", host=process.host.name, process=process.name, pid=process.pid)

    def pause(self, process: LabProcess) -> None:
        self.lab.signal(process, signal.SIGSTOP)
        self.paused.append(process)
        self.record("pause", host=process.host.name, process=process.name, pid=process.pid)

    def resume_all(self) -> None:
        for process in self.paused:
            self.lab.signal(process, signal.SIGCONT)
            self.record("resume", host=process.host.name, process=process.name, pid=process.pid)
        self.paused.clear()

    def cpu_hog(self, host: Host) -> None:
        hog = self.lab.start(host, f"hog{len(self.hogs)}", [sys.executable, "-c", "while True: pass"])
        self.hogs.append(hog)
        self.record("cpu_hog", host=host.name, pid=hog.pid)

    def stop_hogs(self) -> None:
        for hog in self.hogs:
            self.lab.stop(hog)
        if self.hogs:
            self.record("stop_cpu_hogs")
        self.hogs.clear()

    def heal_all(self) -> None:
        """Remove every fault in force. Safe to call at any time, also twice."""
        self.resume_all()
        self.stop_hogs()
        if self.lab.isolated:
            if self.partitions or self.losses:
                self.heal_network()
            if self.shaped:
                self.unshape()
            self.lab.in_fabric("nft", "-f", "-", input=f"add table bridge {TABLE}\ndelete table bridge {TABLE}\n")
