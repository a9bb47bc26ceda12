"""What Services say to the nodes that carry them (pure)."""

from __future__ import annotations

from orchestrator.api.meta import annotations
from orchestrator.api.meta import field as get

# The lab cloud controller names, per LoadBalancer Service, the one Ready worker that answers for
# its addresses on the fabric (MetalLB's layer-2 mode: one speaker per address). That worker's
# proxy holds the addresses on its interface, so ARP for them finds it.
LB_ANNOUNCER = "ketch.dev/lb-announcer"


def announced_by(service: dict, node_name: str) -> tuple[str, ...]:
    """The load balancer addresses `node_name` must answer for on behalf of `service`."""
    if get(service, "spec", "type") != "LoadBalancer" or annotations(service).get(LB_ANNOUNCER) != node_name:
        return ()
    return tuple(i["ip"] for i in get(service, "status", "loadBalancer", "ingress", default=[]) or []
                 if isinstance(i, dict) and i.get("ip"))
