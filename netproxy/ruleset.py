"""The desired nftables ruleset, as data, in kube-proxy's nftables shape (pure).

Theory of operation (kubernetes pkg/proxy/nftables/proxier.go, restated):

- One table (`ketch-proxy`, family ip). Base chains: `nat-prerouting` and `nat-output` (priority
  -100, dstnat) jump to `services`; `nat-postrouting` (priority 100, srcnat) jumps to
  `masquerading`; `filter-input`, `filter-forward` and `filter-output` (priority -110, before DNAT)
  send new flows to `endpoints-check`.
- `services` looks the packet up in the `service-ips` verdict map (daddr . l4proto . dport: one
  O(1) lookup however many services there are), then, for destinations that are this node's own
  addresses (`fib daddr type local`, loopback excluded), in `service-nodeports` (l4proto . dport).
- Per service port: `service-<hash>-ns/svc/proto/port` spreads new flows over the ready endpoints;
  `local-...` does the same over this node's endpoints (Local
  policies); `external-...` is where NodePort and external/load-balancer IPs land: it marks for
  masquerade (policy Cluster) or keeps the client address and uses the local chain (policy Local;
  pods and the node itself still go through the cluster chain, as kube-proxy short-circuits them).
- Spreading: kube-proxy writes one `numgen random mod N vmap { 0 : goto a, ... }` per chain. Each
  such inline vmap is an anonymous set, and the kernel finds a name for a new anonymous set by
  scanning the table's sets, so loading n services costs O(n^2): measured here, 5,000 services
  take 7.3 s of kernel time (23 s to replace the table), 1.3 s with the cascade used instead,
  the one kube-proxy's iptables mode uses: rule i is `numgen random mod (N-i) == 0 goto e_i`
  and the last one is unconditional, so each of N endpoints gets exactly 1/N.
- Per endpoint: `endpoint-<hash>-ns/svc/proto/port__ip/port` marks hairpin traffic (an endpoint
  reaching itself through its service) for masquerade, then DNATs.
- Traffic to a ClusterIP from outside the cluster CIDR (e.g. the node itself) is marked for
  masquerade, so replies come back through this node. Marked packets are masqueraded on the way out.
- ClientIP affinity: one dynamic set with a timeout per endpoint; the endpoint chain records the
  client (`update @set { ip saddr }`) and the service chain sends a known client straight back.
- No usable endpoint: the address goes into `no-endpoint-services` / `no-endpoint-nodeports` with
  `goto reject-chain` (TCP reset / ICMP port unreachable: a connect fails at once), or `drop` when
  endpoints exist but none on this node for a Local policy. Those maps are checked in the filter
  chains because `reject` is not allowed in nat chains.

Build with `build_ruleset(plans, node)`; compare two rulesets with `diff` (what a partial sync
writes). The packet walk in the unit tests interprets exactly these values.
"""

from __future__ import annotations

import base64
import functools
import hashlib
from dataclasses import dataclass, field

from netproxy.model import NodeFacts
from netproxy.policy import DROP, PortPlan

TABLE = "ketch-proxy"
MASQUERADE_BIT = 0x4000  # kube-proxy's default --masquerade-bit 14
LOOPBACK = "127.0.0.0/8"
DNAT_PRIORITY, SNAT_PRIORITY = -100, 100  # nft 1.0.6 rejects the name "dstnat" on the output hook

SERVICE_IPS, SERVICE_NODEPORTS = "service-ips", "service-nodeports"
NO_ENDPOINT_SERVICES, NO_ENDPOINT_NODEPORTS = "no-endpoint-services", "no-endpoint-nodeports"
SERVICES, ENDPOINTS_CHECK, MASQUERADING = "services", "endpoints-check", "masquerading"
MARK_FOR_MASQUERADE, REJECT_CHAIN = "mark-for-masquerade", "reject-chain"
ADDRESS_PORT, PORT_ONLY = "address-port", "port"  # the two map key shapes


# --- matches ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourceIn:
    prefix: str  # an address or a CIDR
    negate: bool = False


@dataclass(frozen=True, slots=True)
class DestIn:
    prefix: str
    negate: bool = False


@dataclass(frozen=True, slots=True)
class SourceInSet:
    set_name: str


@dataclass(frozen=True, slots=True)
class LocalAddress:
    """`fib <which> type local`: the source or destination is one of this node's addresses."""
    which: str  # "saddr" or "daddr"


@dataclass(frozen=True, slots=True)
class Transport:
    protocol: str
    port: int = 0  # 0: any port


