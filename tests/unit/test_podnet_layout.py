"""The pod network's pure parts: names, host-gw route sync, the masquerade table, and the
resolv.conf and hosts files a pod gets."""

from __future__ import annotations

import pytest

from netproxy.podnet import etc_hosts, resolv_conf
from netproxy.podnet.errors import InvalidNetworkConfig
from netproxy.podnet.layout import (
    cluster_networks,
    host_veth_name,
    is_pod_netns_of,
    masquerade_ruleset,
    netns_name,
    peer_routes,
    route_changes,
)

UID = "0f8b4c2e-3c1a-4d5e-9f00-123456789abc"


def test_names_follow_from_node_and_uid_and_fit_the_kernel():
    assert netns_name("node-1", UID) == netns_name("node-1", UID)
    assert netns_name("node-1", UID) != netns_name("node-2", UID)
    assert netns_name("node-1", UID) != netns_name("node-1", UID[:-1] + "d")
    assert len(host_veth_name(UID)) <= 15 and host_veth_name(UID).startswith("veth")
    assert is_pod_netns_of("node-1", netns_name("node-1", UID))


@pytest.mark.parametrize("node, name, ours", [
    ("h1", "h1-0123456789ab", True),
    ("h1", "h1-b-0123456789ab", False),      # a pod of node "h1-b"
    ("h1-b", "h1-b-0123456789ab", True),
    ("h1", "h1-0123456789a", False),         # too short to be a key
    ("h1", "h1-0123456789aG", False),
    ("h1", "h10-0123456789ab", False),
])
def test_a_namespace_belongs_to_exactly_one_node(node, name, ours):
    assert is_pod_netns_of(node, name) is ours


@pytest.mark.parametrize("node, uid", [("Node", UID), ("", UID), ("a/b", UID), ("n" * 201, UID),
                                       ("node", ""), ("node", "../etc"), ("node", "a b")])
def test_bad_names_are_typed_errors(node, uid):
    with pytest.raises(InvalidNetworkConfig):
        netns_name(node, uid)


def test_peer_routes_skip_this_node_and_reject_overlaps():
    own = "10.244.1.0/24"
    assert peer_routes(own, {"10.77.0.1": own, "10.77.0.2": "10.244.2.0/24", "10.77.0.3": "10.244.3.0/24"}) == {
        "10.244.2.0/24": "10.77.0.2", "10.244.3.0/24": "10.77.0.3"}
    for bad in ({"10.77.0.2": "10.244.0.0/16"}, {"10.77.0.2": "10.244.2.0/24", "10.77.0.3": "10.244.2.128/25"},
                {"10.77.0.x": "10.244.2.0/24"}, {"10.77.0.2": "10.244.2.1/24"}, {"10.77.0.2": "fd00::/64"}):
        with pytest.raises(InvalidNetworkConfig):
            peer_routes(own, bad)


@pytest.mark.parametrize("current, desired, stale, put", [
    ({}, {"10.244.2.0/24": "10.77.0.2"}, [], {"10.244.2.0/24": "10.77.0.2"}),
    ({"10.244.2.0/24": "10.77.0.2"}, {"10.244.2.0/24": "10.77.0.2"}, [], {}),
    ({"10.244.2.0/24": "10.77.0.2"}, {}, ["10.244.2.0/24"], {}),
    ({"10.244.2.0/24": "10.77.0.2"}, {"10.244.2.0/24": "10.77.0.5"}, [], {"10.244.2.0/24": "10.77.0.5"}),
    ({"10.244.2.0/24": "10.77.0.2", "10.244.3.0/24": "10.77.0.3"}, {"10.244.4.0/24": "10.77.0.4"},
     ["10.244.2.0/24", "10.244.3.0/24"], {"10.244.4.0/24": "10.77.0.4"}),
])
def test_route_changes_are_an_exact_sync(current, desired, stale, put):
    assert route_changes(current, desired) == (stale, put)


def test_the_masquerade_table_keeps_pod_to_pod_traffic_and_replaces_itself_atomically():
    inside = cluster_networks("10.244.1.0/24", {"10.244.2.0/24": "10.77.0.2"})
    assert inside == ["10.244.1.0/24", "10.244.2.0/24"]
    assert cluster_networks("10.244.1.0/24", {"10.244.2.0/24": "10.77.0.2"}, "10.244.0.0/16") == ["10.244.0.0/16"]
    text = masquerade_ruleset("10.244.1.0/24", inside)
    lines = text.splitlines()
    assert lines[:2] == ["add table ip ketch-podnet", "delete table ip ketch-podnet"]
    assert "elements = { 10.244.1.0/24, 10.244.2.0/24 }" in text
    assert "ip saddr 10.244.1.0/24 ip daddr != @cluster-networks masquerade" in text


def test_resolv_conf_is_the_kubelets_cluster_first():
    assert resolv_conf("10.96.0.10", "default") == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n")


def test_resolv_conf_limits_and_host_domains():
    text = resolv_conf(["10.96.0.10", "10.96.0.11", "10.96.0.12", "10.96.0.13"], "prod", "lab.example",
                       host_search=["corp.example.", "prod.svc.lab.example", ""] + [f"d{i}.example" for i in range(40)])
    lines = text.splitlines()
    search = lines[0].split()[1:]
    assert search[:4] == ["prod.svc.lab.example", "svc.lab.example", "lab.example", "corp.example"]
    assert len(search) == 32 and len(set(search)) == 32
    assert [line for line in lines if line.startswith("nameserver")] == [
        "nameserver 10.96.0.10", "nameserver 10.96.0.11", "nameserver 10.96.0.12"]


@pytest.mark.parametrize("dns", ["", [], "not-an-ip", ["10.96.0.10", "x"]])
def test_resolv_conf_needs_usable_cluster_dns(dns):
    with pytest.raises(InvalidNetworkConfig):
        resolv_conf(dns, "default")


def test_etc_hosts_for_a_plain_pod_and_a_statefulset_pod():
    plain = etc_hosts("10.244.1.5", "web-7d9f")
    assert plain.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert plain.endswith("fe00::2\tip6-allrouters\n10.244.1.5\tweb-7d9f\n")
    stateful = etc_hosts("10.244.1.6", "web-0", subdomain="web", namespace="shop")
    assert stateful.endswith("10.244.1.6\tweb-0.web.shop.svc.cluster.local\tweb-0\n")


def test_etc_hosts_host_aliases_one_name_per_line():
    text = etc_hosts("10.244.1.5", "app", host_aliases=[{"ip": "10.1.2.3", "hostnames": ["foo.local", "bar.local"]},
                                                        {"ip": "10.1.2.4"}])
    assert text.endswith("10.244.1.5\tapp\n\n# Entries added by HostAliases.\n"
                         "10.1.2.3\tfoo.local\n10.1.2.3\tbar.local\n")
    with pytest.raises(InvalidNetworkConfig):
        etc_hosts("10.244.1.5", "app", host_aliases=[{"ip": "nope", "hostnames": ["x"]}])
