"""The pod network on two lab hosts (network namespaces on a fabric bridge): real bridges, veths,
pod namespaces, host-gw routes and the masquerade table, with TCP servers inside the pods.

Each pod runs a tiny server that answers "<pod name> <address it saw the client come from>", so
a test sees both that a connection got through and whether it was masqueraded on the way.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from pyroute2 import IPRoute, netns

from netproxy.podnet import PodAddress, PodNetwork, PodNetworkError
from netproxy.podnet.layout import BRIDGE, NFT_TABLE, ROUTE_PROTOCOL, host_veth_name
from orchestrator.lab.hosts import Host, Lab, lab_namespaces

PORT = 8080
CIDRS = {"h1": "10.244.1.0/24", "h2": "10.244.2.0/24"}
SERVER = """
import socket, sys
name, port = sys.argv[1], int(sys.argv[2])
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("0.0.0.0", port))
server.listen(64)
while True:
    conn, (peer, _) = server.accept()
    conn.sendall(f"{name} {peer}\\n".encode())
    conn.close()
"""


@dataclass
class Node:
    host: Host
    network: PodNetwork
    pods: dict[str, PodAddress]


def ask(namespace: str, ip: str, port: int = PORT, timeout_s: float = 10.0) -> str:
    """Connect from inside `namespace` and return the server's line; retry while it starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        sock = netns.create_socket(namespace, socket.AF_INET, socket.SOCK_STREAM, flags=0)
        try:
            sock.settimeout(2.0)
            sock.connect((ip, port))
            return sock.makefile().readline().strip()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
        finally:
            sock.close()


def unreachable(namespace: str, ip: str, port: int = PORT) -> bool:
    sock = netns.create_socket(namespace, socket.AF_INET, socket.SOCK_STREAM, flags=0)
    try:
        sock.settimeout(2.0)
        sock.connect((ip, port))
        return False
    except OSError:
        return True
    finally:
        sock.close()


def links(namespace: str) -> set[str]:
    with IPRoute(netns=namespace, flags=0) as ipr:
        return {link.get("ifname") for link in ipr.link("dump")}


def our_routes(namespace: str) -> dict[str, str]:
    with IPRoute(netns=namespace, flags=0) as ipr:
        return {f"{r.get('dst')}/{r['dst_len']}": r.get("gateway")
                for r in ipr.route("dump", family=2, proto=ROUTE_PROTOCOL)}


def nft_tables(namespace: str) -> str:
    return subprocess.run(["ip", "netns", "exec", namespace, "nft", "list", "tables"], capture_output=True,
                          text=True, check=True).stdout


def start_server(lab: Lab, namespace: str, name: str, server_path) -> None:
    lab.start(Host(name, "", namespace), name, [sys.executable, str(server_path), name, str(PORT)])


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    work = tmp_path_factory.mktemp("podnet")
    server_path = work / "server.py"
    server_path.write_text(SERVER)
    lab = Lab.create(2, work)
    nodes: dict[str, Node] = {}
    try:
        if not lab.isolated:
            pytest.skip("the pod network needs root and network namespaces")
        for host in lab.hosts:
            network = PodNetwork(host.netns, CIDRS[host.name], work / f"state-{host.name}", netns=host.netns,
                                 cluster_cidr="10.244.0.0/16")
            nodes[host.name] = Node(host, network, {})
            network.ensure_node()
        peers = {lab.hosts[0].address: CIDRS["h1"], lab.hosts[1].address: CIDRS["h2"]}
        for node in nodes.values():
            node.network.set_peer_routes(peers)  # its own entry included: it is skipped
            for i in (1, 2):
                name = f"{node.host.name}-pod{i}"
                address = node.network.setup(f"uid-{name}", "default", name)
                node.pods[name] = address
                start_server(lab, address.netns_name, name, server_path)
        yield lab, nodes
    finally:
        for process in lab.processes:
            lab.stop(process)  # the pods' servers first: a namespace with a process in it outlives its removal
        for node in nodes.values():
            try:
                node.network.cleanup_node()
            except Exception as err:  # keep cleaning up; the lab's own close removes the rest
                print(f"cleanup of {node.host.name} failed: {err}")
        lab.close()


def all_pods(nodes: dict[str, Node]) -> dict[str, PodAddress]:
    return {name: address for node in nodes.values() for name, address in node.pods.items()}