@dataclass(frozen=True, slots=True)
class NewFlow:
    pass


@dataclass(frozen=True, slots=True)
class MarkUnset:
    bit: int


@dataclass(frozen=True, slots=True)
class OneIn:
    """`numgen random mod n == 0`: true for one new flow in n, at random."""
    n: int


# --- actions (each rule ends in exactly one) -------------------------------------------------

@dataclass(frozen=True, slots=True)
class Jump:
    chain: str


@dataclass(frozen=True, slots=True)
class Goto:
    chain: str


@dataclass(frozen=True, slots=True)
class Return:
    pass


@dataclass(frozen=True, slots=True)
class Drop:
    pass


@dataclass(frozen=True, slots=True)
class Reject:
    tcp_reset: bool = False


@dataclass(frozen=True, slots=True)
class LookupVmap:
    map_name: str
    key: str  # ADDRESS_PORT or PORT_ONLY




@dataclass(frozen=True, slots=True)
class MarkOr:
    bit: int


@dataclass(frozen=True, slots=True)
class MarkXor:
    bit: int


@dataclass(frozen=True, slots=True)
class Masquerade:
    pass


@dataclass(frozen=True, slots=True)
class UpdateSet:
    set_name: str


@dataclass(frozen=True, slots=True)
class Dnat:
    protocol: str
    ip: str
    port: int


@dataclass(frozen=True, slots=True)
class Rule:
    matches: tuple
    action: object


@dataclass(frozen=True, slots=True)
class Hook:
    kind: str  # nat or filter
    hook: str
    priority: int


@dataclass(frozen=True, slots=True)
class Chain:
    name: str
    rules: tuple[Rule, ...] = ()
    hook: Hook | None = None


@dataclass(frozen=True, slots=True)
class AffinitySet:
    name: str
    timeout_s: int


MAP_KEYS = {SERVICE_IPS: ADDRESS_PORT, NO_ENDPOINT_SERVICES: ADDRESS_PORT,
            SERVICE_NODEPORTS: PORT_ONLY, NO_ENDPOINT_NODEPORTS: PORT_ONLY}


@dataclass
class Ruleset:
    """chains by name; elements: map name -> {key: Goto | Drop}; keys are (ip, protocol, port)
    or (protocol, port); sets: the affinity sets by name."""

    table: str = TABLE
    chains: dict[str, Chain] = field(default_factory=dict)
    elements: dict[str, dict[tuple, object]] = field(default_factory=lambda: {name: {} for name in MAP_KEYS})
    sets: dict[str, AffinitySet] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)  # "key claimed by a, also by b": b got no element

    def add_chain(self, name: str, rules: list[Rule] | tuple[Rule, ...], hook: Hook | None = None) -> None:
        self.chains[name] = Chain(name, tuple(rules), hook)

    def rule_count(self) -> int:
        return sum(len(chain.rules) for chain in self.chains.values())

    def element_count(self) -> int:
        return sum(len(elements) for elements in self.elements.values())


# --- names -----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1 << 16)
def hashed(text: str) -> str:
    """kube-proxy's hashAndTruncate: base32(sha256(text))[:8], so names stay unique and short
    (8 base32 characters are exactly the first 5 bytes of the digest)."""
    return base64.b32encode(hashlib.sha256(text.encode()).digest()[:5]).decode()


def chain_name(kind: str, ident: str) -> str:
    return f"{kind}-{hashed(ident)}-{ident}"


def endpoint_ident(port_id: str, ip: str, number: int) -> str:
    return f"{port_id}__{ip}/{number}"


# --- building --------------------------------------------------------------------------------

def base_chains(ruleset: Ruleset, node: NodeFacts) -> None:
    r = ruleset.add_chain
    new_flows = (NewFlow(),)
    for hook in ("input", "forward", "output"):
        r(f"filter-{hook}", [Rule(new_flows, Jump(ENDPOINTS_CHECK))], Hook("filter", hook, DNAT_PRIORITY - 10))
    r("nat-prerouting", [Rule((), Jump(SERVICES))], Hook("nat", "prerouting", DNAT_PRIORITY))
    r("nat-output", [Rule((), Jump(SERVICES))], Hook("nat", "output", DNAT_PRIORITY))
    r("nat-postrouting", [Rule((), Jump(MASQUERADING))], Hook("nat", "postrouting", SNAT_PRIORITY))
    node_ports = (LocalAddress("daddr"), DestIn(LOOPBACK, negate=True))
    r(ENDPOINTS_CHECK, [Rule((), LookupVmap(NO_ENDPOINT_SERVICES, ADDRESS_PORT)),
                        Rule(node_ports, LookupVmap(NO_ENDPOINT_NODEPORTS, PORT_ONLY))])
    r(SERVICES, [Rule((), LookupVmap(SERVICE_IPS, ADDRESS_PORT)),
                 Rule(node_ports, LookupVmap(SERVICE_NODEPORTS, PORT_ONLY))])
    r(MASQUERADING, [Rule((MarkUnset(MASQUERADE_BIT),), Return()), Rule((), MarkXor(MASQUERADE_BIT)),
                     Rule((), Masquerade())])
    r(MARK_FOR_MASQUERADE, [Rule((), MarkOr(MASQUERADE_BIT))])
    r(REJECT_CHAIN, [Rule((Transport("tcp"),), Reject(tcp_reset=True)), Rule((), Reject())])


