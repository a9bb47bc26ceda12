"""Services and EndpointSlices as the proxy reads them."""

from __future__ import annotations

import pytest

from netproxy.model import (
    BadObject,
    Endpoint,
    merge_slices,
    node_facts,
    service_ports,
    slice_endpoints,
    slice_service_key,
    trigger_time,
)


def service(spec: dict, status: dict | None = None) -> dict:
    return {"metadata": {"namespace": "default", "name": "web"}, "spec": spec, "status": status or {}}


def test_a_nodeport_service_with_affinity_and_policies():
    [p] = service_ports(service({
        "type": "LoadBalancer", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "externalIPs": ["192.0.2.1"],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP", "nodePort": 30080, "targetPort": 8080}],
        "sessionAffinity": "ClientIP", "externalTrafficPolicy": "Local", "internalTrafficPolicy": "Local"},
        {"loadBalancer": {"ingress": [{"ip": "192.0.2.9"}, {"hostname": "lb.example"}]}}))
    assert (p.id, p.port, p.node_port, p.cluster_ips, p.external_ips) == (
        "default/web/tcp/http", 80, 30080, ("10.96.0.20",), ("192.0.2.1", "192.0.2.9"))
    assert (p.affinity_timeout_s, p.external_local, p.internal_local) == (10800, True, True)


@pytest.mark.parametrize("spec", [
    {"clusterIP": "None", "ports": [{"port": 80}]},  # headless
    {"type": "ExternalName", "externalName": "example.com"},
    {"clusterIP": "fd00::1", "clusterIPs": ["fd00::1"], "ports": [{"port": 80}]},  # IPv6 only
])
def test_services_without_rules(spec):
    assert service_ports(service(spec)) == ()


def test_a_cluster_ip_service_ignores_a_stray_node_port_and_defaults_tcp():
    [p] = service_ports(service({"clusterIP": "10.96.0.1", "ports": [{"port": 53, "nodePort": 30053}]}))
    assert (p.protocol, p.node_port, p.affinity_timeout_s) == ("tcp", 0, 0)


@pytest.mark.parametrize("spec, message", [
    ({"clusterIP": "10.96.0.1", "ports": [{"port": 0}]}, "not a port number"),
    ({"clusterIP": "10.96.0.1", "ports": [{"port": 80, "protocol": "ICMP"}]}, "unknown protocol"),
    ({"clusterIP": "10.96.0.1", "ports": ["80"]}, "not an object"),
    ({"clusterIP": "10.96.0.1", "ports": [{"port": 80}], "sessionAffinity": "ClientIP",
      "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 0}}}, "timeoutSeconds"),
])
def test_bad_services_are_typed_errors(spec, message):
    with pytest.raises(BadObject, match=message):
        service_ports(service(spec))


def endpoint_slice(endpoints, ports=None, name="web-a") -> dict:
    return {"metadata": {"namespace": "default", "name": name, "labels": {"kubernetes.io/service-name": "web"},
                         "annotations": {"endpoints.kubernetes.io/last-change-trigger-time": "2024-01-01T00:00:00Z"}},
            "addressType": "IPv4", "endpoints": endpoints,
            "ports": ports if ports is not None else [{"name": "http", "port": 8080, "protocol": "TCP"}]}


def test_slice_conditions_follow_the_api_defaults():
    es = endpoint_slice([
        {"addresses": ["10.244.1.2"], "nodeName": "n1"},  # no conditions: ready and serving
        {"addresses": ["10.244.1.3", "10.244.1.4"], "conditions": {"ready": False}, "nodeName": "n1"},
        {"addresses": ["10.244.2.2"], "conditions": {"ready": False, "serving": True, "terminating": True}},
        {"addresses": []},
    ])
    assert slice_service_key(es) == "default/web" and trigger_time(es) == "2024-01-01T00:00:00Z"
    assert slice_endpoints(es) == {("http", "tcp"): (
        Endpoint("10.244.1.2", 8080, "n1", True, True, False),
        Endpoint("10.244.1.3", 8080, "n1", False, False, False),
        Endpoint("10.244.2.2", 8080, "", False, True, True))}


def test_slices_merge_one_endpoint_per_address_and_port_with_ready_winning():
    a = slice_endpoints(endpoint_slice([{"addresses": ["10.244.1.9"], "conditions": {"ready": False}},
                                        {"addresses": ["10.244.1.2"]}]))
    b = slice_endpoints(endpoint_slice([{"addresses": ["10.244.1.9"]}], name="web-b"))
    merged = merge_slices([a, b])[("http", "tcp")]
    assert [(e.ip, e.ready) for e in merged] == [("10.244.1.2", True), ("10.244.1.9", True)]


def test_bad_slices_and_other_families():
    with pytest.raises(BadObject):
        slice_endpoints(endpoint_slice([{"addresses": ["not-an-ip"]}]))
    assert slice_endpoints({**endpoint_slice([{"addresses": ["fd00::2"]}]), "addressType": "IPv6"}) == {}
    assert slice_service_key({"metadata": {"namespace": "default", "name": "x"}}) is None


def test_node_facts_take_internal_and_external_ipv4_addresses():
    node = {"spec": {"podCIDR": "10.244.1.0/24"}, "status": {"addresses": [
        {"type": "InternalIP", "address": "10.77.0.1"}, {"type": "Hostname", "address": "h1"},
        {"type": "ExternalIP", "address": "192.0.2.7"}, {"type": "InternalIP", "address": "fd00::1"}]}}
    facts = node_facts(node, "h1", "10.244.0.0/16")
    assert (facts.addresses, facts.pod_cidr, facts.cluster_cidr) == (("10.77.0.1", "192.0.2.7"), "10.244.1.0/24",
                                                                     "10.244.0.0/16")
    assert node_facts(None, "h1").addresses == ()
