"""Stale UDP conntrack entries: found from the plans (pure), deleted through pyroute2.

Only the first packet of a flow walks the nat rules; later packets follow the conntrack entry.
A UDP "flow" (one client socket) lives as long as packets keep coming (30 s idle, 120 s for
streams), so after an endpoint stops serving, a client keeps sending to it, into a dead pod.
kube-proxy (pkg/proxy/conntrack/cleanup.go) therefore deletes, after each sync, UDP entries whose
original destination is a service address:port (or a NodePort) and whose reply source is not a
serving endpoint. TCP entries are left alone: a TCP connection to a removed endpoint ends by
itself (reset or timeout), and deleting it would reset connections that still work.
Conntrack is per namespace: this runs in the node's namespace, where the DNAT happened.
"""

from __future__ import annotations

from dataclasses import dataclass

UDP = 17


@dataclass(frozen=True, slots=True)
class CleanupTarget:
    daddr: str | None  # None: any local address (a NodePort)
    dport: int
    serving: frozenset[tuple[str, int]]  # endpoints (ip, port) that may keep their flows


@dataclass(frozen=True, slots=True)
class Flow:
    orig_daddr: str
    orig_dport: int
    reply_saddr: str
    reply_sport: int


def _serving(plan) -> frozenset[tuple[str, int]]:
    return frozenset((e.ip, e.port) for e in plan.chain_endpoints)


def cleanup_targets(old_plans: dict, new_plans: dict) -> list[CleanupTarget]:
    """For UDP service ports that lost a serving endpoint between two syncs (plans by port id)."""
    out = []
    for port_id, old in old_plans.items():
        if old.port.protocol != "udp":
            continue
        new = new_plans.get(port_id)
        serving = _serving(new) if new is not None else frozenset()
        if not _serving(old) - serving:
            continue
        port = old.port
        out += [CleanupTarget(ip, port.port, serving) for ip in (*port.cluster_ips, *port.external_ips)]
        if port.node_port:
            out.append(CleanupTarget(None, port.node_port, serving))
    return out


def is_stale(flow: Flow, target: CleanupTarget) -> bool:
    natted = flow.reply_saddr != flow.orig_daddr
    return natted and (flow.reply_saddr, flow.reply_sport) not in target.serving


def delete_stale_udp(targets: list[CleanupTarget], netns: str | None = None) -> int:
    """Delete the stale entries for these targets; returns how many (blocking: call from a thread)."""
    if not targets:
        return 0
    from pyroute2 import Conntrack
    from pyroute2.netlink.nfnetlink.nfctsocket import NFCTAttrTuple

    deleted = 0
    kwargs = {"netns": netns, "flags": 0} if netns else {}
    with Conntrack(**kwargs) as ct:
        for target in targets:
            query = NFCTAttrTuple(proto=UDP, dport=target.dport, **({"daddr": target.daddr} if target.daddr else {}))
            # Materialise the dump first: deleting while pyroute2's generator runs breaks its event loop.
            entries = list(ct.dump_entries(tuple_orig=query))
            for entry in entries:
                flow = Flow(entry.tuple_orig.daddr, entry.tuple_orig.dport, entry.tuple_reply.saddr,
                            entry.tuple_reply.sport)
                if flow.orig_dport == target.dport and is_stale(flow, target):
                    ct.delete(entry)
                    deleted += 1
    return deleted
