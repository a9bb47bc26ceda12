"""The ruleset builder: tables of what it builds, and a packet walk through what it built.

The property: for any service port, address (ClusterIP, external IP, NodePort) and source (a pod
on this node, a pod elsewhere, the node itself, a host outside the cluster), the first packet of a
new flow lands on a usable endpoint of that service (one on this node for the Local policies,
where kube-proxy applies them), is rejected when the service has no endpoint, or dropped when it
has endpoints only elsewhere; hairpin and off-cluster traffic is masqueraded; every usable endpoint
is reached with equal probability; ClientIP affinity sends the client back to the same endpoint.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netproxy.model import Endpoint, NodeFacts, ServicePort
from netproxy.policy import plan_port
from netproxy.ruleset import (
    NO_ENDPOINT_NODEPORTS,
    NO_ENDPOINT_SERVICES,
    REJECT_CHAIN,
    SERVICE_IPS,
    SERVICE_NODEPORTS,
    Drop,
    Goto,
    build_ruleset,
    chain_name,
    diff,
)
from tests.unit.nft_walk import Packet, walk

NODE = NodeFacts("n1", ("10.77.0.1",), "10.244.0.0/16", "10.244.1.0/24")
SOURCES = {  # kind -> (address, made on the node?)
    "local-pod": ("10.244.1.50", False),
    "remote-pod": ("10.244.2.50", False),
    "node": ("10.77.0.1", True),
    "outside": ("10.77.0.9", False),
}


def port(name="web", cluster_ip="10.96.0.10", **kw) -> ServicePort:
    return ServicePort("default", name, "", kw.pop("protocol", "tcp"), kw.pop("number", 80), (cluster_ip,), **kw)


def ruleset_of(*pairs):
    return build_ruleset([plan_port(p, tuple(eps), NODE.name) for p, eps in pairs], NODE)


def outcomes(ruleset, source, daddr, dport, protocol="tcp"):
    saddr, from_node = SOURCES.get(source, (source, False))
    return walk(ruleset, NODE.addresses, Packet(saddr, daddr, protocol, dport, from_node))


def landed(results) -> dict:
    """endpoint (ip, port) or verdict -> probability."""
    out: dict = {}
    for o in results:
        key = o.dnat if o.verdict == "accept" and o.dnat else o.verdict
        out[key] = out.get(key, 0) + o.probability
    return out


A, B, C = Endpoint("10.244.1.2", 8080, "n1"), Endpoint("10.244.2.2", 8080, "n2"), Endpoint("10.244.2.3", 8080, "n2")


# --- tables -----------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoints, expected", [
    ((A, B), {SERVICE_IPS: Goto(chain_name("service", "default/web/tcp/"))}),
    ((), {NO_ENDPOINT_SERVICES: Goto(REJECT_CHAIN)}),
    ((Endpoint("10.244.1.2", 80, "n1", ready=False, serving=False),), {NO_ENDPOINT_SERVICES: Goto(REJECT_CHAIN)}),
    ((Endpoint("10.244.1.2", 80, "n1", ready=False, serving=True, terminating=True),),
     {SERVICE_IPS: Goto(chain_name("service", "default/web/tcp/"))}),
])
def test_cluster_ip_element_by_endpoints(endpoints, expected):
    rs = ruleset_of((port(), endpoints))
    found = {m: rs.elements[m][("10.96.0.10", "tcp", 80)] for m in (SERVICE_IPS, NO_ENDPOINT_SERVICES)
             if ("10.96.0.10", "tcp", 80) in rs.elements[m]}
    assert found == expected


@pytest.mark.parametrize("kw, endpoints, nodeport_verdict", [
    ({"node_port": 30080}, (A, B), Goto(chain_name("external", "default/web/tcp/"))),
    ({"node_port": 30080, "external_local": True}, (A, B), Goto(chain_name("external", "default/web/tcp/"))),
    ({"node_port": 30080, "external_local": True}, (B, C), Drop()),  # endpoints only elsewhere
    ({"node_port": 30080}, (), Goto(REJECT_CHAIN)),
])
def test_nodeport_element(kw, endpoints, nodeport_verdict):
    rs = ruleset_of((port(**kw), endpoints))
    both = {**rs.elements[SERVICE_NODEPORTS], **rs.elements[NO_ENDPOINT_NODEPORTS]}
    assert both == {("tcp", 30080): nodeport_verdict}


def test_service_chain_spreads_over_ready_endpoints_and_marks_off_cluster_traffic():
    rs = ruleset_of((port(), (A, B, Endpoint("10.244.2.9", 8080, "n2", ready=False))))
    chain = rs.chains[chain_name("service", "default/web/tcp/")]
    from netproxy.nft import rule_text
    texts = [rule_text(r) for r in chain.rules]
    assert texts[0] == "ip daddr 10.96.0.10 tcp dport 80 ip saddr != 10.244.0.0/16 jump mark-for-masquerade"
    assert texts[1].startswith("numgen random mod 2 == 0 goto endpoint-")  # 1/2, then the rest: 1/2
    assert texts[2].startswith("goto endpoint-") and len(texts) == 3
    assert "10.244.2.9" not in " ".join(texts)
    endpoint = rs.chains[chain_name("endpoint", "default/web/tcp/__10.244.1.2/8080")]
    assert [rule_text(r) for r in endpoint.rules] == ["ip saddr 10.244.1.2 jump mark-for-masquerade",
                                                      "meta l4proto tcp dnat to 10.244.1.2:8080"]


def test_affinity_adds_a_set_per_endpoint_and_checks_it_first():
    rs = ruleset_of((port(affinity_timeout_s=60), (A, B)))
    assert sorted(s.timeout_s for s in rs.sets.values()) == [60, 60]
    chain = rs.chains[chain_name("service", "default/web/tcp/")]
    assert [type(r.action).__name__ for r in chain.rules] == ["Jump", "Goto", "Goto", "Goto", "Goto"]


def test_two_services_claiming_one_address_keep_the_first_and_report_the_second():
    rs = ruleset_of((port("a"), (A,)), (port("b"), (B,)))
    assert rs.elements[SERVICE_IPS][("10.96.0.10", "tcp", 80)] == Goto(chain_name("service", "default/a/tcp/"))
    assert len(rs.conflicts) == 1 and "default/b" in rs.conflicts[0]


def test_diff_of_one_endpoint_change_touches_only_that_service():
    before = ruleset_of((port("a", "10.96.0.1"), (A, B)), (port("b", "10.96.0.2"), (A, B)))
    after = ruleset_of((port("a", "10.96.0.1"), (A,)), (port("b", "10.96.0.2"), (A, B)))
    changes = diff(before, after)
    assert [c.name for c in changes.write_chains] == [chain_name("service", "default/a/tcp/")]
    assert changes.gone_chains == [chain_name("endpoint", "default/a/tcp/__10.244.2.2/8080")]
    assert not any(changes.add_elements.values()) and not any(changes.delete_elements.values())
    assert diff(after, after).empty()


# --- walks ------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, masquerade", [("local-pod", False), ("remote-pod", False), ("node", True),
                                                ("outside", True)])
def test_cluster_ip_from_each_source_lands_evenly_on_ready_endpoints(source, masquerade):
    rs = ruleset_of((port(), (A, B, C)))
    results = outcomes(rs, source, "10.96.0.10", 80)
    assert landed(results) == {(e.ip, e.port): Fraction(1, 3) for e in (A, B, C)}
    assert {o.masquerade for o in results} == {masquerade}


def test_no_endpoints_rejected_not_blackholed_and_other_addresses_untouched():
    rs = ruleset_of((port(), ()))
    assert landed(outcomes(rs, "node", "10.96.0.10", 80)) == {"reject": 1}
    assert landed(outcomes(rs, "local-pod", "10.96.0.10", 80)) == {"reject": 1}
    assert landed(outcomes(rs, "local-pod", "10.96.0.10", 81)) == {"accept": 1}
    assert landed(outcomes(rs, "local-pod", "10.96.0.10", 80, "udp")) == {"accept": 1}


def test_hairpin_is_masqueraded():
    rs = ruleset_of((port(), (A,)))
    [result] = outcomes(rs, A.ip, "10.96.0.10", 80)
    assert result.dnat == (A.ip, A.port) and result.masquerade


def test_nodeport_on_node_address_only_and_external_local_keeps_outside_traffic_local():
    rs = ruleset_of((port(node_port=30080, external_local=True), (A, B, C)))
    assert landed(outcomes(rs, "outside", "10.77.0.1", 30080)) == {(A.ip, A.port): 1}
    assert not outcomes(rs, "outside", "10.77.0.1", 30080)[0].masquerade  # client address kept
    assert len(landed(outcomes(rs, "remote-pod", "10.77.0.1", 30080))) == 3  # pods short-circuit to the cluster
    assert landed(outcomes(rs, "outside", "10.77.0.2", 30080)) == {"accept": 1}  # not this node's address
    assert landed(outcomes(rs, "node", "127.0.0.1", 30080)) == {"accept": 1}  # loopback excluded, as kube-proxy


def test_session_affinity_pins_the_second_connection():
    rs = ruleset_of((port(affinity_timeout_s=30), (A, B, C)))
    saddr, _ = SOURCES["outside"]
    for first in outcomes(rs, "outside", "10.96.0.10", 80):
        again = walk(rs, NODE.addresses, Packet(saddr, "10.96.0.10", "tcp", 80, False), dict(first.sets))
        assert landed(again) == {first.dnat: 1}


# --- the property -----------------------------------------------------------------------------

def usable(endpoints):
    """The model's own reading of EndpointSlice conditions: ready ones, else serving+terminating."""
    ready = [e for e in endpoints if e.ready]
    return ready or [e for e in endpoints if e.serving and e.terminating]


