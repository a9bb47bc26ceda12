"""The proxy's rules on real nftables and iptables, in lab namespaces (root only).

Three lab hosts: h1 and h2 are nodes, each with a bridge (cni0) and "pods" (namespaces on veths,
host-gw routes between the nodes); h3 is a host outside the cluster. Backends in pods p1, p2 (on
h1) and p3 (on h2) answer with their names; c2 (on h2) is a client pod. Rules are built from
Service and EndpointSlice objects by the proxy's own state and modes, as `ketch proxy` does, and
applied in both nodes' namespaces. No API server is involved here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest

from netproxy.conntrack import cleanup_targets, delete_stale_udp
from netproxy.host import ensure_service_route, sysctls_for, write_sysctls
from netproxy.modes import IptablesMode, NftMode
from netproxy.nft import list_table
from netproxy.ruleset import TABLE, chain_name
from netproxy.state import ProxyState
from orchestrator.lab.hosts import Lab

PORT = 8080
PODS = {"p1": ("h1", "10.244.1.2"), "p2": ("h1", "10.244.1.3"), "p3": ("h2", "10.244.2.2"),
        "c2": ("h2", "10.244.2.3")}
NODE_POD_CIDR = {"h1": "10.244.1.0/24", "h2": "10.244.2.0/24"}
CLUSTER_CIDR = "10.244.0.0/16"


def sh(*argv: str, input: str | None = None) -> str:
    return subprocess.run(argv, input=input, capture_output=True, text=True, timeout=60, check=True).stdout


class Topology:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.hosts = {h.name: h for h in lab.hosts}
        self.pod_ns = {name: f"{lab.prefix}-{name}" for name in PODS}
        self.servers: list[subprocess.Popen] = []

    def build(self) -> None:
        for node, cidr in NODE_POD_CIDR.items():
            ns = self.hosts[node].netns
            gateway = cidr.replace(".0/24", ".1")
            sh("ip", "-n", ns, "link", "add", "cni0", "type", "bridge")
            sh("ip", "-n", ns, "addr", "add", f"{gateway}/24", "dev", "cni0")
            sh("ip", "-n", ns, "link", "set", "cni0", "up")
            other = "h2" if node == "h1" else "h1"
            sh("ip", "-n", ns, "route", "add", NODE_POD_CIDR[other], "via", self.hosts[other].address)
        for pod, (node, ip) in PODS.items():
            ns, host_ns = self.pod_ns[pod], self.hosts[node].netns
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", host_ns, "link", "add", f"v{pod}", "type", "veth", "peer", "name", "eth0", "netns", ns)
            sh("ip", "-n", host_ns, "link", "set", f"v{pod}", "master", "cni0", "up")
            # With bridge-nf-call-iptables a pod's packet to its own Service is DNATed on the bridge
            # and must leave by the port it came in: the port needs hairpin mode (kubelet's hairpin-veth).
            sh("ip", "-n", host_ns, "link", "set", f"v{pod}", "type", "bridge_slave", "hairpin", "on")
            sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", ip.rsplit(".", 1)[0] + ".1")
            if pod != "c2":
                self.servers.append(subprocess.Popen(
                    ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.proxy_backend", ip, str(PORT), pod],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for node in NODE_POD_CIDR:  # what `ketch proxy` does before its first sync
            write_sysctls(sysctls_for("nftables"), self.hosts[node].netns)
            ensure_service_route("10.96.0.0/16", self.hosts[node].address, self.hosts[node].netns)
        for pod in ("p1", "p2", "p3"):
            self.wait_serving(pod)

    def wait_serving(self, pod: str) -> None:
        deadline = time.monotonic() + 20
        while self.tcp("c2" if pod != "c2" else "p1", PODS[pod][1], PORT, 1) != [pod]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"backend {pod} does not answer")
            time.sleep(0.2)

    def ns(self, where: str) -> str:
        return self.pod_ns[where] if where in self.pod_ns else self.hosts[where].netns

    def tcp(self, where: str, address: str, port: int, count: int, timeout_s: float = 3.0) -> list[str]:
        return json.loads(sh("ip", "netns", "exec", self.ns(where), sys.executable, "-m", "tests.proxy_client",
                             "tcp", address, str(port), str(count), str(timeout_s)))

    def close(self) -> None:
        for server in self.servers:
            server.kill()
            server.wait()
        for ns in self.pod_ns.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture(scope="module")
def topo(tmp_path_factory):
    lab = Lab.create(3, tmp_path_factory.mktemp("proxy-lab"))
    topology = Topology(lab)
    try:
        topology.build()
        yield topology
    finally:
        topology.close()
        lab.close()


# --- objects and rules ---------------------------------------------------------------------------

def service(name: str, ip: str, protocol: str = "TCP", node_port: int | None = None, **spec) -> dict:
    port = {"name": "p", "port": 80, "protocol": protocol, **({"nodePort": node_port} if node_port else {})}
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"type": "NodePort" if node_port else "ClusterIP", "clusterIP": ip, "ports": [port], **spec}}


def endpoint_slice(name: str, pods: list[str], protocol: str = "TCP", ready: bool = True) -> dict:
    return {"metadata": {"namespace": "default", "name": f"{name}-1", "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "p", "port": PORT, "protocol": protocol}],
            "endpoints": [{"addresses": [PODS[p][1]], "nodeName": PODS[p][0], "conditions": {"ready": ready}}
                          for p in pods]}


class NodeRules:
    """One node's proxy without the API: the same state and mode `ketch proxy` uses."""

    def __init__(self, topo: Topology, node: str, mode: str = "nftables") -> None:
        host = topo.hosts[node]
        self.netns = host.netns
        self.state = ProxyState(node, CLUSTER_CIDR)
        self.state.node_changed({"spec": {"podCIDR": NODE_POD_CIDR[node]},
                                 "status": {"addresses": [{"type": "InternalIP", "address": host.address}]}})
        self.mode = NftMode(host.netns) if mode == "nftables" else IptablesMode(host.netns, "nft")
        self.udp_plans: dict = {}

    def apply(self, *objects: dict, full: bool = False, deleted: bool = False):
        for obj in objects:
            record = self.state.slice_changed if "endpoints" in obj else self.state.service_changed
            assert record(obj, time.time(), deleted) is None
        taken = self.state.take()
        report = self.mode.sync(taken, self.state.node, time.monotonic(), full)
        new = {p.port.id: p for s in taken.dirty for p in taken.plans.get(s, ()) if p.port.protocol == "udp"}
        old = {k: self.udp_plans.pop(k) for k in list(self.udp_plans) if self.udp_plans[k].port.service_key
               in taken.dirty}
        self.udp_plans.update(new)
        deleted_entries = delete_stale_udp(cleanup_targets(old, new), self.netns)
        return report, deleted_entries