def test_every_pod_has_its_own_address_from_its_node_cidr(cluster):
    _, nodes = cluster
    for node in nodes.values():
        for address in node.pods.values():
            assert address.ip.startswith(CIDRS[node.host.name].rsplit(".", 2)[0])
            assert address.gateway == CIDRS[node.host.name].replace("0/24", "1")
            with IPRoute(netns=address.netns_name, flags=0) as ipr:
                eth0 = ipr.link_lookup(ifname="eth0")[0]
                assert [(a.get("address"), a["prefixlen"]) for a in ipr.addr("dump", index=eth0, family=2)] == \
                    [(address.ip, 24)]
                assert [r.get("gateway") for r in ipr.route("dump", family=2) if r["dst_len"] == 0] == \
                    [address.gateway]
                assert ipr.link("get", index=ipr.link_lookup(ifname="lo")[0])[0]["state"] == "up"
    ips = [address.ip for address in all_pods(nodes).values()]
    assert len(set(ips)) == len(ips) == 4


def test_pods_reach_each_other_across_hosts_without_masquerade(cluster):
    _, nodes = cluster
    pods = all_pods(nodes)
    for source_name, source in pods.items():
        for target_name, target in pods.items():
            if source_name != target_name:
                assert ask(source.netns_name, target.ip) == f"{target_name} {source.ip}"


def test_a_pod_reaches_the_other_node_masqueraded_as_its_node(cluster, tmp_path):
    lab, nodes = cluster
    h1, h2 = lab.hosts
    server_path = tmp_path / "server.py"
    server_path.write_text(SERVER)
    server = lab.start(h2, "node-server", [sys.executable, str(server_path), "node-h2", str(PORT)])
    try:
        pod = nodes["h1"].pods["h1-pod1"]
        assert ask(pod.netns_name, h2.address) == f"node-h2 {h1.address}"
    finally:
        lab.stop(server)


def test_a_restarted_network_adopts_every_pod_and_never_repeats_an_address(cluster):
    lab, nodes = cluster
    node = nodes["h1"]
    again = PodNetwork(node.host.netns, CIDRS["h1"], node.network.state.dir, netns=node.host.netns,
                       cluster_cidr="10.244.0.0/16")
    again.ensure_node()
    assert {a.pod_uid: a.ip for a in again.list_pods()} == {a.pod_uid: a.ip for a in node.pods.values()}
    for name, address in node.pods.items():
        assert again.setup(address.pod_uid, "default", name) == address
    fresh = again.setup("uid-newcomer", "default", "newcomer")
    try:
        assert fresh.ip not in {a.ip for a in all_pods(nodes).values()}
        target = nodes["h2"].pods["h2-pod1"]
        assert ask(node.pods["h1-pod1"].netns_name, target.ip) == f"h2-pod1 {node.pods['h1-pod1'].ip}"
    finally:
        again.teardown("uid-newcomer")
    assert "uid-newcomer" not in {a.pod_uid for a in again.list_pods()}


def test_what_a_crashed_kubelet_left_is_repaired_or_removed(cluster):
    lab, nodes = cluster
    node = nodes["h2"]
    # a setup interrupted after the record was written: the namespace is missing
    half = node.network.setup("uid-half", "default", "half")
    subprocess.run(["ip", "netns", "del", half.netns_name], check=True)
    assert half in node.network.list_pods()
    assert node.network.setup("uid-half", "default", "half") == half  # repaired, same address
    assert half.netns_name in lab_namespaces()
    node.network.teardown("uid-half")
    # a namespace and a veth that no record owns (a lost state directory): removed at start
    lost_state = lab.work_dir / "lost-state"
    lost_state.mkdir()
    # (its round-robin starts far from the live pods: a duplicate address would make this test
    # about ARP caches, not about removal)
    (lost_state / "ipam.json").write_text(json.dumps({"version": 1, "cidr": CIDRS["h2"], "last": "10.244.2.199"}))
    stray = PodNetwork(node.host.netns, CIDRS["h2"], lost_state, netns=node.host.netns)
    lost = stray.setup("uid-lost", "default", "lost")
    assert lost.ip == "10.244.2.200"
    node.network.ensure_node()
    assert lost.netns_name not in lab_namespaces()
    assert host_veth_name("uid-lost") not in links(node.host.netns)
    for name, address in node.pods.items():  # the recorded pods are untouched
        assert ask(nodes["h1"].pods["h1-pod1"].netns_name, address.ip) == f"{name} {nodes['h1'].pods['h1-pod1'].ip}"


def test_peer_routes_follow_nodes_coming_and_going(cluster):
    lab, nodes = cluster
    h1, h2 = lab.hosts
    network = nodes["h1"].network
    source, target = nodes["h1"].pods["h1-pod1"], nodes["h2"].pods["h2-pod1"]
    assert our_routes(h1.netns) == {CIDRS["h2"]: h2.address}
    network.set_peer_routes({h2.address: CIDRS["h2"], "10.77.0.9": "10.244.9.0/24"})  # a third node joins
    assert our_routes(h1.netns) == {CIDRS["h2"]: h2.address, "10.244.9.0/24": "10.77.0.9"}
    network.set_peer_routes({"10.77.0.9": "10.244.9.0/24"})  # h2 leaves
    assert our_routes(h1.netns) == {"10.244.9.0/24": "10.77.0.9"}
    assert unreachable(source.netns_name, target.ip)
    network.set_peer_routes({h2.address: CIDRS["h2"]})  # h2 is back, the third node gone
    assert our_routes(h1.netns) == {CIDRS["h2"]: h2.address}
    assert ask(source.netns_name, target.ip) == f"h2-pod1 {source.ip}"