def expected(p: ServicePort, endpoints, destination: str, source: str):
    """(set of endpoints it may land on, or a verdict), as a user of Kubernetes expects."""
    everywhere = usable(endpoints)
    here = usable([e for e in endpoints if e.node_name == NODE.name])
    if destination == "cluster-ip":
        chosen = here if p.internal_local else everywhere
    elif not p.external_local or source in ("local-pod", "remote-pod", "node"):
        chosen = everywhere if here or not p.external_local else []  # kube-proxy drops for all then
    else:
        chosen = here
    if chosen:
        return {(e.ip, e.port) for e in chosen}
    return "reject" if not everywhere else "drop"


endpoint_st = st.builds(
    Endpoint, ip=st.sampled_from(["10.244.1.2", "10.244.1.3", "10.244.2.2", "10.244.2.3", "10.244.3.4"]),
    port=st.sampled_from([80, 8080]), node_name=st.sampled_from(["n1", "n2"]), ready=st.booleans(),
    serving=st.booleans(), terminating=st.booleans()).map(
        lambda e: Endpoint(e.ip, e.port, "n1" if e.ip.startswith("10.244.1.") else e.node_name,
                           e.ready and not e.terminating, e.serving or e.ready, e.terminating))


@st.composite
def services(draw):
    count = draw(st.integers(1, 4))
    out = []
    for i in range(count):
        protocol = draw(st.sampled_from(["tcp", "udp"]))
        p = ServicePort("ns", f"s{i}", draw(st.sampled_from(["", "http"])), protocol, draw(st.sampled_from([53, 80])),
                        (f"10.96.0.{i + 1}",), (f"192.0.2.{i + 1}",) if draw(st.booleans()) else (),
                        30000 + i if draw(st.booleans()) else 0,
                        draw(st.sampled_from([0, 0, 60])), draw(st.booleans()), draw(st.booleans()))
        endpoints = draw(st.lists(endpoint_st, max_size=4, unique_by=lambda e: (e.ip, e.port)))
        out.append((p, tuple(endpoints)))
    return out