def _spread(chain: str, plan: PortPlan, endpoints, ruleset: Fragment, first: list[Rule]) -> None:
    """A chain that sends new flows to one of `endpoints` (affinity first, then at random)."""
    targets = tuple(chain_name("endpoint", endpoint_ident(plan.port.id, e.ip, e.port)) for e in endpoints)
    rules = list(first)
    if plan.port.affinity_timeout_s:
        rules += [Rule((SourceInSet(affinity_set(plan, e)),), Goto(target))
                  for e, target in zip(endpoints, targets, strict=True)]
    last = len(targets) - 1
    rules += [Rule((OneIn(len(targets) - i),) if i < last else (), Goto(target)) for i, target in enumerate(targets)]
    ruleset.add_chain(chain, rules)


def affinity_set(plan: PortPlan, endpoint) -> str:
    # The timeout is part of the hashed name: an existing set cannot change its timeout in place.
    ident = endpoint_ident(plan.port.id, endpoint.ip, endpoint.port)
    return f"affinity-{hashed(f'{ident}@{plan.port.affinity_timeout_s}')}-{ident}"


@dataclass
class Fragment:
    """One service's share of the ruleset: its chains, affinity sets and map elements
    ((map, key, verdict) in order). Fragments of unchanged services can be kept between syncs."""

    chains: dict[str, Chain] = field(default_factory=dict)
    sets: dict[str, AffinitySet] = field(default_factory=dict)
    elements: list[tuple[str, tuple, object]] = field(default_factory=list)

    def add_chain(self, name: str, rules: list[Rule] | tuple[Rule, ...], hook: Hook | None = None) -> None:
        self.chains[name] = Chain(name, tuple(rules), hook)


def build_port(ruleset: Fragment, plan: PortPlan, node: NodeFacts) -> None:
    """Add one service port's chains, sets and map elements."""
    port, proto = plan.port, plan.port.protocol
    service_chain = chain_name("service", port.id)
    local_chain = chain_name("local", port.id)
    external_chain = chain_name("external", port.id)
    for endpoint in plan.chain_endpoints:
        rules = [Rule((SourceIn(endpoint.ip),), Jump(MARK_FOR_MASQUERADE))]  # hairpin
        if port.affinity_timeout_s:
            name = affinity_set(plan, endpoint)
            ruleset.sets[name] = AffinitySet(name, port.affinity_timeout_s)
            rules.append(Rule((), UpdateSet(name)))
        rules.append(Rule((), Dnat(proto, endpoint.ip, endpoint.port)))
        ruleset.add_chain(chain_name("endpoint", endpoint_ident(port.id, endpoint.ip, endpoint.port)), rules)
    if plan.cluster:
        masquerade_off_cluster = [
            Rule((DestIn(ip), Transport(proto, port.port), SourceIn(node.cluster_cidr, negate=True)),
                 Jump(MARK_FOR_MASQUERADE)) for ip in port.cluster_ips] if node.cluster_cidr else []
        _spread(service_chain, plan, plan.cluster, ruleset, masquerade_off_cluster)
    if plan.uses_local and plan.local:
        _spread(local_chain, plan, plan.local, ruleset, [])
    internal_target = local_chain if port.internal_local else service_chain
    for ip in port.cluster_ips:
        _element(ruleset, plan.internal_verdict, (ip, proto, port.port), internal_target, SERVICE_IPS,
                 NO_ENDPOINT_SERVICES)
    if not port.has_external:
        return
    if plan.external:
        ruleset.add_chain(external_chain, _external_rules(plan, node, service_chain, local_chain))
    for ip in port.external_ips:
        _element(ruleset, plan.external_verdict, (ip, proto, port.port), external_chain, SERVICE_IPS,
                 NO_ENDPOINT_SERVICES)
    if port.node_port:
        _element(ruleset, plan.external_verdict, (proto, port.node_port), external_chain, SERVICE_NODEPORTS,
                 NO_ENDPOINT_NODEPORTS)


