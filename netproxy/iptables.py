"""iptables mode: the same port plans as kube-proxy's iptables proxier lays them out, applied with
`iptables-restore --noflush` inside the node's namespace.

Layout (kubernetes pkg/proxy/iptables/proxier.go, restated):
- nat KUBE-SERVICES: one rule per ClusterIP:port (-> KUBE-SVC-*, or KUBE-SVL-* for
  internalTrafficPolicy Local) and per external/load-balancer IP (-> KUBE-EXT-*), and last
  `-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS`. Each packet walks this list: O(services),
  where the nft mode does one map lookup.
- KUBE-SVC-* picks an endpoint with `-m statistic --mode random --probability 1/(n-i)` (the last
  rule unconditional, so each of n endpoints gets 1/n); ClientIP affinity checks `-m recent
  --rcheck --seconds T --reap` per endpoint first, and KUBE-SEP-* records the client (`--set`).
- KUBE-SEP-* marks hairpin traffic (-s itself) for masquerade and DNATs. KUBE-EXT-* marks for
  masquerade (policy Cluster), or short-circuits pods and the node and else uses KUBE-SVL-*.
- KUBE-MARK-MASQ sets 0x4000; KUBE-POSTROUTING masquerades what carries it.
- filter KUBE-SERVICES / KUBE-EXTERNAL-SERVICES reject (TCP reset, or ICMP) or drop new flows to
  services without usable endpoints. NodePorts answer on 127.0.0.1 as well (kube-proxy's
  localhost NodePorts: needs net.ipv4.conf.all.route_localnet=1, which the proxy sets in this
  mode, and KUBE-FIREWALL drops martian packets to 127/8 that arrive from elsewhere).

Syncs: `--noflush` touches only the chains named in the input (declaring a chain flushes it). A
full sync declares every chain of ours, deletes KUBE-* chains nobody wants (a crashed proxy's),
and puts the jumps from the built-in chains back exactly once. A partial sync rewrites the
service list chains and only the KUBE-SVC/SVL/EXT/SEP chains that changed; chains no longer
wanted are flushed and deleted in the same restore (iptables has no stale-reference problem).
One backend per namespace: `nft` (iptables-nft) or `legacy`, never both.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
from dataclasses import dataclass, field

from netproxy.model import NodeFacts, ProxyError
from netproxy.nft import netns_argv
from netproxy.policy import DROP, PortPlan
from netproxy.ruleset import MASQUERADE_BIT

TIMEOUT_S = 60.0
LIST_CHAINS = ("KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES")  # rewritten on every sync
OWN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-SEP-", "KUBE-SERVICES", "KUBE-NODEPORTS",
                "KUBE-EXTERNAL-SERVICES", "KUBE-MARK-MASQ", "KUBE-POSTROUTING", "KUBE-FIREWALL")
JUMPS = {  # (table, built-in chain) -> rules we keep there, in order
    ("nat", "PREROUTING"): ("-j KUBE-SERVICES",),
    ("nat", "OUTPUT"): ("-j KUBE-SERVICES",),
    ("nat", "POSTROUTING"): ("-j KUBE-POSTROUTING",),
    ("filter", "INPUT"): ("-m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES", "-j KUBE-FIREWALL"),
    ("filter", "FORWARD"): ("-m conntrack --ctstate NEW -j KUBE-SERVICES",
                            "-m conntrack --ctstate NEW -j KUBE-EXTERNAL-SERVICES"),
    ("filter", "OUTPUT"): ("-m conntrack --ctstate NEW -j KUBE-SERVICES", "-j KUBE-FIREWALL"),
}


class IptablesError(ProxyError):
    """iptables-restore or -save failed (stderr says why) or could not be run."""


def _hash16(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()[:16]


def svc_chain(kind: str, port_id: str) -> str:
    return f"KUBE-{kind}-{_hash16(port_id)}"


def sep_chain(port_id: str, ip: str, number: int) -> str:
    return f"KUBE-SEP-{_hash16(f'{port_id}__{ip}/{number}')}"


@dataclass
class IptablesRuleset:
    """tables: table -> {chain: rules (the arguments after `-A CHAIN`)}, in order."""

    tables: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=lambda: {"nat": {}, "filter": {}})

    def rule_count(self) -> int:
        return sum(len(rules) for chains in self.tables.values() for rules in chains.values())


def _probability(n_left: int) -> str:
    return f"{1 / n_left:0.10f}"


def _spread(chains: dict, name: str, plan: PortPlan, endpoints, first: list[str]) -> None:
    port = plan.port
    seps = [sep_chain(port.id, e.ip, e.port) for e in endpoints]
    rules = list(first)
    if port.affinity_timeout_s:
        rules += [f"-m recent --name {sep} --mask 255.255.255.255 --rsource --rcheck "
                  f"--seconds {port.affinity_timeout_s} --reap -j {sep}" for sep in seps]
    for i, sep in enumerate(seps):
        last = i == len(seps) - 1
        rules.append(f"-j {sep}" if last else f"-m statistic --mode random --probability "
                     f"{_probability(len(seps) - i)} -j {sep}")
    chains[name] = tuple(rules)


def _match(protocol: str, port: int, daddr: str | None = None) -> str:
    dest = f"-d {daddr}/32 " if daddr else ""
    return f"{dest}-p {protocol} -m {protocol} --dport {port}"


def _dead(verdict: str, protocol: str) -> str:
    if verdict == DROP:
        return "-j DROP"
    return "-j REJECT --reject-with tcp-reset" if protocol == "tcp" else "-j REJECT"


def build_iptables(plans, node: NodeFacts) -> IptablesRuleset:
    out = IptablesRuleset()
    nat, filt = out.tables["nat"], out.tables["filter"]
    services, nodeports, dead_services, dead_nodeports = [], [], [], []
    nat["KUBE-MARK-MASQ"] = (f"-j MARK --or-mark {MASQUERADE_BIT:#x}",)
    nat["KUBE-POSTROUTING"] = (f"-m mark ! --mark {MASQUERADE_BIT:#x}/{MASQUERADE_BIT:#x} -j RETURN",
                               f"-j MARK --xor-mark {MASQUERADE_BIT:#x}", "-j MASQUERADE --random-fully")
    filt["KUBE-FIREWALL"] = ("-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT "
                             "-j DROP",)
    claimed: set[tuple] = set()
    for plan in plans:
        port, proto = plan.port, plan.port.protocol
        svc, svl, ext = svc_chain("SVC", port.id), svc_chain("SVL", port.id), svc_chain("EXT", port.id)
        for e in plan.chain_endpoints:
            sep = sep_chain(port.id, e.ip, e.port)
            rules = [f"-s {e.ip}/32 -j KUBE-MARK-MASQ"]
            if port.affinity_timeout_s:
                rules.append(f"-p {proto} -m recent --name {sep} --mask 255.255.255.255 --rsource --set "
                             f"-m {proto} -j DNAT --to-destination {e.ip}:{e.port}")
            else:
                rules.append(f"-p {proto} -m {proto} -j DNAT --to-destination {e.ip}:{e.port}")
            nat[sep] = tuple(rules)
        if plan.cluster:
            masq = [f"{_match(proto, port.port, ip)} ! -s {node.cluster_cidr} -j KUBE-MARK-MASQ"
                    for ip in port.cluster_ips] if node.cluster_cidr else []
            _spread(nat, svc, plan, plan.cluster, masq)
        if plan.uses_local and plan.local:
            _spread(nat, svl, plan, plan.local, [])
        internal = svl if port.internal_local else svc
        keys = [((ip, proto, port.port), plan.internal_verdict, internal) for ip in port.cluster_ips]
        if port.has_external:
            if plan.external:
                if port.external_local:
                    short = [f"-s {node.cluster_cidr} -j {svc}"] if node.cluster_cidr else []
                    nat[ext] = (*short, "-m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
                                f"-m addrtype --src-type LOCAL -j {svc}", f"-j {svl}")
                else:
                    nat[ext] = ("-j KUBE-MARK-MASQ", f"-j {svc}")
            keys += [((ip, proto, port.port), plan.external_verdict, ext) for ip in port.external_ips]
            if port.node_port:
                keys.append(((proto, port.node_port), plan.external_verdict, ext))
        for key, verdict, target in keys:
            if key in claimed:
                continue  # a second claim on one address:port (the nft builder reports it)
            claimed.add(key)
            if len(key) == 2:
                (nodeports if verdict is None else dead_nodeports).append(
                    f"{_match(proto, key[1])} -j {target}" if verdict is None else
                    f"-m addrtype --dst-type LOCAL {_match(proto, key[1])} {_dead(verdict, proto)}")
            else:
                (services if verdict is None else dead_services).append(
                    f"{_match(proto, key[2], key[0])} -j {target}" if verdict is None else
                    f"{_match(proto, key[2], key[0])} {_dead(verdict, proto)}")
    nat["KUBE-SERVICES"] = (*services, "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
    nat["KUBE-NODEPORTS"] = tuple(nodeports)
    filt["KUBE-SERVICES"] = tuple(dead_services)
    filt["KUBE-EXTERNAL-SERVICES"] = tuple(dead_nodeports)
    return out


# --- what the kernel holds ---------------------------------------------------------------------

@dataclass
class Existing:
    """From iptables-save: our chains per table, and the rules in the built-in chains we use."""

    chains: dict[str, set[str]] = field(default_factory=lambda: {"nat": set(), "filter": set()})
    builtin: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def parse_save(text: str) -> Existing:
    existing, table = Existing(), None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table in existing.chains and line.startswith(":"):
            name = line[1:].split()[0]
            if name.startswith(OWN_PREFIXES):
                existing.chains[table].add(name)
        elif table in existing.chains and line.startswith("-A "):
            chain, _, rule = line[3:].partition(" ")
            if (table, chain) in JUMPS:
                existing.builtin.setdefault((table, chain), []).append(rule)
    return existing


def _jump_fixes(existing: Existing) -> dict[str, list[str]]:
    """Per table: -D for our jumps that are there more than once (drift), -I for missing ones."""
    out: dict[str, list[str]] = {"nat": [], "filter": []}
    for (table, chain), wanted in JUMPS.items():
        present = existing.builtin.get((table, chain), [])
        for position, rule in enumerate(wanted, start=1):
            count = present.count(rule)
            out[table] += [f"-D {chain} {rule}"] * max(0, count - 1)
            if count == 0:
                out[table].append(f"-I {chain} {position} {rule}")
    return out


def restore_text(desired: IptablesRuleset, old: IptablesRuleset | None, existing: Existing | None) -> str:
    """Full when `existing` is given (then `old` is ignored), else partial from `old`."""
    fixes = _jump_fixes(existing) if existing else {"nat": [], "filter": []}
    out = []
    for table in ("nat", "filter"):
        wanted = desired.tables[table]
        if existing is not None:
            write = list(wanted)
            gone = sorted(existing.chains[table] - set(wanted))
        else:
            before = old.tables[table]
            write = [c for c, rules in wanted.items() if c in LIST_CHAINS or before.get(c) != rules]
            gone = [c for c in before if c not in wanted]
        if not (write or gone or fixes[table]):
            continue
        out.append(f"*{table}")
        out += [f":{chain} - [0:0]" for chain in [*write, *gone]]
        for chain in write:
            out += [f"-A {chain} {rule}" for rule in wanted[chain]]
        out += fixes[table]
        out += [f"-X {chain}" for chain in gone]
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


def _run(argv: list[str], text: str | None = None) -> str:
    try:
        done = subprocess.run(argv, input=text, capture_output=True, text=True, timeout=TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise IptablesError(f"{argv[0]} could not run: {err}") from None
    if done.returncode != 0:
        raise IptablesError(f"{' '.join(argv[-3:])} failed: {done.stderr.strip()[:2000]}")
    return done.stdout


def detect_backend(netns: str | None) -> str:
    """legacy when the namespace already has legacy (x_tables) nat or filter tables, else nft."""
    try:
        names = _run(netns_argv(netns, "cat", "/proc/net/ip_tables_names")).split()
    except IptablesError:
        names = []
    return "legacy" if {"nat", "filter"} & set(names) else "nft"


@dataclass
class IptablesApplier:
    netns: str | None = None
    backend: str = "nft"  # iptables-nft-restore or iptables-legacy-restore, never both in one netns
    applied: IptablesRuleset | None = None
    last_text: str = ""  # the last restore input applied (for benchmarks and debugging)

    def _tool(self, name: str) -> list[str]:
        return netns_argv(self.netns, f"iptables-{self.backend}-{name}")

    def existing(self) -> Existing:
        return parse_save(_run(self._tool("save")))

    def sync(self, desired: IptablesRuleset, now_s: float = 0.0, force_full: bool = False) -> tuple[str, bool]:
        full = force_full or self.applied is None
        text = restore_text(desired, self.applied, self.existing() if full else None)
        if text:
            try:
                self.restore(text)
            except IptablesError:
                self.applied = None
                raise
            self.last_text = text
        self.applied = desired
        return text, full

    def restore(self, text: str) -> None:
        _run(self._tool("restore") + ["--noflush"], text)

    def cleanup(self) -> bool:
        """Remove our jumps and chains; False when there was nothing of ours."""
        existing = self.existing()
        self.applied = None
        out = []
        for table in ("nat", "filter"):
            jumps = [f"-D {chain} {rule}" for (t, chain), rules in existing.builtin.items() if t == table
                     for rule in rules if rule in JUMPS[(t, chain)]]
            chains = sorted(existing.chains[table])
            if jumps or chains:
                out += [f"*{table}", *jumps, *(f":{c} - [0:0]" for c in chains), *(f"-X {c}" for c in chains),
                        "COMMIT"]
        if not out:
            return False
        self.restore("\n".join(out) + "\n")
        return True
