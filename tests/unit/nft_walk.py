"""A small model of nftables that walks one new flow's first packet through a built `Ruleset`.

It follows the kernel's order: base chains by hook, lowest priority first; `jump` returns,
`goto` does not; a verdict map lookup that misses falls through; `dnat` and `masquerade` end
the hook (they accept); `drop` and `reject` end the walk; a base chain's policy is accept.
`numgen random mod n == 0` forks the walk (true with 1/n), so `walk` returns every possible
outcome with its probability.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace
from fractions import Fraction

from netproxy.ruleset import (
    ADDRESS_PORT,
    DestIn,
    Dnat,
    Drop,
    Goto,
    Jump,
    LocalAddress,
    LookupVmap,
    MarkOr,
    MarkUnset,
    MarkXor,
    Masquerade,
    NewFlow,
    OneIn,
    Reject,
    Return,
    Ruleset,
    SourceIn,
    SourceInSet,
    Transport,
    UpdateSet,
)


@dataclass(frozen=True)
class Packet:
    saddr: str
    daddr: str
    protocol: str
    dport: int
    from_node: bool  # made by a process on the node (output path), else arriving (prerouting)


@dataclass(frozen=True)
class Outcome:
    verdict: str  # "accept", "drop" or "reject"
    dnat: tuple[str, int] | None
    masquerade: bool
    probability: Fraction = Fraction(1)
    sets: tuple = ()  # the affinity sets after the walk: ((name, frozenset of ips), ...)


@dataclass
class _State:
    packet: Packet
    mark: int = 0
    dnat: tuple[str, int] | None = None
    masquerade: bool = False
    probability: Fraction = Fraction(1)
    sets: dict = field(default_factory=dict)
    verdict: str | None = None  # set when the hook (accept) or the walk (drop, reject) ends
    returned: bool = False  # the current chain ended (return, or the end of a goto'd chain)

    def fork(self, probability: Fraction) -> _State:
        return replace(self, probability=self.probability * probability, sets=dict(self.sets))


def _in(address: str, prefix: str) -> bool:
    return ipaddress.IPv4Address(address) in ipaddress.IPv4Network(prefix, strict=False)


def _is_local(address: str, node_addresses) -> bool:
    return address in node_addresses or _in(address, "127.0.0.0/8")


def _matches(rule, state: _State, node_addresses) -> bool:
    p = state.packet
    daddr = state.dnat[0] if state.dnat else p.daddr
    dport = state.dnat[1] if state.dnat else p.dport
    for m in rule.matches:
        kind = type(m)
        if kind is SourceIn:
            ok = _in(p.saddr, m.prefix) != m.negate
        elif kind is DestIn:
            ok = _in(daddr, m.prefix) != m.negate
        elif kind is SourceInSet:
            ok = p.saddr in state.sets.get(m.set_name, frozenset())
        elif kind is LocalAddress:
            ok = _is_local(p.saddr if m.which == "saddr" else daddr, node_addresses)
        elif kind is Transport:
            ok = p.protocol == m.protocol and (not m.port or dport == m.port)
        elif kind is NewFlow:
            ok = True  # the model only walks the first packet of a flow
        elif kind is MarkUnset:
            ok = not state.mark & m.bit
        elif kind is OneIn:
            ok = True  # _run_chain forked the walk: this state is the 1-in-n branch
        else:
            raise TypeError(m)
        if not ok:
            return False
    return True


def _run_chain(ruleset: Ruleset, name: str, state: _State, node_addresses, depth: int = 0) -> list[_State]:
    """States after running chain `name`: verdict None means "fell off the end" (return)."""
    if depth > 32:
        raise RecursionError(f"chain loop through {name}")
    states = [state]
    for rule in ruleset.chains[name].rules:
        next_states = []
        for s in states:
            if s.verdict is not None or s.returned:
                next_states.append(s)
                continue
            chance = next((m for m in rule.matches if type(m) is OneIn), None)
            if chance is not None:  # fork: the rule matches one flow in n
                next_states.append(s.fork(Fraction(chance.n - 1, chance.n)))
                s = s.fork(Fraction(1, chance.n))
            if not _matches(rule, s, node_addresses):
                next_states.append(s)
                continue
            next_states += _act(ruleset, rule.action, s, node_addresses, depth)
        states = next_states
    return states


def _act(ruleset: Ruleset, action, state: _State, node_addresses, depth: int) -> list[_State]:
    kind = type(action)
    p = state.packet
    if kind is Jump:
        return [_resume(s) for s in _run_chain(ruleset, action.chain, state, node_addresses, depth + 1)]
    if kind is Goto:
        return [_end(s) for s in _run_chain(ruleset, action.chain, state, node_addresses, depth + 1)]
    if kind is Return:
        return [_end(state)]
    if kind is Drop:
        state.verdict = "drop"
        return [state]
    if kind is Reject:
        state.verdict = "reject"
        return [state]
    if kind is LookupVmap:
        key = (p.daddr, p.protocol, p.dport) if action.key == ADDRESS_PORT else (p.protocol, p.dport)
        found = ruleset.elements[action.map_name].get(key)
        return [state] if found is None else _act(ruleset, found, state, node_addresses, depth)
    if kind is MarkOr:
        state.mark |= action.bit
        return [state]
    if kind is MarkXor:
        state.mark ^= action.bit
        return [state]
    if kind is Masquerade:
        state.masquerade = True
        state.verdict = "accept"
        return [state]
    if kind is UpdateSet:
        state.sets[action.set_name] = state.sets.get(action.set_name, frozenset()) | {p.saddr}
        return [state]
    if kind is Dnat:
        assert p.protocol == action.protocol
        state.dnat = (action.ip, action.port)
        state.verdict = "accept"
        return [state]
    raise TypeError(action)


def _end(state: _State) -> _State:
    """After a goto (or return), the calling chain ends too."""
    state.returned = state.verdict is None
    return state


def _resume(state: _State) -> _State:
    """Back in the chain that jumped: it goes on with its next rule."""
    state.returned = False
    return state


def _hook(ruleset: Ruleset, hook: str, states: list[_State], node_addresses) -> list[_State]:
    chains = sorted((c for c in ruleset.chains.values() if c.hook and c.hook.hook == hook),
                    key=lambda c: c.hook.priority)
    for chain in chains:
        out = []
        for s in states:
            if s.verdict in ("drop", "reject"):
                out.append(s)
                continue
            s.verdict = None
            out += [_resume(x) for x in _run_chain(ruleset, chain.name, s, node_addresses)]
        states = out
    for s in states:
        if s.verdict is None:
            s.verdict = "accept"
    return states


def walk(ruleset: Ruleset, node_addresses, packet: Packet, sets: dict | None = None) -> list[Outcome]:
    """Every outcome of this packet's first traversal, with the probability of each."""
    states = [_State(packet, sets=dict(sets or {}))]
    if packet.from_node:
        order = ["output", "postrouting"]
    else:
        states = _hook(ruleset, "prerouting", states, node_addresses)
        order = []
    done = []
    for s in states:
        hooks = order or (["input"] if _is_local(s.dnat[0] if s.dnat else packet.daddr, node_addresses)
                          else ["forward", "postrouting"])
        flows = [s]
        for hook in hooks:
            flows = _hook(ruleset, hook, flows, node_addresses)
        done += flows
    return [Outcome(s.verdict, s.dnat, s.masquerade, s.probability,
                    tuple(sorted(s.sets.items()))) for s in done]
