"""The pod network's errors: one base, so the kubelet can catch them all and report them on the pod."""

from __future__ import annotations


class PodNetworkError(Exception):
    """Base of the pod network's errors; the message says what failed and on which pod or node."""


class InvalidNetworkConfig(PodNetworkError):
    """A node name, pod uid, CIDR or address that cannot be used (nothing on the host changed)."""


class AddressesExhausted(PodNetworkError):
    """Every address of the node's pod CIDR is handed out (Kubernetes' host-local IPAM says the same)."""


class CorruptState(PodNetworkError):
    """The IPAM state file cannot be read; it is left as it is, so no allocation is lost or repeated."""
