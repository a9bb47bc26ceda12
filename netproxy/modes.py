"""The three ways of turning port plans into traffic: nftables, iptables, userspace.

Each mode's `sync(taken, node, now_s, full)` returns a `SyncReport`. The nftables and iptables
syncs block (they run `nft` / `iptables-restore`), so the proxy runs them in a worker thread;
the userspace sync only retargets trio listeners and runs on the proxy's own task.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netproxy.iptables import IptablesApplier, build_iptables, detect_backend
from netproxy.model import NodeFacts
from netproxy.nft import NftApplier
from netproxy.ruleset import TABLE, Fragment, assemble, build_fragment
from netproxy.state import Taken

MODES = ("nftables", "iptables", "userspace")


@dataclass
class SyncReport:
    full: bool
    counts: dict[str, int] = field(default_factory=dict)  # for the rule count gauges
    conflicts: list[str] = field(default_factory=list)
    changed: bool = True  # False: nothing needed writing


class NftMode:
    name = "nftables"
    blocking = True

    def __init__(self, netns: str | None = None, table: str = TABLE) -> None:
        self.applier = NftApplier(netns)
        self.table = table
        self.fragments: dict[str, Fragment] = {}
        self.node: NodeFacts | None = None

    def sync(self, taken: Taken, node: NodeFacts, now_s: float, full: bool) -> SyncReport:
        rebuild = taken.node_dirty or node != self.node
        self.node = node
        for service in (list(taken.plans) if rebuild else taken.dirty):
            plans = taken.plans.get(service)
            if plans:
                self.fragments[service] = build_fragment(plans, node)
            else:
                self.fragments.pop(service, None)
        if rebuild:
            self.fragments = {s: f for s, f in self.fragments.items() if s in taken.plans}
        ruleset = assemble([self.fragments[s] for s in sorted(self.fragments)], node, self.table)
        transaction = self.applier.sync(ruleset, now_s, force_full=full)
        counts = {"chains": len(ruleset.chains), "rules": ruleset.rule_count(), "elements": ruleset.element_count(),
                  "sets": len(ruleset.sets)}
        return SyncReport(transaction.full, counts, ruleset.conflicts, bool(transaction.text))

    def cleanup(self) -> bool:
        self.fragments.clear()
        return self.applier.cleanup(self.table)


class IptablesMode:
    name = "iptables"
    blocking = True

    def __init__(self, netns: str | None = None, backend: str = "auto") -> None:
        self.applier = IptablesApplier(netns, detect_backend(netns) if backend == "auto" else backend)

    def sync(self, taken: Taken, node: NodeFacts, now_s: float, full: bool) -> SyncReport:
        plans = [plan for service in sorted(taken.plans) for plan in taken.plans[service]]
        ruleset = build_iptables(plans, node)
        text, was_full = self.applier.sync(ruleset, now_s, force_full=full)
        counts = {f"{table}_rules": sum(map(len, chains.values())) for table, chains in ruleset.tables.items()}
        counts |= {f"{table}_chains": len(chains) for table, chains in ruleset.tables.items()}
        return SyncReport(was_full, counts, [], bool(text))

    def cleanup(self) -> bool:
        return self.applier.cleanup()


class UserspaceMode:
    name = "userspace"
    blocking = False

    def __init__(self, bind_address: str = "127.0.0.1") -> None:
        from netproxy.userspace import UserspaceProxy

        self.proxy = UserspaceProxy(bind_address)

    async def run(self, *, task_status=None) -> None:
        import trio

        await self.proxy.run(task_status=task_status or trio.TASK_STATUS_IGNORED)

    def sync(self, taken: Taken, node: NodeFacts, now_s: float, full: bool) -> SyncReport:
        counts = self.proxy.apply([plan for service in sorted(taken.plans) for plan in taken.plans[service]])
        return SyncReport(full, counts)

    def cleanup(self) -> bool:
        return False  # nothing outlives the process
