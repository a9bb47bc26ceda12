"""`ketch dns` against a real control plane (kv cluster, API server, controller manager,
scheduler, hollow nodes): Services made with kubectl resolve, EndpointSlices written by the
controllers feed headless names, and changes show up in answers.

The upstream is a second `ketch dns` serving another cluster domain (`upstream.test`) with
`--upstream none`, so forwarding is tested against a real server without leaving the machine.
"""

from __future__ import annotations

import socket
import subprocess
import urllib.request

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
import yaml

from kvstore.local_cluster import free_port


class Resolver:
    def __init__(self, port: int) -> None:
        self.port = port

    def ask(self, name: str, rtype: str = "A", *, tcp: bool = False) -> dns.message.Message:
        query = dns.message.make_query(name, rtype)
        if tcp:
            return dns.query.tcp(query, "127.0.0.1", port=self.port, timeout=5)
        return dns.query.udp(query, "127.0.0.1", port=self.port, timeout=5)

    def records(self, name: str, rtype: str = "A", **kw) -> list[str]:
        response = self.ask(name, rtype, **kw)
        return sorted(rdata.to_text() for rrset in response.answer for rdata in rrset
                      if rrset.rdtype == dns.rdatatype.from_text(rtype))


def start_dns(cluster, name: str, *args: str) -> tuple[Resolver, int]:
    port, metrics = free_port(), free_port()
    cluster.plane.start_component(f"dns-{name}", "dns", "--kubeconfig", str(cluster.plane.pki_dir / "proxy.kubeconfig"),
                      "--bind", f"127.0.0.1:{port}", "--metrics-bind", f"127.0.0.1:{metrics}", *args)

    def healthy():
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{metrics}/healthz", timeout=2).status == 200
        except OSError:
            return False
    cluster.wait(healthy, 30)
    return Resolver(port), metrics


@pytest.fixture(scope="module")
def resolvers(cluster):
    upstream, _ = start_dns(cluster, "upstream", "--cluster-domain", "upstream.test", "--upstream", "none")
    resolver, metrics = start_dns(cluster, "main", "--upstream", f"127.0.0.1:{upstream.port}")
    return resolver, upstream, metrics


def apply(cluster, *objects: dict) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))


