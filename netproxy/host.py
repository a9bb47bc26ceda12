"""The node's kernel settings the rules depend on, inside the node's network namespace.

- net.ipv4.ip_forward=1: pods' packets DNATed to endpoints on other nodes are forwarded.
- net.bridge.bridge-nf-call-iptables=1: a pod reaching a ClusterIP that picks a pod on the same
  bridge; without it the reply is bridged straight back, never un-DNATed, and the client hangs.
- net.ipv4.conf.all.route_localnet=1 (iptables mode only): kube-proxy's localhost NodePorts.
- A route covering the service CIDR when the node has no default route: a connect() from the
  node itself to a ClusterIP fails with ENETUNREACH before the output hook can DNAT it (real
  nodes have a default route; lab hosts often do not). It goes out of the interface holding the
  node's address, where no packet will ever leave with that destination (the rules rewrite it).

/proc/sys/net shows the namespace of the process that opens it, so with a namespace name the
values are written by a child run through `ip netns exec`; pyroute2 handles the route, with
flags=0 so a mistyped namespace is an error instead of a new empty namespace.
"""

from __future__ import annotations

import errno
import ipaddress
import subprocess
import sys
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netproxy.model import ProxyError
from netproxy.nft import netns_argv
from netproxy.podnet.errors import PodNetworkError
from netproxy.podnet.host import open_netlink

SYSCTLS = {"net/ipv4/ip_forward": "1", "net/bridge/bridge-nf-call-iptables": "1"}
LOCALNET = {"net/ipv4/conf/all/route_localnet": "1"}


class HostError(ProxyError):
    """A sysctl or route could not be set in the node's namespace."""


def sysctls_for(mode: str) -> dict[str, str]:
    return {**SYSCTLS, **(LOCALNET if mode == "iptables" else {})}


def write_sysctls(values: dict[str, str], netns: str | None = None) -> dict[str, str]:
    """Write each /proc/sys value that exists; returns what was written (bridge-nf-call-* exists
    only where br_netfilter is loaded or built in). With netns, a child writes them in there."""
    if netns is not None:
        done = subprocess.run(netns_argv(netns, sys.executable, "-m", "netproxy.host",
                                         *(f"{k}={v}" for k, v in values.items())),
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise HostError(f"cannot set sysctls in {netns}: {done.stderr.strip()[-500:]}")
        return {key: values[key] for key in done.stdout.split()}
    written = {}
    for key, value in values.items():
        path = Path("/proc/sys") / key
        if path.exists():
            try:
                path.write_text(value)
            except OSError as err:
                raise HostError(f"cannot set {key}={value}: {err}") from None
            written[key] = value
    return written


def ensure_service_route(service_cidr: str, node_address: str | None, netns: str | None = None) -> str | None:
    """Add a route for the service CIDR if nothing routes its first address; returns the device
    used, or None when a route (e.g. the default route) already covers it. Blocking."""
    network = ipaddress.IPv4Network(service_cidr)
    try:
        return _route(open_netlink(netns), network, node_address)
    except PodNetworkError as err:
        raise HostError(str(err)) from None


def _route(ipr: IPRoute, network: ipaddress.IPv4Network, node_address: str | None) -> str | None:
    with ipr:
        try:
            ipr.route("get", dst=str(network.network_address + 1))
            return None
        except NetlinkError as err:
            if err.code != errno.ENETUNREACH:
                raise HostError(f"route lookup for {network}: {err}") from None
        index = None
        for addr in ipr.addr("dump", family=2):
            if node_address is None or addr.get("IFA_ADDRESS") == node_address:
                if addr.get("IFA_ADDRESS", "").startswith("127."):
                    continue
                index = addr["index"]
                break
        if index is None:
            raise HostError(f"no interface holds the node address {node_address} for the {network} route")
        ipr.route("add", dst=str(network), oif=index, scope=253)  # scope link: no gateway needed
        return ipr.link("get", index=index)[0].get("IFLA_IFNAME")


if __name__ == "__main__":  # write_sysctls' child inside a namespace: KEY=VALUE ...
    print(" ".join(write_sysctls(dict(arg.split("=", 1) for arg in sys.argv[1:]))))
