"""nftables: render a `Ruleset` as an `nft -f -` transaction, and apply it inside a namespace.

A transaction file is applied all or nothing, as kube-proxy (through knftables) relies on.
- Full sync: `add table` + `delete table` + the whole table. The first two lines make the replace
  work whether or not the table exists (also a table a crashed proxy left behind, or one changed
  by hand), and the kernel swaps old for new at once: established flows keep their conntrack NAT.
  Affinity sets start empty again after a full sync.
- Partial sync: only what `ruleset.diff` found changed: each chain written is `add` + `flush` +
  its rules; map elements deleted and added; chains and sets no longer wanted are flushed now and
  deleted by a later sync, at least `STALE_DELETE_AFTER_S` later, as kube-proxy does (kernels before
  6.2 could refuse to delete a chain in the transaction that dropped its last map reference).
If a transaction fails, the applier forgets what it believed and the next sync is a full one.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field

from netproxy.model import ProxyError
from netproxy.ruleset import (
    ADDRESS_PORT,
    MAP_KEYS,
    Chain,
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
    diff,
)

STALE_DELETE_AFTER_S = 1.0
NFT_TIMEOUT_S = 60.0


class NftError(ProxyError):
    """`nft -f -` refused a transaction (its stderr says why) or could not be run."""


def _match(match) -> str:
    kind = type(match)
    if kind is SourceIn:
        return f"ip saddr {'!= ' if match.negate else ''}{match.prefix}"
    if kind is DestIn:
        return f"ip daddr {'!= ' if match.negate else ''}{match.prefix}"
    if kind is Transport:
        return f"{match.protocol} dport {match.port}" if match.port else f"meta l4proto {match.protocol}"
    if kind is SourceInSet:
        return f"ip saddr @{match.set_name}"
    if kind is LocalAddress:
        return f"fib {match.which} type local"
    if kind is NewFlow:
        return "ct state new"
    if kind is OneIn:
        return f"numgen random mod {match.n} == 0"
    if kind is MarkUnset:
        return f"meta mark & {match.bit:#x} == 0"
    raise TypeError(f"no nft text for {match!r}")


def verdict(action) -> str:
    kind = type(action)
    if kind is Goto:
        return f"goto {action.chain}"
    if kind is Jump:
        return f"jump {action.chain}"
    if kind is Drop:
        return "drop"
    if kind is Return:
        return "return"
    raise TypeError(f"{action!r} is not a verdict")


def _action(action) -> str:
    kind = type(action)
    if kind is Dnat:
        # nft needs a transport match before `dnat to ip:port`
        return f"meta l4proto {action.protocol} dnat to {action.ip}:{action.port}"
    if kind is LookupVmap:
        key = "ip daddr . meta l4proto . th dport" if action.key == ADDRESS_PORT else "meta l4proto . th dport"
        return f"{key} vmap @{action.map_name}"
    if kind is UpdateSet:
        return f"update @{action.set_name} {{ ip saddr }}"
    if kind is MarkOr:
        return f"meta mark set meta mark | {action.bit:#x}"
    if kind is MarkXor:
        return f"meta mark set meta mark ^ {action.bit:#x}"
    if kind is Masquerade:
        return "masquerade fully-random"
    if kind is Reject:
        return "reject with tcp reset" if action.tcp_reset else "reject"
    return verdict(action)


def rule_text(rule) -> str:
    return " ".join([*(_match(m) for m in rule.matches), _action(rule.action)])


def _chain_lines(table: str, chain: Chain, out: list[str]) -> None:
    prefix = f"add rule ip {table} {chain.name} "
    out.extend(prefix + rule_text(rule) for rule in chain.rules)


def _key(key: tuple) -> str:
    return " . ".join(str(part) for part in key)


def _elements(table: str, map_name: str, elements: dict, out: list[str]) -> None:
    if elements:
        body = ", ".join(f"{_key(k)} : {verdict(v)}" for k, v in elements.items())
        out.append(f"add element ip {table} {map_name} {{ {body} }}")


def _declarations(ruleset: Ruleset) -> list[str]:
    lines = [f"table ip {ruleset.table} {{"]
    for name, key in MAP_KEYS.items():
        shape = "ipv4_addr . inet_proto . inet_service" if key == ADDRESS_PORT else "inet_proto . inet_service"
        lines.append(f"  map {name} {{ type {shape} : verdict; }}")
    for s in ruleset.sets.values():
        lines.append(f"  set {s.name} {{ type ipv4_addr; flags dynamic,timeout; timeout {s.timeout_s}s; }}")
    for chain in ruleset.chains.values():
        if chain.hook:
            hook = chain.hook
            lines.append(f"  chain {chain.name} {{ type {hook.kind} hook {hook.hook} priority {hook.priority}; "
                         "policy accept; }")
        else:
            lines.append(f"  chain {chain.name} {{ }}")
    lines.append("}")
    return lines


def full_text(ruleset: Ruleset) -> str:
    """Replace the whole table atomically."""
    t = ruleset.table
    out = [f"add table ip {t}", f"delete table ip {t}", *_declarations(ruleset)]
    for chain in ruleset.chains.values():
        _chain_lines(t, chain, out)
    for map_name in MAP_KEYS:
        _elements(t, map_name, ruleset.elements[map_name], out)
    return "\n".join(out) + "\n"


def partial_text(old: Ruleset, new: Ruleset, delete_chains: list[str], delete_sets: list[str]) -> str:
    """The changes from `old` (what the kernel holds) to `new`; chains and sets in delete_*
    were flushed by an earlier sync and are removed now."""
    t = new.table
    changes = diff(old, new)
    out: list[str] = []
    for map_name, keys in changes.delete_elements.items():
        if keys:
            out.append(f"delete element ip {t} {map_name} {{ {', '.join(_key(k) for k in keys)} }}")
    for s in changes.add_sets:
        out.append(f"add set ip {t} {s.name} {{ type ipv4_addr; flags dynamic,timeout; timeout {s.timeout_s}s; }}")
    for chain in changes.write_chains:
        out += [f"add chain ip {t} {chain.name}", f"flush chain ip {t} {chain.name}"]
        _chain_lines(t, chain, out)
    for name in changes.gone_chains:
        out.append(f"flush chain ip {t} {name}")
    for map_name, elements in changes.add_elements.items():
        _elements(t, map_name, elements, out)
    out += [f"delete chain ip {t} {name}" for name in delete_chains]
    out += [f"delete set ip {t} {name}" for name in delete_sets]
    return "\n".join(out) + "\n" if out else ""


def netns_argv(netns: str | None, *argv: str) -> list[str]:
    """argv run inside `netns` (through `ip netns exec`), or here when netns is None."""
    return (["ip", "netns", "exec", netns] if netns else []) + list(argv)


def run_nft(text: str, netns: str | None = None, *args: str) -> str:
    """Run `nft <args> -f -` with `text` on stdin; NftError with nft's message on failure."""
    try:
        done = subprocess.run(netns_argv(netns, "nft", *args, "-f", "-"), input=text, capture_output=True,
                              text=True, timeout=NFT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise NftError(f"nft could not run: {err}") from None
    if done.returncode != 0:
        raise NftError(f"nft -f - failed: {done.stderr.strip()[:2000]}")
    return done.stdout


def list_table(table: str, netns: str | None = None) -> str | None:
    """`nft list table ip <table>`, or None when there is no such table."""
    done = subprocess.run(netns_argv(netns, "nft", "list", "table", "ip", table), capture_output=True, text=True,
                          timeout=NFT_TIMEOUT_S)
    return done.stdout if done.returncode == 0 else None


@dataclass
class Transaction:
    text: str
    full: bool
    deleted_chains: list[str] = field(default_factory=list)
    deleted_sets: list[str] = field(default_factory=list)


@dataclass
class NftApplier:
    """Keeps what the kernel holds (`applied`) and turns each desired ruleset into the smallest
    transaction. `now_s` comes from the caller (a monotonic clock) so staleness is testable."""

    netns: str | None = None
    applied: Ruleset | None = None
    stale_chains: dict[str, float] = field(default_factory=dict)  # name -> when it was flushed
    stale_sets: dict[str, float] = field(default_factory=dict)
    runner: object = run_nft
    last: Transaction | None = None  # the last transaction applied (for benchmarks and debugging)

    def transaction(self, desired: Ruleset, now_s: float, force_full: bool = False) -> Transaction:
        """What moves the kernel from `applied` to `desired` (empty text: nothing to do)."""
        if force_full or self.applied is None or self.applied.table != desired.table:
            return Transaction(full_text(desired), True)
        chains = [n for n, t in self.stale_chains.items()
                  if now_s - t >= STALE_DELETE_AFTER_S and n not in desired.chains]
        sets = [n for n, t in self.stale_sets.items() if now_s - t >= STALE_DELETE_AFTER_S and n not in desired.sets]
        return Transaction(partial_text(self.applied, desired, chains, sets), False, chains, sets)

    def sync(self, desired: Ruleset, now_s: float, force_full: bool = False) -> Transaction:
        """Apply; on NftError the applier forgets the kernel's state, so the next sync is full."""
        transaction = self.transaction(desired, now_s, force_full)
        if not transaction.text:
            return transaction
        try:
            self.runner(transaction.text, self.netns)
        except NftError:
            self.applied = None
            raise
        self._remember(desired, now_s, transaction)
        self.last = transaction
        return transaction

    def _remember(self, desired: Ruleset, now_s: float, transaction: Transaction) -> None:
        if transaction.full:
            self.stale_chains.clear()
            self.stale_sets.clear()
        else:
            for names, stale, wanted, deleted in (
                    (self.applied.chains, self.stale_chains, desired.chains, transaction.deleted_chains),
                    (self.applied.sets, self.stale_sets, desired.sets, transaction.deleted_sets)):
                for name in names:
                    if name not in wanted:
                        stale.setdefault(name, now_s)
                for name in [n for n in stale if n in wanted or n in deleted]:
                    del stale[name]
        self.applied = desired

    def cleanup(self, table: str) -> bool:
        """Delete the table and everything in it; False when there was none."""
        self.applied = None
        self.stale_chains.clear()
        self.stale_sets.clear()
        try:
            self.runner(f"delete table ip {table}\n", self.netns)
        except NftError:
            return False
        return True