def service(name: str, *, headless: bool = False, selector: dict | None = None) -> dict:
    spec = {"ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]}
    if selector is not None:
        spec["selector"] = selector
    if headless:
        spec["clusterIP"] = "None"
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


def test_a_clusterip_service_made_with_kubectl_resolves(cluster, resolvers):
    resolver, _, _ = resolvers
    apply(cluster, service("web", selector={"app": "web"}))
    cluster_ip = cluster.json("get", "svc", "web")["spec"]["clusterIP"]
    assert cluster.wait(lambda: resolver.records("web.default.svc.cluster.local") == [cluster_ip], 10)
    assert resolver.records("web.default.svc.cluster.local", tcp=True) == [cluster_ip]
    assert resolver.records("_http._tcp.web.default.svc.cluster.local", "SRV") == [
        "0 100 80 web.default.svc.cluster.local."]
    reverse = ".".join(reversed(cluster_ip.split("."))) + ".in-addr.arpa"
    assert resolver.records(reverse, "PTR") == ["web.default.svc.cluster.local."]
    aaaa = resolver.ask("web.default.svc.cluster.local", "AAAA")
    assert aaaa.rcode() == dns.rcode.NOERROR and aaaa.answer == []
    for missing in ("nope.default.svc.cluster.local", "web.default.svc.cluster.local.default.svc.cluster.local"):
        response = resolver.ask(missing)
        assert response.rcode() == dns.rcode.NXDOMAIN and response.flags & dns.flags.AA


def test_a_headless_service_resolves_to_its_ready_pods(cluster, resolvers):
    resolver, _, _ = resolvers
    apply(cluster, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "db"},
                    "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "db"}},
                             "template": {"metadata": {"labels": {"app": "db"}},
                                          "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}},
          service("db", headless=True, selector={"app": "db"}))
    cluster.kubectl("rollout", "status", "deploy/db", "--timeout=60s", timeout=90)

    def pod_ips():
        return sorted(p["status"]["podIP"] for p in cluster.pods("app=db") if p["status"].get("podIP"))
    ips = cluster.wait(lambda: len(pod_ips()) == 3 and pod_ips(), 30)
    assert cluster.wait(lambda: resolver.records("db.default.svc.cluster.local") == ips, 15)
    dashed = ips[0].replace(".", "-")
    assert resolver.records(f"{dashed}.db.default.svc.cluster.local") == [ips[0]]
    assert resolver.records(f"{dashed}.default.pod.cluster.local") == [ips[0]]
    cluster.kubectl("scale", "deploy/db", "--replicas=1")
    assert cluster.wait(lambda: len(resolver.records("db.default.svc.cluster.local")) == 1, 30)


def test_endpoint_hostnames_give_statefulset_style_names(cluster, resolvers):
    resolver, _, _ = resolvers
    apply(cluster, service("web-set", headless=True),
          {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": "web-set-1", "labels": {"kubernetes.io/service-name": "web-set"}},
           "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
           "endpoints": [{"addresses": ["10.244.9.10"], "hostname": "web-0", "conditions": {"ready": True}},
                         {"addresses": ["10.244.9.11"], "hostname": "web-1", "conditions": {"ready": True}},
                         {"addresses": ["10.244.9.12"], "hostname": "web-2", "conditions": {"ready": False}}]})
    assert cluster.wait(lambda: resolver.records("web-0.web-set.default.svc.cluster.local") == ["10.244.9.10"], 10)
    assert resolver.records("web-set.default.svc.cluster.local") == ["10.244.9.10", "10.244.9.11"]
    assert resolver.records("_http._tcp.web-set.default.svc.cluster.local", "SRV") == [
        "0 50 8080 web-0.web-set.default.svc.cluster.local.", "0 50 8080 web-1.web-set.default.svc.cluster.local."]
    assert resolver.ask("web-2.web-set.default.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN  # not ready
    assert resolver.records("11.9.244.10.in-addr.arpa", "PTR") == ["web-1.web-set.default.svc.cluster.local."]


def test_a_deleted_service_stops_resolving(cluster, resolvers):
    resolver, _, _ = resolvers
    apply(cluster, service("brief", selector={"app": "brief"}))
    assert cluster.wait(lambda: resolver.records("brief.default.svc.cluster.local"), 10)
    cluster.kubectl("delete", "svc", "brief")
    assert cluster.wait(lambda: resolver.ask("brief.default.svc.cluster.local").rcode() == dns.rcode.NXDOMAIN, 10)


def test_other_names_are_forwarded_and_an_upstream_without_one_refuses(cluster, resolvers):
    resolver, upstream, _ = resolvers
    cluster_ip = cluster.json("get", "svc", "web")["spec"]["clusterIP"]
    assert cluster.wait(lambda: resolver.records("web.default.svc.upstream.test") == [cluster_ip], 10)
    assert resolver.records("web.default.svc.upstream.test", tcp=True) == [cluster_ip]
    assert resolver.ask("example.org").rcode() == dns.rcode.REFUSED  # the upstream has nowhere to send it
    assert upstream.ask("web.default.svc.cluster.local").rcode() == dns.rcode.REFUSED


def test_malformed_packets_do_not_stop_the_server(cluster, resolvers):
    resolver, _, metrics = resolvers
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(3)
        sock.sendto(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web", ("127.0.0.1", resolver.port))
        reply, _ = sock.recvfrom(512)
        assert reply[:2] == b"\x12\x34" and reply[3] & 0xF == dns.rcode.FORMERR
        sock.sendto(b"\x00", ("127.0.0.1", resolver.port))  # a runt: dropped
    with socket.create_connection(("127.0.0.1", resolver.port), timeout=3) as conn:
        conn.sendall(b"\x00\x0f\xab\xcd\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03we")  # a cut-off name
        reply = conn.recv(512)
        assert reply[:4] == b"\x00\x0c\xab\xcd" and reply[5] & 0xF == dns.rcode.FORMERR
    assert resolver.records("web.default.svc.cluster.local")
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics}/metrics", timeout=2).read().decode()
    assert 'ketch_dns_responses_total{rcode="FORMERR"}' in text
    assert "ketch_dns_dropped_total 1.0" in text
    assert 'ketch_dns_requests_total{proto="tcp"}' in text


def test_busybox_nslookup_resolves_a_service(cluster, resolvers):
    resolver, _, _ = resolvers
    cluster_ip = cluster.json("get", "svc", "web")["spec"]["clusterIP"]
    result = subprocess.run(["busybox", "nslookup", "web.default.svc.cluster.local", f"127.0.0.1:{resolver.port}"],
                            capture_output=True, text=True, timeout=20)
    assert f"Address: {cluster_ip}" in result.stdout, result.stdout + result.stderr
