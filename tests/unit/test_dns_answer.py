"""Cluster DNS, pure: the view built from Services and EndpointSlices, and the answer to each
query, as a resolver in a pod would see it."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netproxy.dns.answer import FORWARD, answer
from netproxy.dns.view import build_view


def service(name, namespace="default", cluster_ip="10.96.0.20", ports=(("http", "TCP", 80),), **spec):
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"clusterIP": cluster_ip, "ports": [{"name": n, "protocol": p, "port": port}
                                                         for n, p, port in ports], **spec}}


def endpoint_slice(service_name, endpoints, namespace="default", ports=(("http", "TCP", 8080),),
                   address_type="IPv4", name=None):
    return {"metadata": {"name": name or f"{service_name}-abc", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": service_name}},
            "addressType": address_type,
            "endpoints": [{"addresses": [ip], "conditions": {} if ready is None else {"ready": ready},
                           **({"hostname": hostname} if hostname else {})} for ip, ready, hostname in endpoints],
            "ports": [{"name": n, "protocol": p, "port": port} for n, p, port in ports]}


VIEW = build_view(
    [service("web"),
     service("kube-dns", "kube-system", "10.96.0.10", (("dns", "UDP", 53), ("dns-tcp", "TCP", 53))),
     service("db", cluster_ip="None", ports=(("pg", "TCP", 5432),)),
     service("web-set", cluster_ip="None"),
     service("empty", cluster_ip="None"),
     service("dual", cluster_ip="10.96.0.30", clusterIPs=["10.96.0.30", "fd00:96::30"]),
     service("pending", cluster_ip="None", publishNotReadyAddresses=True),
     {"metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName",
                                                                     "externalName": "db.example.org"}},
     service("broken", ports=(("http", "TCP", "eighty"),)),
     service("Bad_Name")],
    [endpoint_slice("db", [("10.244.1.5", True, None), ("10.244.2.6", None, None), ("10.244.2.7", False, None)],
                    ports=(("pg", "TCP", 5432),)),
     endpoint_slice("web-set", [("10.244.1.8", True, "web-0"), ("10.244.2.9", True, "web-1")]),
     endpoint_slice("web-set", [("fd00:244::9", True, "web-1")], address_type="IPv6", name="web-set-v6"),
     endpoint_slice("pending", [("10.244.3.3", False, None)]),
     endpoint_slice("web", [("10.244.1.2", True, None)])],
    generation=7)


def ask(name, rtype="A", view=VIEW, *, upstream=False, tcp=False, edns=-1, payload=1232):
    query = dns.message.make_query(name, rtype, use_edns=edns, payload=payload)
    raw = answer(query.to_wire(), view, upstream=upstream, tcp=tcp)
    if raw is FORWARD or raw is None:
        return raw
    response = dns.message.from_wire(raw)
    assert response.id == query.id and response.flags & dns.flags.QR
    return response


def data(response, section="answer"):
    return sorted(f"{rrset.name.to_text(omit_final_dot=True).lower()} {dns.rdatatype.to_text(rrset.rdtype)} "
                  f"{rdata.to_text()}" for rrset in getattr(response, section) for rdata in rrset)


@pytest.mark.parametrize("name, rtype, expected", [
    ("web.default.svc.cluster.local", "A", ["web.default.svc.cluster.local A 10.96.0.20"]),
    ("WEB.Default.SVC.cluster.local.", "A", ["web.default.svc.cluster.local A 10.96.0.20"]),
    ("kube-dns.kube-system.svc.cluster.local", "A", ["kube-dns.kube-system.svc.cluster.local A 10.96.0.10"]),
    ("dual.default.svc.cluster.local", "AAAA", ["dual.default.svc.cluster.local AAAA fd00:96::30"]),
    ("db.default.svc.cluster.local", "A", ["db.default.svc.cluster.local A 10.244.1.5",
                                           "db.default.svc.cluster.local A 10.244.2.6"]),
    ("web-set.default.svc.cluster.local", "A", ["web-set.default.svc.cluster.local A 10.244.1.8",
                                                "web-set.default.svc.cluster.local A 10.244.2.9"]),
    ("web-set.default.svc.cluster.local", "AAAA", ["web-set.default.svc.cluster.local AAAA fd00:244::9"]),
    ("web-0.web-set.default.svc.cluster.local", "A", ["web-0.web-set.default.svc.cluster.local A 10.244.1.8"]),
    ("10-244-1-5.db.default.svc.cluster.local", "A", ["10-244-1-5.db.default.svc.cluster.local A 10.244.1.5"]),
    ("pending.default.svc.cluster.local", "A", ["pending.default.svc.cluster.local A 10.244.3.3"]),
    ("10-244-7-1.default.pod.cluster.local", "A", ["10-244-7-1.default.pod.cluster.local A 10.244.7.1"]),
    ("ext.default.svc.cluster.local", "A", ["ext.default.svc.cluster.local CNAME db.example.org."]),
    ("_http._tcp.web.default.svc.cluster.local", "SRV",
     ["_http._tcp.web.default.svc.cluster.local SRV 0 100 80 web.default.svc.cluster.local."]),
    ("_dns._udp.kube-dns.kube-system.svc.cluster.local", "SRV",
     ["_dns._udp.kube-dns.kube-system.svc.cluster.local SRV 0 50 53 kube-dns.kube-system.svc.cluster.local."]),
    ("_pg._tcp.db.default.svc.cluster.local", "SRV",
     ["_pg._tcp.db.default.svc.cluster.local SRV 0 50 5432 10-244-1-5.db.default.svc.cluster.local.",
      "_pg._tcp.db.default.svc.cluster.local SRV 0 50 5432 10-244-2-6.db.default.svc.cluster.local."]),
    ("10.0.96.10.in-addr.arpa", "PTR", ["10.0.96.10.in-addr.arpa PTR kube-dns.kube-system.svc.cluster.local."]),
    ("8.1.244.10.in-addr.arpa", "PTR", ["8.1.244.10.in-addr.arpa PTR web-0.web-set.default.svc.cluster.local."]),
    ("dns-version.cluster.local", "TXT", ['dns-version.cluster.local TXT "1.1.0"']),
])
def test_records(name, rtype, expected):
    response = ask(name, rtype)
    assert response.rcode() == dns.rcode.NOERROR and response.flags & dns.flags.AA
    assert data(response) == expected


def test_srv_of_a_headless_service_carries_the_targets_addresses():
    response = ask("_http._tcp.web-set.default.svc.cluster.local", "SRV")
    assert data(response) == [
        "_http._tcp.web-set.default.svc.cluster.local SRV 0 50 8080 web-0.web-set.default.svc.cluster.local.",
        "_http._tcp.web-set.default.svc.cluster.local SRV 0 50 8080 web-1.web-set.default.svc.cluster.local."]
    assert data(response, "additional") == [
        "web-0.web-set.default.svc.cluster.local A 10.244.1.8",
        "web-1.web-set.default.svc.cluster.local A 10.244.2.9",
        "web-1.web-set.default.svc.cluster.local AAAA fd00:244::9"]


@pytest.mark.parametrize("name, rtype", [
    ("web.default.svc.cluster.local", "AAAA"),          # an IPv4 service: no AAAA, but the name exists
    ("web.default.svc.cluster.local", "MX"),
    ("default.svc.cluster.local", "A"),                 # a parent of names that exist
    ("svc.cluster.local", "A"),
    ("empty.default.svc.cluster.local", "A"),           # headless with no ready endpoint
    ("_tcp.web.default.svc.cluster.local", "SRV"),
])
def test_names_that_exist_without_the_asked_records_are_nodata(name, rtype):
    response = ask(name, rtype)
    assert response.rcode() == dns.rcode.NOERROR and response.answer == []
    soa = "cluster.local SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 "  # serial: the view's generation
    assert data(response, "authority")[0].startswith(soa)


@pytest.mark.parametrize("name", [
    "nope.default.svc.cluster.local",
    "web.default.svc.cluster.local.default.svc.cluster.local",   # a search-path expansion
    "web.other.svc.cluster.local",
    "www.example.com.default.svc.cluster.local",
    "10-244-2-7.db.default.svc.cluster.local",                   # not ready: no name
    "broken.default.svc.cluster.local",                          # skipped whole: a port is not a number
    "999-1-1-1.default.pod.cluster.local",
    "_http._udp.web.default.svc.cluster.local",
])
def test_unknown_names_in_the_cluster_domain_are_nxdomain(name):
    response = ask(name)
    assert response.rcode() == dns.rcode.NXDOMAIN and response.flags & dns.flags.AA
    assert data(response, "authority")[0].startswith("cluster.local SOA")


def test_skipped_services_are_reported():
    assert [line.split(":")[0] for line in VIEW.skipped] == ["service default/broken", "service default/Bad_Name"]
    assert VIEW.services == 8


@pytest.mark.parametrize("name", ["www.example.org", "example.org", "5.5.5.5.in-addr.arpa"])
def test_other_names_go_upstream_or_are_refused(name):
    assert ask(name, upstream=True) is FORWARD
    refused = ask(name)
    assert refused.rcode() == dns.rcode.REFUSED and refused.answer == []


def test_apex_soa_and_recursion_available_only_with_an_upstream():
    assert data(ask("cluster.local", "SOA"))[0].startswith("cluster.local SOA ns.dns.cluster.local.")
    assert ask("web.default.svc.cluster.local", upstream=True).flags & dns.flags.RA
    assert not ask("web.default.svc.cluster.local").flags & dns.flags.RA


def test_a_large_answer_over_udp_is_truncated_and_whole_over_tcp():
    many = build_view([service("big", cluster_ip="None")],
                      [endpoint_slice("big", [(f"10.244.{i // 250}.{i % 250 + 1}", True, None) for i in range(60)])])
    small = ask("big.default.svc.cluster.local", view=many)
    assert small.flags & dns.flags.TC and small.answer == []
    assert len(data(ask("big.default.svc.cluster.local", view=many, tcp=True))) == 60
    assert len(data(ask("big.default.svc.cluster.local", view=many, edns=0, payload=4096))) == 60


def test_edns_is_answered_in_kind_and_a_newer_version_is_badvers():
    response = ask("web.default.svc.cluster.local", edns=0)
    assert response.edns == 0 and data(response) == ["web.default.svc.cluster.local A 10.96.0.20"]
    assert ask("web.default.svc.cluster.local", edns=1).rcode() == dns.rcode.BADVERS


def header(ident=0x1234, flags=0x0100, qd=1, an=0, ns=0, ar=0):
    return ident.to_bytes(2, "big") + flags.to_bytes(2, "big") + b"".join(
        n.to_bytes(2, "big") for n in (qd, an, ns, ar))


@pytest.mark.parametrize("packet, rcode", [
    (header() + b"\x03web", dns.rcode.FORMERR),                       # the question is cut off
    (header(qd=0), dns.rcode.FORMERR),                                # no question
    (header(qd=2) + b"\x00\x00\x01\x00\x01" * 2, dns.rcode.FORMERR),  # two questions
    (header(flags=0x2900) + b"\x00\x00\x01\x00\x01", dns.rcode.NOTIMP),  # opcode UPDATE
    (header(flags=0x1100) + b"\x00\x00\x01\x00\x01", dns.rcode.NOTIMP),  # opcode STATUS
    (header() + b"\x00\x00\x01\x00\x03", dns.rcode.REFUSED),          # class CHAOS
    (header() + b"\x00\x00\x01\x00\x01" + b"junk", dns.rcode.FORMERR),
    (header() + b"\xc0\x0c\x00\x01\x00\x01", dns.rcode.FORMERR),      # a compression pointer loop
])
def test_malformed_queries_get_an_error_with_their_id(packet, rcode):
    response = answer(packet, VIEW)
    assert response[:2] == b"\x12\x34" and response[2] & 0x80
    assert response[3] & 0xF == rcode


@pytest.mark.parametrize("packet", [b"", b"\x12", header()[:11], header(flags=0x8100) + b"\x00\x00\x01\x00\x01"])
def test_runts_and_responses_are_dropped(packet):
    assert answer(packet, VIEW) is None


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=300))
def test_any_bytes_get_an_answer_or_are_dropped_never_a_crash(packet):
    result = answer(packet, VIEW, upstream=True)
    assert result is None or result is FORWARD or (isinstance(result, bytes) and result[:2] == packet[:2])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=40), st.integers(0, 10))
def test_a_valid_query_with_corrupted_bytes_never_crashes(noise, where):
    packet = bytearray(dns.message.make_query("web.default.svc.cluster.local", "A").to_wire())
    packet[12 + where:12 + where + len(noise)] = noise
    result = answer(bytes(packet), VIEW, upstream=True)
    assert result is None or result is FORWARD or isinstance(result, bytes)