def _external_rules(plan: PortPlan, node: NodeFacts, service_chain: str, local_chain: str) -> list[Rule]:
    if not plan.port.external_local:
        # Traffic may cross to another node: masquerade so the reply returns through this one.
        return [Rule((), Jump(MARK_FOR_MASQUERADE)), Rule((), Goto(service_chain))]
    rules = []
    if node.cluster_cidr:  # pods reaching an external address behave as if they went out and back in
        rules.append(Rule((SourceIn(node.cluster_cidr),), Goto(service_chain)))
    local = (LocalAddress("saddr"),)
    return rules + [Rule(local, Jump(MARK_FOR_MASQUERADE)), Rule(local, Goto(service_chain)),
                    Rule((), Goto(local_chain))]


def _element(fragment: Fragment, verdict: str | None, key: tuple, chain: str, live_map: str, dead_map: str) -> None:
    if verdict is None:
        fragment.elements.append((live_map, key, Goto(chain)))
    else:
        fragment.elements.append((dead_map, key, Drop() if verdict == DROP else Goto(REJECT_CHAIN)))


def build_fragment(plans, node: NodeFacts) -> Fragment:
    """The chains, sets and elements for these port plans (usually one service's)."""
    fragment = Fragment()
    for plan in plans:
        build_port(fragment, plan, node)
    return fragment


def assemble(fragments, node: NodeFacts, table: str = TABLE) -> Ruleset:
    """The whole ruleset from the base chains and these fragments. Where two services claim one
    address and port, the first fragment wins and `conflicts` names the other (the API server's
    allocators prevent this; a hand-set clusterIP or externalIP may not)."""
    ruleset = Ruleset(table)
    base_chains(ruleset, node)
    chains, sets, elements = ruleset.chains, ruleset.sets, ruleset.elements
    claimed: dict[tuple, str] = {}
    for fragment in fragments:
        chains.update(fragment.chains)
        sets.update(fragment.sets)
        for map_name, key, target in fragment.elements:
            family = ADDRESS_PORT if len(key) == 3 else PORT_ONLY
            owner = claimed.setdefault((family, key), map_name)
            if owner != map_name or key in elements[map_name]:
                ruleset.conflicts.append(f"{'/'.join(map(str, key))} is claimed twice; {target} gets no element")
                continue
            elements[map_name][key] = target
    return ruleset


def build_ruleset(plans, node: NodeFacts, table: str = TABLE) -> Ruleset:
    """The whole desired ruleset for these port plans on this node (one fragment per plan)."""
    return assemble([build_fragment([plan], node) for plan in plans], node, table)


# --- comparing -------------------------------------------------------------------------------

@dataclass
class Changes:
    """What turns `old` into `new`: chains to (re)write, chains and sets no longer wanted,
    sets to add, and map elements to delete and add (a changed element is both)."""

    write_chains: list[Chain] = field(default_factory=list)
    gone_chains: list[str] = field(default_factory=list)
    add_sets: list[AffinitySet] = field(default_factory=list)
    gone_sets: list[str] = field(default_factory=list)
    delete_elements: dict[str, list[tuple]] = field(default_factory=dict)
    add_elements: dict[str, dict[tuple, object]] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.write_chains or self.gone_chains or self.add_sets or self.gone_sets
                    or any(self.delete_elements.values()) or any(self.add_elements.values()))


def diff(old: Ruleset, new: Ruleset) -> Changes:
    changes = Changes()
    # Identity first: fragments kept between syncs hold the very same chain objects.
    get = old.chains.get
    changes.write_chains = [c for name, c in new.chains.items() if (o := get(name)) is not c and o != c]
    changes.gone_chains = [name for name in old.chains if name not in new.chains]
    changes.add_sets = [s for name, s in new.sets.items() if old.sets.get(name) != s]
    changes.gone_sets = [name for name in old.sets if name not in new.sets]
    for map_name in MAP_KEYS:
        before, after = old.elements.get(map_name, {}), new.elements.get(map_name, {})
        changes.delete_elements[map_name] = [k for k, v in before.items() if (n := after.get(k)) is not v and n != v]
        changes.add_elements[map_name] = {k: v for k, v in after.items() if (o := before.get(k)) is not v and o != v}
    return changes
