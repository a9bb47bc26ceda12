"""The pod network (issue 11): a bridge per node, a veth and a network namespace per pod, an
address from the node's pod CIDR, host-gw routes between nodes, masquerade out of the cluster;
and the resolv.conf and hosts files a pod gets."""

from netproxy.podnet.errors import AddressesExhausted, CorruptState, InvalidNetworkConfig, PodNetworkError
from netproxy.podnet.network import PodAddress, PodNetwork
from netproxy.podnet.pod_files import etc_hosts, resolv_conf

__all__ = ["AddressesExhausted", "CorruptState", "InvalidNetworkConfig", "PodAddress", "PodNetwork",
           "PodNetworkError", "etc_hosts", "resolv_conf"]
