"""The /etc/resolv.conf and /etc/hosts a pod gets (pure; the runtime writes them into the pod).

Both follow what the kubelet writes for a pod with dnsPolicy ClusterFirst:
- resolv.conf: the cluster DNS servers, the search path `<ns>.svc.<domain> svc.<domain> <domain>`
  (then the node's own search domains), and `options ndots:5`, so `web` and `web.other` are tried
  inside the cluster first. Kubernetes' limits apply: at most 3 nameservers (what the resolver
  reads), 32 search domains and 2048 characters of search list; domains past them are dropped.
- hosts: the kubelet's managed header, the pod's own line (its FQDN first when it has a
  subdomain, as a StatefulSet pod does: `web-0.web.default.svc.cluster.local web-0`), then
  hostAliases, one name per line.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from netproxy.podnet.errors import InvalidNetworkConfig

MAX_NAMESERVERS = 3
MAX_SEARCH_DOMAINS = 32
MAX_SEARCH_CHARS = 2048
HOSTS_HEADER = ("# Kubernetes-managed hosts file.\n"
                "127.0.0.1\tlocalhost\n"
                "::1\tlocalhost ip6-localhost ip6-loopback\n"
                "fe00::0\tip6-localnet\n"
                "fe00::0\tip6-mcastprefix\n"
                "fe00::1\tip6-allnodes\n"
                "fe00::2\tip6-allrouters\n")


def _ip(text: str, what: str) -> str:
    try:
        return str(ipaddress.ip_address(str(text).strip()))
    except ValueError:
        raise InvalidNetworkConfig(f"{what} {text!r} is not an IP address") from None


def cluster_search(namespace: str, cluster_domain: str = "cluster.local") -> list[str]:
    return [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]


def resolv_conf(cluster_dns: str | Sequence[str], namespace: str, cluster_domain: str = "cluster.local", *,
                host_search: Iterable[str] = (), options: Iterable[str] = ("ndots:5",)) -> str:
    servers = [cluster_dns] if isinstance(cluster_dns, str) else list(cluster_dns)
    servers = [_ip(server, "cluster DNS address") for server in servers if str(server).strip()]
    if not servers:
        raise InvalidNetworkConfig("no cluster DNS address: pods with dnsPolicy ClusterFirst need --cluster-dns")
    if not namespace or not cluster_domain:
        raise InvalidNetworkConfig("a pod's resolv.conf needs its namespace and the cluster domain")
    search: list[str] = []
    for domain in cluster_search(namespace, cluster_domain) + [d.strip().rstrip(".") for d in host_search]:
        if domain and domain not in search and len(search) < MAX_SEARCH_DOMAINS \
                and len(" ".join(search + [domain])) <= MAX_SEARCH_CHARS:
            search.append(domain)
    lines = [f"search {' '.join(search)}"] + [f"nameserver {server}" for server in servers[:MAX_NAMESERVERS]]
    options = list(options)
    if options:
        lines.append(f"options {' '.join(options)}")
    return "\n".join(lines) + "\n"


def etc_hosts(pod_ip: str | None, hostname: str, *, subdomain: str | None = None, namespace: str = "default",
              cluster_domain: str = "cluster.local", host_aliases: Iterable[dict] = ()) -> str:
    """pod_ip None: no line for the pod itself (it has no address yet)."""
    text = HOSTS_HEADER
    if pod_ip:
        ip = _ip(pod_ip, "pod IP")
        if subdomain:
            text += f"{ip}\t{hostname}.{subdomain}.{namespace}.svc.{cluster_domain}\t{hostname}\n"
        else:
            text += f"{ip}\t{hostname}\n"
    aliases = [alias for alias in host_aliases if alias.get("hostnames")]
    if aliases:
        text += "\n# Entries added by HostAliases.\n"
        for alias in aliases:
            ip = _ip(alias.get("ip", ""), "hostAliases ip")
            text += "".join(f"{ip}\t{name}\n" for name in alias["hostnames"])
    return text
