"""ClusterIP and NodePort allocation, claimed in the kv store (one key per address or port under
/registry/ranges/), so two API servers on one kv cluster never hand out the same one."""

from __future__ import annotations

import ipaddress
import logging
import random
from dataclasses import dataclass

from orchestrator.api.resources import Resource
from orchestrator.apiserver import errors
from orchestrator.apiserver.storage import Store

log = logging.getLogger("ketch.apiserver.allocation")


@dataclass
class Allocator:
    store: Store
    service_cidr: ipaddress.IPv4Network
    node_ports: tuple[int, int]

    @staticmethod
    def allocations_of(resource: Resource, obj: dict) -> list[str]:
        if resource.kind != "Service":
            return []
        spec = obj.get("spec") or {}
        keys = []
        if spec.get("clusterIP") and spec["clusterIP"] != "None":
            keys.append(f"/registry/ranges/serviceips/{spec['clusterIP']}")
        keys += [f"/registry/ranges/servicenodeports/{p['nodePort']}" for p in spec.get("ports") or []
                 if isinstance(p, dict) and p.get("nodePort")]
        return keys

    async def allocate(self, resource: Resource, obj: dict) -> list[str]:
        """ClusterIP and NodePorts, claimed in the kv store so two API servers never hand out one twice."""
        if resource.kind != "Service":
            return []
        spec, owner = obj["spec"], f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"
        claimed: list[str] = []
        try:
            if spec.get("type") != "ExternalName" and spec.get("clusterIP") != "None":
                claimed.append(await self.claim_ip(spec, owner))
            if spec.get("type") in ("NodePort", "LoadBalancer"):
                for port in spec.get("ports") or []:
                    claimed.append(await self.claim_node_port(port, owner))
        except errors.APIError:
            await self.release(claimed)
            raise
        return claimed

    async def claim_ip(self, spec: dict, owner: str) -> str:
        network = self.service_cidr
        if spec.get("clusterIP"):
            try:
                address = ipaddress.IPv4Address(spec["clusterIP"])
            except ValueError:
                address = None
            if address is None or address not in network:
                raise errors.APIError(422, "Invalid", f"spec.clusterIP: Invalid value: {spec['clusterIP']!r}: "
                                      f"provided IP is not in the valid range {network}")
            key = f"/registry/ranges/serviceips/{address}"
            if not await self.store.claim(key, owner):
                raise errors.APIError(422, "Invalid", f"spec.clusterIP: Invalid value: {str(address)!r}: "
                                      "provided IP is already allocated")
            return key
        size = network.num_addresses - 2
        start = random.randrange(size)
        for step in range(min(size, 4096)):
            address = network.network_address + 2 + (start + step) % size  # .1 is the API service's
            key = f"/registry/ranges/serviceips/{address}"
            if await self.store.claim(key, owner):
                spec["clusterIP"] = str(address)
                spec["clusterIPs"] = [str(address)]
                return key
        raise errors.APIError(500, "InternalError", f"no free cluster IP in {network}")

    async def claim_node_port(self, port: dict, owner: str) -> str:
        low, high = self.node_ports
        if port.get("nodePort"):
            key = f"/registry/ranges/servicenodeports/{port['nodePort']}"
            if not low <= port["nodePort"] <= high or not await self.store.claim(key, owner):
                raise errors.APIError(422, "Invalid", f"spec.ports.nodePort: Invalid value: {port['nodePort']}: "
                                      f"provided port is already allocated or outside {low}-{high}")
            return key
        start = random.randrange(high - low + 1)
        for step in range(high - low + 1):
            candidate = low + (start + step) % (high - low + 1)
            key = f"/registry/ranges/servicenodeports/{candidate}"
            if await self.store.claim(key, owner):
                port["nodePort"] = candidate
                return key
        raise errors.APIError(500, "InternalError", "no free node port")

    async def release(self, keys: list[str]) -> None:
        for key in keys:
            try:
                await self.store.release(key)
            except errors.APIError:
                log.warning("event=release_failed key=%s", key)