@settings(max_examples=300, deadline=None)
@given(services(), st.data())
def test_every_packet_lands_where_kubernetes_says(pairs, data):
    rs = ruleset_of(*pairs)
    p, endpoints = data.draw(st.sampled_from(pairs))
    destinations = [("cluster-ip", p.cluster_ips[0], p.port)]
    destinations += [("external-ip", ip, p.port) for ip in p.external_ips]
    destinations += [("node-port", NODE.addresses[0], p.node_port)] * bool(p.node_port)
    destination, daddr, dport = data.draw(st.sampled_from(destinations))
    source = data.draw(st.sampled_from(sorted(SOURCES)))
    saddr, from_node = SOURCES[source]
    if source == "local-pod" and data.draw(st.booleans()):  # one of the service's own pods (hairpin)
        saddr = data.draw(st.sampled_from([e.ip for e in endpoints if e.node_name == NODE.name] or [saddr]))
    results = walk(rs, NODE.addresses, Packet(saddr, daddr, p.protocol, dport, from_node))
    want = expected(p, endpoints, destination, source)
    got = landed(results)
    if isinstance(want, str):
        assert got == {want: 1}
        return
    assert got == {target: Fraction(1, len(want)) for target in want}  # all of them, evenly
    if destination == "cluster-ip":  # off-cluster clients, unless the endpoint is surely on this node
        masquerade = source in ("node", "outside") and not p.internal_local
    else:  # external traffic, unless Local policy keeps the client's address (the node's own is no use)
        masquerade = not p.external_local or source == "node"
    for o in results:
        assert o.masquerade == (masquerade or o.dnat[0] == saddr), (o, source, destination)  # or hairpin
    if p.affinity_timeout_s:
        for o in results:
            again = walk(rs, NODE.addresses, Packet(saddr, daddr, p.protocol, dport, from_node), dict(o.sets))
            assert landed(again) == {o.dnat: 1}
