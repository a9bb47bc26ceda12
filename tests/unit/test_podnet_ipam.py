"""IPAM for a node's pod CIDR: tables for the rules, and hypothesis for any sequence of pods
coming and going (never a duplicate, never the gateway/network/broadcast, exhaustion typed)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netproxy.podnet.errors import AddressesExhausted, CorruptState, InvalidNetworkConfig
from netproxy.podnet.ipam import IpamState, allocate, capacity, from_document, gateway_of, release, to_document


@pytest.mark.parametrize("cidr, gateway, size", [
    ("10.244.1.0/24", "10.244.1.1", 253),
    ("10.244.0.0/16", "10.244.0.1", 65533),
    ("192.168.7.8/30", "192.168.7.9", 1),
    ("10.0.0.0/29", "10.0.0.1", 5),
])
def test_gateway_and_capacity(cidr, gateway, size):
    assert gateway_of(cidr) == gateway
    assert capacity(cidr) == size


@pytest.mark.parametrize("cidr", ["10.0.0.0/31", "10.0.0.1/32", "10.244.1.1/24", "fd00::/64", "banana", ""])
def test_unusable_cidrs_are_typed_errors(cidr):
    with pytest.raises(InvalidNetworkConfig):
        allocate(IpamState(cidr), "pod")


def test_first_addresses_skip_network_and_gateway():
    state, first = allocate(IpamState("10.244.1.0/24"), "a")
    state, second = allocate(state, "b")
    assert (first, second) == ("10.244.1.2", "10.244.1.3")


def test_asking_again_returns_the_same_address():
    state, ip = allocate(IpamState("10.244.1.0/24"), "a", "default", "web-0")
    again, ip_again = allocate(state, "a", "default", "web-0")
    assert ip_again == ip and again is state


def test_a_freed_address_is_not_reused_at_once():
    state, a = allocate(IpamState("10.244.1.0/24"), "a")
    state, b = allocate(state, "b")
    state = release(state, "a")
    state, c = allocate(state, "c")
    assert c not in (a, b)


def test_round_robin_wraps_and_finds_the_last_free_address():
    state = IpamState("10.0.0.0/29")  # pod addresses .2 .. .6
    for uid in "abcde":
        state, _ = allocate(state, uid)
    state = release(state, "b")  # .3 is the only free one; last is .6, so the search wraps
    state, ip = allocate(state, "f")
    assert ip == "10.0.0.3"
    with pytest.raises(AddressesExhausted):
        allocate(state, "g")


def test_the_last_address_before_broadcast_is_handed_out_and_broadcast_never():
    state = IpamState("10.0.0.0/30")
    state, ip = allocate(state, "only")
    assert ip == "10.0.0.2"
    with pytest.raises(AddressesExhausted, match="no free address"):
        allocate(state, "second")


def test_release_of_an_unknown_pod_changes_nothing():
    state, _ = allocate(IpamState("10.244.1.0/24"), "a")
    assert release(state, "nobody") is state


def test_the_document_round_trips():
    state, _ = allocate(IpamState("10.244.1.0/24"), "a", "default", "web-0")
    state, _ = allocate(state, "b", "kube-system", "dns")
    assert from_document(to_document(state)) == state


@pytest.mark.parametrize("document", [
    None, [], {"version": 2, "cidr": "10.244.1.0/24"},
    {"version": 1},
    {"version": 1, "cidr": "10.244.1.0/24", "pods": {"a": {"ip": "10.244.2.5"}}},       # outside the CIDR
    {"version": 1, "cidr": "10.244.1.0/24", "pods": {"a": {"ip": "10.244.1.1"}}},       # the gateway
    {"version": 1, "cidr": "10.244.1.0/24", "pods": {"a": {"ip": "10.244.1.255"}}},     # broadcast
    {"version": 1, "cidr": "10.244.1.0/24", "pods": {"a": {"ip": "10.244.1.7"}, "b": {"ip": "10.244.1.7"}}},
    {"version": 1, "cidr": "10.244.1.0/24", "pods": {"a": {"ip": "not an ip"}}},
    {"version": 1, "cidr": "10.244.1.0/24", "pods": {"a": "10.244.1.7"}},
])
def test_a_bad_document_is_corrupt_state_not_a_reset(document):
    with pytest.raises(CorruptState):
        from_document(document)


operations = st.lists(st.tuples(st.sampled_from(["allocate", "release"]), st.integers(0, 12)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(cidr=st.sampled_from(["10.0.0.0/29", "10.0.0.8/29", "172.16.4.0/28", "10.0.0.0/30"]), ops=operations)
def test_any_sequence_of_pods_never_shares_an_address(cidr, ops):
    network = ipaddress.IPv4Network(cidr)
    forbidden = {str(network.network_address), str(network.network_address + 1), str(network.broadcast_address)}
    state, model = IpamState(cidr), {}
    for op, pod in ops:
        uid = f"pod-{pod}"
        if op == "release":
            state = release(state, uid)
            model.pop(uid, None)
            continue
        if uid not in model and len(model) == capacity(cidr):
            with pytest.raises(AddressesExhausted):
                allocate(state, uid)
            continue
        state, ip = allocate(state, uid)
        assert model.setdefault(uid, ip) == ip  # a pod keeps its address
        assert ipaddress.IPv4Address(ip) in network and ip not in forbidden
        assert len(set(model.values())) == len(model)  # never twice
        assert {u: e.ip for u, e in state.pods.items()} == model
        assert from_document(to_document(state)) == state


def test_a_network_can_be_rebuilt_from_its_state_directory_for_cleanup(tmp_path):
    from netproxy.podnet import PodNetwork
    from netproxy.podnet.state import StateFile

    assert PodNetwork.from_state_dir("node-1", tmp_path / "none").pod_cidr == "10.255.255.0/30"
    state = StateFile(tmp_path / "state", "10.244.3.0/24")
    assert state.update(lambda s: allocate(s, "pod-a", "default", "a")) == "10.244.3.2"
    network = PodNetwork.from_state_dir("node-1", tmp_path / "state")
    assert network.pod_cidr == "10.244.3.0/24"
    assert [(a.pod_uid, a.ip, a.namespace, a.name) for a in network.list_pods()] == [
        ("pod-a", "10.244.3.2", "default", "a")]
    (tmp_path / "state" / "ipam.json").write_text("{not json")
    with pytest.raises(CorruptState):
        network.list_pods()
