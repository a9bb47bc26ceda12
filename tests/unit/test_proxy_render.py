"""nft and iptables-restore text, the appliers' sync decisions, and conntrack cleanup targets.
The text itself is loaded by the real tools in tests/cluster/test_proxy_rules.py."""

from __future__ import annotations

import pytest

from netproxy.conntrack import CleanupTarget, Flow, cleanup_targets, is_stale
from netproxy.iptables import IptablesRuleset, build_iptables, parse_save, restore_text, sep_chain, svc_chain
from netproxy.model import Endpoint, NodeFacts, ServicePort
from netproxy.nft import STALE_DELETE_AFTER_S, NftApplier, NftError, full_text
from netproxy.policy import plan_port
from netproxy.ruleset import build_ruleset, chain_name

NODE = NodeFacts("n1", ("10.77.0.1",), "10.244.0.0/16")
A, B, C = Endpoint("10.244.1.2", 8080, "n1"), Endpoint("10.244.2.2", 8080, "n2"), Endpoint("10.244.2.3", 8080, "n2")


def port(name="web", cluster_ip="10.96.0.10", **kw) -> ServicePort:
    return ServicePort("default", name, "", kw.pop("protocol", "tcp"), kw.pop("number", 80), (cluster_ip,), **kw)


def plans(*pairs):
    return [plan_port(p, tuple(eps), NODE.name) for p, eps in pairs]


# --- nft --------------------------------------------------------------------------------------

def test_full_text_replaces_the_table_atomically_and_declares_before_use():
    text = full_text(build_ruleset(plans((port(node_port=30080, affinity_timeout_s=30), (A, B))), NODE))
    lines = text.splitlines()
    assert lines[:3] == ["add table ip ketch-proxy", "delete table ip ketch-proxy", "table ip ketch-proxy {"]
    assert "  chain nat-output { type nat hook output priority -100; policy accept; }" in lines
    assert any(line.startswith("  set affinity-") and "timeout 30s" in line for line in lines)
    body = lines.index("}")
    assert all(not line.startswith("add element") for line in lines[:body])  # chains exist before elements
    assert "add element ip ketch-proxy service-nodeports { tcp . 30080 : goto external-" in text


class Recorder:
    def __init__(self):
        self.texts, self.fail = [], False

    def __call__(self, text, netns):
        if self.fail:
            raise NftError("nft -f - failed: Error: Could not process rule: No such file or directory")
        self.texts.append(text)


def test_applier_full_then_partial_and_stale_chains_deleted_a_second_later():
    run = Recorder()
    applier = NftApplier("ns1", runner=run)
    assert applier.sync(build_ruleset(plans((port(), (A, B))), NODE), 0.0).full
    gone = chain_name("endpoint", "default/web/tcp/__10.244.2.2/8080")
    second = applier.sync(build_ruleset(plans((port(), (A,))), NODE), 10.0)
    assert not second.full and f"flush chain ip ketch-proxy {gone}" in second.text
    assert "delete chain" not in second.text and applier.stale_chains == {gone: 10.0}
    assert applier.sync(build_ruleset(plans((port(), (A,))), NODE), 10.0 + STALE_DELETE_AFTER_S / 2).text == ""
    third = applier.sync(build_ruleset(plans((port(), (A,))), NODE), 10.0 + STALE_DELETE_AFTER_S)
    assert third.text == f"delete chain ip ketch-proxy {gone}\n" and applier.stale_chains == {}


def test_a_chain_coming_back_before_deletion_is_rewritten_not_deleted():
    applier = NftApplier(runner=Recorder())
    applier.sync(build_ruleset(plans((port(), (A, B))), NODE), 0.0)
    applier.sync(build_ruleset(plans((port(), (A,))), NODE), 1.0)
    back = applier.sync(build_ruleset(plans((port(), (A, B))), NODE), 5.0)
    assert "delete chain" not in back.text and applier.stale_chains == {}


def test_a_failed_transaction_makes_the_next_sync_full():
    run = Recorder()
    applier = NftApplier(runner=run)
    applier.sync(build_ruleset(plans((port(), (A,))), NODE), 0.0)
    run.fail = True
    with pytest.raises(NftError):
        applier.sync(build_ruleset(plans((port(), (A, B))), NODE), 1.0)
    run.fail = False
    assert applier.sync(build_ruleset(plans((port(), (A, B))), NODE), 2.0).full


def test_changed_map_element_is_deleted_then_added():
    applier = NftApplier(runner=Recorder())
    applier.sync(build_ruleset(plans((port(), (A,))), NODE), 0.0)
    text = applier.sync(build_ruleset(plans((port(), ())), NODE), 1.0).text
    assert "delete element ip ketch-proxy service-ips { 10.96.0.10 . tcp . 80 }" in text
    assert "add element ip ketch-proxy no-endpoint-services { 10.96.0.10 . tcp . 80 : goto reject-chain }" in text


# --- iptables ---------------------------------------------------------------------------------