def test_a_service_like_dnat_on_the_node_works_between_pods_of_one_bridge(cluster):
    """What the proxy will rely on: a DNAT in the node's namespace to a pod on the same bridge
    answers both another pod there (bridge-nf-call-iptables lets conntrack undo the DNAT on the
    bridged reply) and the endpoint itself (hairpin, masqueraded as kube-proxy does)."""
    lab, nodes = cluster
    h1 = lab.hosts[0]
    endpoint, other = nodes["h1"].pods["h1-pod1"], nodes["h1"].pods["h1-pod2"]
    table = f"ketchtest{lab.prefix[2:]}"
    rules = (f"table ip {table} {{\n"
             f"  chain pre {{ type nat hook prerouting priority dstnat; policy accept;\n"
             f"    ip daddr 10.96.0.50 tcp dport 80 dnat to {endpoint.ip}:{PORT}; }}\n"
             f"  chain post {{ type nat hook postrouting priority srcnat; policy accept;\n"
             f"    ip saddr {endpoint.ip} ip daddr {endpoint.ip} masquerade; }}\n"
             f"}}\n")
    lab.run_in(h1, "nft", "-f", "-", input=rules)
    try:
        assert ask(other.netns_name, "10.96.0.50", 80) == f"h1-pod1 {other.ip}"
        assert ask(endpoint.netns_name, "10.96.0.50", 80) == f"h1-pod1 {endpoint.gateway}"
    finally:
        lab.run_in(h1, "nft", "delete", "table", "ip", table)


def test_pods_set_up_and_torn_down_from_many_threads_at_once(cluster):
    """As the kubelet does (one worker thread per pod): every pod gets its own address and a
    working namespace; two calls for one pod give one result."""
    lab, nodes = cluster
    network = nodes["h1"].network
    uids = [f"uid-burst-{i}" for i in range(8)] + ["uid-burst-0"]
    with ThreadPoolExecutor(max_workers=9) as pool:
        addresses = list(pool.map(lambda uid: network.setup(uid, "default", uid), uids))
    assert addresses[0] == addresses[-1]
    assert len({a.ip for a in addresses[:-1]}) == 8
    assert not {a.ip for a in addresses} & {a.ip for a in nodes["h1"].pods.values()}
    target = nodes["h2"].pods["h2-pod1"]
    for address in addresses[:3]:
        assert ask(address.netns_name, target.ip) == f"h2-pod1 {address.ip}"
    with ThreadPoolExecutor(max_workers=9) as pool:
        list(pool.map(network.teardown, uids))
    assert not {a.netns_name for a in addresses} & set(lab_namespaces())
    assert {a.pod_uid for a in network.list_pods()} == {a.pod_uid for a in nodes["h1"].pods.values()}


def test_teardown_and_cleanup_leave_nothing(cluster):
    lab, nodes = cluster
    for node in nodes.values():
        for address in node.pods.values():
            node.network.teardown(address.pod_uid)
            node.network.teardown(address.pod_uid)  # idempotent
            assert address.netns_name not in lab_namespaces()
            assert host_veth_name(address.pod_uid) not in links(node.host.netns)
        assert node.network.list_pods() == []
        assert NFT_TABLE in nft_tables(node.host.netns)
        node.network.cleanup_node()
        assert BRIDGE not in links(node.host.netns)
        assert our_routes(node.host.netns) == {}
        assert NFT_TABLE not in nft_tables(node.host.netns)
        assert not any(name.startswith(node.host.netns + "-") for name in lab_namespaces())


def test_a_failed_setup_leaves_no_namespace_and_a_typed_error(cluster, tmp_path):
    lab, _ = cluster
    ghost = f"{lab.prefix}-ghost"
    network = PodNetwork(ghost, "10.244.7.0/24", tmp_path, netns=f"{ghost}-missing")
    with pytest.raises(PodNetworkError, match="cannot open network namespace"):
        network.setup("uid-ghost", "default", "ghost")
    assert not any(name.startswith(ghost) for name in lab_namespaces())
    assert [a.pod_uid for a in network.list_pods()] == ["uid-ghost"]  # recorded until torn down
    network.teardown("uid-ghost")
    assert network.list_pods() == []
