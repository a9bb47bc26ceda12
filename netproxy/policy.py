"""Which endpoints a service port's traffic may go to on this node (pure), as kube-proxy decides
(pkg/proxy/topology.go CategorizeEndpoints), shared by the nftables, iptables and userspace modes.

- Cluster traffic goes to the ready endpoints anywhere; when none is ready, to endpoints that are
  serving and terminating (so connections drain instead of failing during a rollout).
- Local traffic (internalTrafficPolicy or externalTrafficPolicy Local) goes to this node's ready
  endpoints, or failing that to this node's serving-and-terminating ones.
- A port with no usable endpoint anywhere is rejected (the client learns at once); a port whose
  only endpoints are on other nodes while its policy is Local is dropped, as kube-proxy does.
"""

from __future__ import annotations

from dataclasses import dataclass

from netproxy.model import Endpoint, ServicePort

REJECT = "reject"
DROP = "drop"


@dataclass(frozen=True, slots=True)
class PortPlan:
    port: ServicePort
    cluster: tuple[Endpoint, ...]  # endpoints for the Cluster policy
    local: tuple[Endpoint, ...]  # this node's endpoints, for a Local policy
    has_endpoints: bool  # a usable endpoint exists anywhere

    @property
    def internal(self) -> tuple[Endpoint, ...]:
        """Where ClusterIP traffic goes."""
        return self.local if self.port.internal_local else self.cluster

    @property
    def external(self) -> tuple[Endpoint, ...]:
        """Where NodePort / external IP traffic from outside the cluster goes."""
        return self.local if self.port.external_local else self.cluster

    @property
    def internal_verdict(self) -> str | None:
        """None when ClusterIP traffic has somewhere to go, else REJECT or DROP."""
        return None if self.internal else (DROP if self.has_endpoints else REJECT)

    @property
    def external_verdict(self) -> str | None:
        return None if self.external else (DROP if self.has_endpoints else REJECT)

    @property
    def chain_endpoints(self) -> tuple[Endpoint, ...]:
        """Every endpoint some chain of this port sends traffic to (cluster and local)."""
        return self.cluster + tuple(e for e in self.local if e not in self.cluster)

    @property
    def uses_local(self) -> bool:
        return self.port.internal_local or (self.port.external_local and self.port.has_external)


def usable(endpoints: tuple[Endpoint, ...]) -> tuple[Endpoint, ...]:
    ready = tuple(e for e in endpoints if e.ready)
    return ready or tuple(e for e in endpoints if e.serving and e.terminating)


def plan_port(port: ServicePort, endpoints: tuple[Endpoint, ...], node_name: str) -> PortPlan:
    cluster = usable(endpoints)
    local = usable(tuple(e for e in endpoints if e.node_name == node_name))
    return PortPlan(port, cluster, local, bool(cluster))