def test_iptables_statistic_probabilities_give_each_endpoint_a_third():
    rs = build_iptables(plans((port(), (A, B, C))), NODE)
    svc = rs.tables["nat"][svc_chain("SVC", "default/web/tcp/")]
    assert svc[0] == "-d 10.96.0.10/32 -p tcp -m tcp --dport 80 ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ"
    assert [r.rpartition("-j ")[0].strip() for r in svc[1:]] == [
        "-m statistic --mode random --probability 0.3333333333",
        "-m statistic --mode random --probability 0.5000000000", ""]
    assert rs.tables["nat"][sep_chain("default/web/tcp/", A.ip, A.port)] == (
        "-s 10.244.1.2/32 -j KUBE-MARK-MASQ", "-p tcp -m tcp -j DNAT --to-destination 10.244.1.2:8080")
    assert rs.tables["nat"]["KUBE-SERVICES"][-1] == "-m addrtype --dst-type LOCAL -j KUBE-NODEPORTS"


def test_iptables_rejects_and_drops_in_filter():
    rs = build_iptables(plans((port(node_port=30080), ()), (port("loc", "10.96.0.11", node_port=30081,
                                                                   external_local=True), (B,))), NODE)
    assert rs.tables["filter"]["KUBE-SERVICES"] == (
        "-d 10.96.0.10/32 -p tcp -m tcp --dport 80 -j REJECT --reject-with tcp-reset",)
    assert rs.tables["filter"]["KUBE-EXTERNAL-SERVICES"] == (
        "-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -j REJECT --reject-with tcp-reset",
        "-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30081 -j DROP")


def test_iptables_affinity_uses_recent():
    rs = build_iptables(plans((port(affinity_timeout_s=60), (A, B))), NODE)
    svc = rs.tables["nat"][svc_chain("SVC", "default/web/tcp/")]
    assert sum("--rcheck --seconds 60 --reap" in r for r in svc) == 2
    assert "--set" in rs.tables["nat"][sep_chain("default/web/tcp/", A.ip, A.port)][1]


SAVED = """*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SEP-OLDOLDOLDOLDOLD - [0:0]
:KUBE-KUBELET-CANARY - [0:0]
-A PREROUTING -j KUBE-SERVICES
-A PREROUTING -j KUBE-SERVICES
COMMIT
*filter
:INPUT ACCEPT [0:0]
COMMIT
"""


def test_full_restore_repairs_jumps_and_removes_a_crashed_proxys_chains():
    text = restore_text(build_iptables(plans((port(), (A,))), NODE), None, parse_save(SAVED))
    assert "-D PREROUTING -j KUBE-SERVICES" in text.splitlines()  # one of the two
    assert "-I OUTPUT 1 -j KUBE-SERVICES" in text and "-I POSTROUTING 1 -j KUBE-POSTROUTING" in text
    assert "-X KUBE-SEP-OLDOLDOLDOLDOLD" in text and "KUBE-KUBELET-CANARY" not in text  # not ours
    assert "-I PREROUTING" not in text


def test_partial_restore_writes_list_chains_and_changed_chains_only():
    old = build_iptables(plans((port("a", "10.96.0.1"), (A, B)), (port("b", "10.96.0.2"), (A, B))), NODE)
    new = build_iptables(plans((port("a", "10.96.0.1"), (A,)), (port("b", "10.96.0.2"), (A, B))), NODE)
    declared = {line[1:].split()[0] for line in restore_text(new, old, None).splitlines() if line.startswith(":")}
    assert declared == {"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES", svc_chain("SVC", "default/a/tcp/"),
                        sep_chain("default/a/tcp/", B.ip, B.port)}
    assert f"-X {sep_chain('default/a/tcp/', B.ip, B.port)}" in restore_text(new, old, None)
    assert restore_text(IptablesRuleset(), IptablesRuleset(), None) == ""


# --- conntrack --------------------------------------------------------------------------------

def test_udp_ports_that_lost_an_endpoint_are_cleaned_tcp_never():
    udp = port("dns", "10.96.0.53", protocol="udp", number=53, node_port=30053)
    old = {p.port.id: p for p in plans((udp, (A, B)), (port(), (A, B)))}
    new = {p.port.id: p for p in plans((udp, (A,)), (port(), (A,)))}
    targets = cleanup_targets(old, new)
    serving = frozenset({(A.ip, A.port)})
    assert targets == [CleanupTarget("10.96.0.53", 53, serving), CleanupTarget(None, 30053, serving)]
    assert cleanup_targets(new, new) == []  # nothing lost
    assert cleanup_targets(old, {}) == [CleanupTarget("10.96.0.53", 53, frozenset()),
                                        CleanupTarget(None, 30053, frozenset())]  # service deleted


@pytest.mark.parametrize("flow, stale", [
    (Flow("10.96.0.53", 53, "10.244.2.2", 8080), True),  # to the removed endpoint
    (Flow("10.96.0.53", 53, "10.244.1.2", 8080), False),  # to a serving one
    (Flow("10.96.0.53", 53, "10.96.0.53", 53), False),  # never NATed
])
def test_stale_flows(flow, stale):
    assert is_stale(flow, CleanupTarget("10.96.0.53", 53, frozenset({(A.ip, A.port)}))) is stale
