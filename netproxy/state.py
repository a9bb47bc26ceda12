"""What the proxy has been told (pure): Services, EndpointSlices and its Node, kept as model
values, with the services changed since the last sync and the time each change began.

Informer handlers call `service_changed` / `slice_changed` / `node_changed` with the object and
the wall time it was observed; the sync loop calls `take` for the port plans and the changed
services, and `applied` (or `failed`) once it knows how the sync went. Time is an argument.
A Service or EndpointSlice that cannot be read is dropped from the rules and reported, and
the rest go on (one bad object must not stop the node's proxy).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netproxy.model import (
    BadObject,
    NodeFacts,
    PortEndpoints,
    ServicePort,
    merge_slices,
    node_facts,
    service_ports,
    slice_endpoints,
    slice_service_key,
    trigger_time,
)
from netproxy.policy import PortPlan, plan_port


def _key(obj: dict) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


def rfc3339_epoch(text: str | None) -> float | None:
    """Seconds since the epoch of an RFC 3339 time with optional fractions (up to nanoseconds)."""
    from datetime import datetime

    if not text or not isinstance(text, str):
        return None
    head, _, rest = text.partition(".")
    fraction = 0.0
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        fraction = float(f"0.{digits}") if digits else 0.0
        text = head + rest[len(digits):]
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() + fraction
    except ValueError:
        return None


@dataclass
class ProxyState:
    node_name: str
    cluster_cidr: str = ""
    node: NodeFacts = None
    services: dict[str, tuple[ServicePort, ...]] = field(default_factory=dict)
    slices: dict[str, tuple[str, PortEndpoints]] = field(default_factory=dict)  # slice -> (service, endpoints)
    slices_of: dict[str, set[str]] = field(default_factory=dict)
    plans: dict[str, tuple[PortPlan, ...]] = field(default_factory=dict)
    dirty: set[str] = field(default_factory=set)
    changed_since: dict[str, float] = field(default_factory=dict)  # service -> earliest unapplied change
    bad: dict[str, str] = field(default_factory=dict)  # object key -> why it is ignored
    node_dirty: bool = True

    def __post_init__(self) -> None:
        if self.node is None:
            self.node = NodeFacts(self.node_name, cluster_cidr=self.cluster_cidr)

    def _touch(self, service: str, when_s: float) -> None:
        self.dirty.add(service)
        self.changed_since[service] = min(self.changed_since.get(service, when_s), when_s)

    def service_changed(self, obj: dict, observed_s: float, deleted: bool = False) -> str | None:
        """Record a Service; returns the reason when it cannot be read (it then gets no rules)."""
        key = _key(obj)
        self.bad.pop(f"service {key}", None)
        try:
            ports = () if deleted else service_ports(obj)
        except BadObject as err:
            self.bad[f"service {key}"] = str(err)
            ports, reason = (), str(err)
        else:
            reason = None
        if self.services.get(key, ()) != ports or (deleted and key in self.services):
            if ports:
                self.services[key] = ports
            else:
                self.services.pop(key, None)
            self._touch(key, observed_s)
        return reason

    def slice_changed(self, obj: dict, observed_s: float, deleted: bool = False) -> str | None:
        key = _key(obj)
        self.bad.pop(f"endpointslice {key}", None)
        service = slice_service_key(obj)
        reason = None
        try:
            endpoints = {} if deleted or service is None else slice_endpoints(obj)
        except BadObject as err:
            self.bad[f"endpointslice {key}"] = reason = str(err)
            endpoints = {}
        previous = self.slices.pop(key, None)
        if previous is not None:
            self.slices_of.get(previous[0], set()).discard(key)
            if previous[0] != service:
                self._touch(previous[0], observed_s)
        if service is not None and not deleted and reason is None:
            self.slices[key] = (service, endpoints)
            self.slices_of.setdefault(service, set()).add(key)
        if service is not None and (previous is None or previous[1] != endpoints or deleted or reason):
            triggered = rfc3339_epoch(trigger_time(obj))
            self._touch(service, min(triggered, observed_s) if triggered else observed_s)
        return reason

    def node_changed(self, node: dict | None) -> None:
        facts = node_facts(node, self.node_name, self.cluster_cidr)
        if facts != self.node:
            self.node = facts
            self.node_dirty = True

    def take(self) -> Taken:
        """Plans of every service, and what changed since the last take (with when it began)."""
        node_dirty, dirty = self.node_dirty, set(self.dirty)
        for service in (self.services if node_dirty else ()):
            dirty.add(service)
        for service in dirty:
            ports = self.services.get(service, ())
            if not ports:
                self.plans.pop(service, None)
                continue
            merged = merge_slices([self.slices[s][1] for s in sorted(self.slices_of.get(service, ()))
                                   if s in self.slices])
            self.plans[service] = tuple(plan_port(p, merged.get((p.name, p.protocol), ()), self.node_name)
                                        for p in ports)
        self.dirty.clear()
        self.node_dirty = False
        since = {s: self.changed_since.pop(s) for s in dirty if s in self.changed_since}
        return Taken(self.plans, dirty, node_dirty, since)

    def failed(self, taken: Taken) -> None:
        """The sync of `taken` failed: all of it is still to do."""
        self.dirty |= taken.dirty
        self.node_dirty = self.node_dirty or taken.node_dirty
        for service, when in taken.since.items():
            self.changed_since[service] = min(self.changed_since.get(service, when), when)


@dataclass
class Taken:
    plans: dict[str, tuple[PortPlan, ...]]  # every service's plans (the state's own dict: read only)
    dirty: set[str]  # services whose plans may have changed
    node_dirty: bool
    since: dict[str, float]  # dirty service -> wall time its earliest unapplied change began