@pytest.fixture
def nodes(topo):
    rules = {node: NodeRules(topo, node) for node in NODE_POD_CIDR}
    yield rules
    for node in rules.values():
        NftMode(node.netns).cleanup()


def apply_everywhere(nodes, *objects, **kw) -> None:
    for node in nodes.values():
        node.apply(*objects, **kw)


def spread(answers: list[str]) -> Counter:
    return Counter(answers)


# --- tests ---------------------------------------------------------------------------------------

def test_cluster_ip_from_the_node_and_from_another_hosts_pod_reaches_every_backend(topo, nodes):
    apply_everywhere(nodes, service("web", "10.96.0.20"), endpoint_slice("web", ["p1", "p2", "p3"]))
    for where in ("h1", "c2"):
        answers = spread(topo.tcp(where, "10.96.0.20", 80, 150))
        assert set(answers) == {"p1", "p2", "p3"}, (where, answers)
        assert min(answers.values()) >= 20, (where, answers)  # 1/3 each: 50 expected, 20 is far out in the tail
    hairpin = spread(topo.tcp("p1", "10.96.0.20", 80, 60))  # a pod reaching its own service
    assert set(hairpin) == {"p1", "p2", "p3"}, hairpin


def test_a_service_without_endpoints_refuses_at_once(topo, nodes):
    apply_everywhere(nodes, service("empty", "10.96.0.21"), endpoint_slice("empty", []))
    assert topo.tcp("h1", "10.96.0.21", 80, 3) == ["refused"] * 3
    assert topo.tcp("c2", "10.96.0.21", 80, 3) == ["refused"] * 3
    apply_everywhere(nodes, endpoint_slice("empty", ["p3"], ready=False))  # not ready is no endpoint either
    assert topo.tcp("c2", "10.96.0.21", 80, 3) == ["refused"] * 3


def test_node_port_from_another_host_and_external_traffic_policy_local(topo, nodes):
    apply_everywhere(nodes, service("np", "10.96.0.22", node_port=30080), endpoint_slice("np", ["p1", "p2", "p3"]),
                     service("loc", "10.96.0.23", node_port=30081, externalTrafficPolicy="Local"),
                     endpoint_slice("loc", ["p1", "p2", "p3"]),
                     service("only1", "10.96.0.24", node_port=30082, externalTrafficPolicy="Local"),
                     endpoint_slice("only1", ["p1"]))
    h1, h2 = topo.hosts["h1"].address, topo.hosts["h2"].address
    assert set(topo.tcp("h3", h1, 30080, 60)) == {"p1", "p2", "p3"}
    assert set(topo.tcp("h2", h1, 30080, 60)) == {"p1", "p2", "p3"}
    assert set(topo.tcp("h3", h1, 30081, 40)) == {"p1", "p2"}  # only h1's own endpoints
    assert set(topo.tcp("h3", h2, 30081, 20)) == {"p3"}
    assert topo.tcp("h3", h2, 30082, 2, timeout_s=1.0) == ["timeout"] * 2  # no local endpoint on h2: dropped
    assert set(topo.tcp("h3", h1, 30082, 5)) == {"p1"}


