"""The proxy's bookkeeping between informers and syncs, the userspace chooser, and /healthz."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from netproxy.model import Endpoint
from netproxy.proxy import ProxyConfig, ProxyMetrics
from netproxy.state import ProxyState, rfc3339_epoch
from netproxy.userspace import Chooser


def service(name="web", ip="10.96.0.10", **spec) -> dict:
    return {"metadata": {"namespace": "default", "name": name},
            "spec": {"clusterIP": ip, "ports": [{"name": "http", "port": 80}], **spec}}


def endpoint_slice(ips, name="web-1", service_name="web", trigger=None, node="n1") -> dict:
    meta = {"namespace": "default", "name": name, "labels": {"kubernetes.io/service-name": service_name}}
    if trigger:
        meta["annotations"] = {"endpoints.kubernetes.io/last-change-trigger-time": trigger}
    return {"metadata": meta, "addressType": "IPv4", "ports": [{"name": "http", "port": 8080}],
            "endpoints": [{"addresses": [ip], "nodeName": node} for ip in ips]}


def test_a_change_is_taken_once_with_its_earliest_time():
    state = ProxyState("n1")
    state.service_changed(service(), 100.0)
    state.slice_changed(endpoint_slice(["10.244.1.2"]), 101.0)
    taken = state.take()
    assert taken.dirty == {"default/web"} and taken.since == {"default/web": 100.0}
    [plan] = taken.plans["default/web"]
    assert [e.ip for e in plan.cluster] == ["10.244.1.2"]
    again = state.take()
    assert again.dirty == set() and again.since == {}
    state.service_changed(service(), 200.0)  # an informer resync: the same object, nothing to do
    assert state.take().dirty == set()


def test_the_trigger_time_annotation_dates_the_change():
    state = ProxyState("n1")
    state.service_changed(service(), 100.0)
    state.take()
    state.slice_changed(endpoint_slice(["10.244.1.2"], trigger="1970-01-01T00:02:30.250000000Z"), 160.0)
    assert state.take().since == {"default/web": 150.25}


def test_slices_of_a_service_merge_and_a_deleted_slice_leaves():
    state = ProxyState("n1")
    state.service_changed(service(), 1.0)
    state.slice_changed(endpoint_slice(["10.244.1.2"]), 1.0)
    state.slice_changed(endpoint_slice(["10.244.2.2"], name="web-2", node="n2"), 1.0)
    [plan] = state.take().plans["default/web"]
    assert [e.ip for e in plan.cluster] == ["10.244.1.2", "10.244.2.2"] and [e.ip for e in plan.local] == ["10.244.1.2"]
    state.slice_changed(endpoint_slice(["10.244.2.2"], name="web-2"), 2.0, deleted=True)
    [plan] = state.take().plans["default/web"]
    assert [e.ip for e in plan.cluster] == ["10.244.1.2"]


def test_a_bad_object_is_reported_and_gets_no_rules_while_others_do():
    state = ProxyState("n1")
    assert state.service_changed(service(), 1.0) is None
    reason = state.service_changed(service("bad", "10.96.0.11", ports=[{"port": 70000}]), 1.0)
    assert "not a port number" in reason and "service default/bad" in state.bad
    assert set(state.take().plans) == {"default/web"}
    assert state.slice_changed(endpoint_slice(["nope"]), 1.0)  # the old slice's endpoints go too
    [plan] = state.take().plans["default/web"]
    assert plan.cluster == () and not plan.has_endpoints


def test_a_failed_sync_gives_its_changes_back():
    state = ProxyState("n1")
    state.service_changed(service(), 5.0)
    taken = state.take()
    state.service_changed(service("other", "10.96.0.12"), 7.0)
    state.failed(taken)
    again = state.take()
    assert again.dirty == {"default/web", "default/other"} and again.since == {"default/web": 5.0,
                                                                               "default/other": 7.0}


def test_new_node_facts_rebuild_every_service():
    state = ProxyState("n1")
    state.service_changed(service(), 1.0)
    state.take()
    state.node_changed({"status": {"addresses": [{"type": "InternalIP", "address": "10.77.0.1"}]}})
    taken = state.take()
    assert taken.node_dirty and taken.dirty == {"default/web"} and state.node.addresses == ("10.77.0.1",)


@pytest.mark.parametrize("text, epoch", [
    ("1970-01-01T00:00:10Z", 10.0), ("1970-01-01T00:00:10.5Z", 10.5), ("1970-01-01T00:00:10.123456789Z", 10.123456789),
    ("yesterday", None), (None, None),
])
def test_rfc3339(text, epoch):
    if epoch is None:
        assert rfc3339_epoch(text) is None
    else:
        assert rfc3339_epoch(text) == pytest.approx(epoch)


A, B, C = Endpoint("10.0.0.1", 80), Endpoint("10.0.0.2", 80), Endpoint("10.0.0.3", 80)


def test_chooser_round_robin_affinity_and_skips():
    chooser = Chooser()
    assert [chooser.choose((A, B, C), "c", 0, 0.0).ip for _ in range(4)] == ["10.0.0.1", "10.0.0.2", "10.0.0.3",
                                                                             "10.0.0.1"]
    pinned = chooser.choose((A, B, C), "c", 60, 0.0)
    assert pinned == B
    assert {chooser.choose((A, B, C), "c", 60, t) for t in (10.0, 50.0, 100.0)} == {B}  # refreshed on use
    assert chooser.choose((A, C), "c", 60, 101.0) == C  # its endpoint left: chosen again (round robin)
    assert chooser.choose((A, B, C), "c", 60, 1000.0) == A  # the pin expired: round robin goes on
    assert chooser.choose((A, B), "c", 0, 0.0, frozenset({("10.0.0.1", 80), ("10.0.0.2", 80)})) is None
    assert chooser.choose((), "c", 0, 0.0) is None


def test_healthz_is_stale_when_the_last_sync_is_older_than_the_bound():
    proxy = SimpleNamespace(last_success_s=None, config=ProxyConfig("n1", healthz_timeout_s=60.0))
    metrics = ProxyMetrics(proxy)
    assert metrics.health(1000.0)[0] is False  # no sync yet
    proxy.last_success_s = 950.0
    healthy, body = metrics.health(1000.0)
    assert healthy and body["lastUpdated"] == "1970-01-01T00:15:50Z"
    assert metrics.health(1011.0)[0] is False