def test_session_affinity_pins_each_client(topo, nodes):
    apply_everywhere(nodes, service("sticky", "10.96.0.25", sessionAffinity="ClientIP"),
                     endpoint_slice("sticky", ["p1", "p2", "p3"]))
    for where in ("c2", "h1"):
        assert len(set(topo.tcp(where, "10.96.0.25", 80, 20))) == 1, where


def test_udp_flows_move_off_a_removed_endpoint(topo, nodes):
    apply_everywhere(nodes, service("dns", "10.96.0.26", "UDP"), endpoint_slice("dns", ["p1"], "UDP"))
    client = subprocess.Popen(["ip", "netns", "exec", topo.ns("c2"), sys.executable, "-m", "tests.proxy_client",
                               "udp-session", "10.96.0.26", "80"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        def ask() -> str:
            client.stdin.write("q\n")
            client.stdin.flush()
            return client.stdout.readline().strip()
        assert ask() == "p1 q"
        # p1 leaves the service but keeps running: only the conntrack entry still points at it.
        _, deleted = nodes["h2"].apply(endpoint_slice("dns", ["p2"], "UDP"))
        nodes["h1"].apply(endpoint_slice("dns", ["p2"], "UDP"))
        assert deleted == 1
        assert ask() == "p2 q"  # the same socket, the same 5-tuple: a new flow, to p2
    finally:
        client.kill()
        client.wait()


def _handles(netns: str, chain: str) -> list[str]:
    listing = sh("ip", "netns", "exec", netns, "nft", "-a", "list", "chain", "ip", TABLE, chain)
    return [line.rsplit("# handle", 1)[1].strip() for line in listing.splitlines() if "# handle" in line]


def test_partial_sync_rewrites_only_the_changed_service(topo, nodes):
    node = nodes["h1"]
    node.apply(service("a", "10.96.0.30"), endpoint_slice("a", ["p1", "p2"]),
               service("b", "10.96.0.31"), endpoint_slice("b", ["p1", "p2"]))
    chain_a, chain_b = chain_name("service", "default/a/tcp/p"), chain_name("service", "default/b/tcp/p")
    before_a, before_b = _handles(node.netns, chain_a), _handles(node.netns, chain_b)
    report, _ = node.apply(endpoint_slice("a", ["p1"]))
    assert not report.full
    assert _handles(node.netns, chain_b) == before_b  # b's rules are the very same objects in the kernel
    assert _handles(node.netns, chain_a) != before_a
    assert set(topo.tcp("h1", "10.96.0.30", 80, 20)) == {"p1"}
    assert set(topo.tcp("h1", "10.96.0.31", 80, 40)) == {"p1", "p2"}


def test_a_full_sync_repairs_drift_made_by_hand(topo, nodes):
    node = nodes["h1"]
    node.apply(service("fix", "10.96.0.32"), endpoint_slice("fix", ["p1", "p2"]))
    ns = node.netns
    sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=(
        f"flush chain ip {TABLE} {chain_name('service', 'default/fix/tcp/p')}\n"
        f"add chain ip {TABLE} junk\n"))
    assert set(topo.tcp("h1", "10.96.0.32", 80, 2, timeout_s=1.0)) - {"p1", "p2"}  # broken by hand
    report, _ = node.apply(full=True)  # what a restarted proxy does first
    assert report.full
    assert "junk" not in list_table(TABLE, ns)
    assert set(topo.tcp("h1", "10.96.0.32", 80, 40)) == {"p1", "p2"}


def test_iptables_mode_does_the_same_basics(topo, nodes):
    for node in nodes.values():
        NftMode(node.netns).cleanup()
    rules = {name: NodeRules(topo, name, "iptables") for name in NODE_POD_CIDR}
    try:
        apply_everywhere(rules, service("web", "10.96.0.40", node_port=30090),
                         endpoint_slice("web", ["p1", "p2", "p3"]), service("empty", "10.96.0.41"),
                         endpoint_slice("empty", []))
        for where in ("h1", "c2", "p1"):
            assert set(topo.tcp(where, "10.96.0.40", 80, 90)) == {"p1", "p2", "p3"}, where
        assert set(topo.tcp("h3", topo.hosts["h1"].address, 30090, 60)) == {"p1", "p2", "p3"}
        assert topo.tcp("c2", "10.96.0.41", 80, 2) == ["refused"] * 2
        assert topo.tcp("h1", "10.96.0.41", 80, 2) == ["refused"] * 2
        rules["h2"].apply(endpoint_slice("web", ["p3"]))  # a partial restore
        assert set(topo.tcp("c2", "10.96.0.40", 80, 10)) == {"p3"}
    finally:
        for node in rules.values():
            assert node.mode.cleanup()
        assert "KUBE-" not in sh("ip", "netns", "exec", rules["h1"].netns, "iptables-nft-save")
