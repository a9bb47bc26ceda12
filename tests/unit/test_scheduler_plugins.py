"""The scheduling framework and its plugins on hand-made nodes and pods (pure)."""

from __future__ import annotations

import pytest

from orchestrator.api import quantity
from orchestrator.api.pods import requests as pod_requests
from orchestrator.scheduler.framework import Framework, NodeInfo
from orchestrator.scheduler.plugins import default_plugins


def node(name: str, cpu: str = "2", memory: str = "4Gi", pods: int = 110, zone: str = "a", taints=None,
         unschedulable: bool = False, **labels) -> NodeInfo:
    return NodeInfo({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                           "topology.kubernetes.io/zone": zone, **labels}},
                     "spec": {"taints": taints or [], "unschedulable": unschedulable},
                     "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": str(pods)}}})


def pod(name: str, cpu: str | None = None, memory: str | None = None, labels=None, owner: str | None = None, **spec):
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels or {}}
    if owner:
        meta["ownerReferences"] = [{"uid": owner, "controller": True, "kind": "ReplicaSet", "name": owner}]
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "resources": {"requests": requests}}], **spec}}


def schedule(p, nodes):
    return Framework(default_plugins()).schedule(p, nodes)


def test_quantities():
    assert quantity.milli_cpu("100m") == 100 and quantity.milli_cpu("1.5") == 1500 and quantity.milli_cpu(2) == 2000
    assert quantity.amount("8Gi") == 8 * 2 ** 30 and quantity.amount("500M") == 500 * 10 ** 6
    assert pod_requests(pod("p", cpu="250m", memory="64Mi")) == {"cpu": 250, "memory": 64 * 2 ** 20, "pods": 1}
    with pytest.raises(quantity.QuantityError):
        quantity.parse("lots")


def test_resources_fit_and_the_message_kubectl_describe_shows():
    nodes = [node("n1", cpu="1"), node("n2", cpu="1"), node("n3", cpu="4", pods=0)]
    result = schedule(pod("big", cpu="2"), nodes)
    assert result.node is None
    assert result.message == "0/3 nodes are available: 1 Too many pods, 2 Insufficient cpu."


def test_requested_resources_of_placed_pods_count():
    busy, idle = node("busy", cpu="1"), node("idle", cpu="1")
    busy.add_pod(pod("there", cpu="800m"))
    assert schedule(pod("new", cpu="500m"), [busy, idle]).node == "idle"


def test_least_allocated_prefers_the_emptier_node():
    full, empty = node("full"), node("empty")
    for i in range(5):
        full.add_pod(pod(f"p{i}", cpu="200m"))
    assert schedule(pod("new", cpu="100m"), [full, empty]).node == "empty"


def test_taints_need_tolerations():
    tainted = node("t", taints=[{"key": "dedicated", "value": "db", "effect": "NoSchedule"}])
    result = schedule(pod("p"), [tainted])
    assert result.message == "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: db}."
    tolerating = pod(
        "q", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db", "effect": "NoSchedule"}]
    )
    assert schedule(tolerating, [tainted]).node == "t"
    assert schedule(pod("r", tolerations=[{"operator": "Exists"}]), [tainted]).node == "t"
    assert (
        schedule(pod("s"), [node("u", unschedulable=True)]).message
        == "0/1 nodes are available: 1 node(s) were unschedulable."
    )


def test_node_selector_and_required_and_preferred_affinity():
    nodes = [node("ssd", disk="ssd"), node("hdd", disk="hdd")]
    assert schedule(pod("p", nodeSelector={"disk": "ssd"}), nodes).node == "ssd"
    required = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": "disk", "operator": "NotIn", "values": ["ssd"]}]}]
            }
        }
    }
    assert schedule(pod("q", affinity=required), nodes).node == "hdd"
    preferred = {
        "nodeAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["hdd"]}]},
                }
            ]
        }
    }
    assert schedule(pod("r", affinity=preferred), nodes).node == "hdd"
    nowhere = schedule(pod("s", nodeSelector={"disk": "nvme"}), nodes)
    assert nowhere.message == "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."


def test_required_anti_affinity_both_ways():
    a, b = node("a"), node("b")
    a.add_pod(pod("web-1", labels={"app": "web"}))
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "web"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    assert schedule(pod("web-2", labels={"app": "web"}, affinity=anti), [a, b]).node == "b"
    b.add_pod(pod("web-3", labels={"app": "web"}, affinity=anti))
    # an existing pod's anti-affinity keeps a matching newcomer away from b as well
    result = schedule(pod("web-4", labels={"app": "web"}), [b])
    assert result.message == "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules."
    assert [p["metadata"]["name"] for p in b.anti_affinity_pods] == ["web-3"]  # kept at hand, not searched for
    b.remove_pod("uid-web-3")
    assert not b.anti_affinity_pods and schedule(pod("web-5", labels={"app": "web"}), [b]).node == "b"


def test_topology_spread_do_not_schedule_and_default_spreading():
    a1, a2, b1 = node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b")
    constraint = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"app": "z"}},
        }
    ]
    a1.add_pod(pod("z1", labels={"app": "z"}))
    result = schedule(pod("z2", labels={"app": "z"}, topologySpreadConstraints=constraint), [a1, a2, b1])
    assert result.node == "b1"  # zone a has one already; skew would be 2
    # pods of one owner, without constraints, spread over hostnames by default
    x, y = node("x"), node("y")
    x.add_pod(pod("o1", owner="rs-1"))
    assert schedule(pod("o2", owner="rs-1"), [x, y]).node == "y"


def test_default_spreading_follows_the_owner_across_zones_and_forgets_removed_pods():
    a1, a2, b1 = node("a1", zone="a"), node("a2", zone="a"), node("b1", zone="b")
    a1.add_pod(pod("o1", owner="rs-1"))
    a2.add_pod(pod("o2", owner="rs-1"))
    a2.add_pod(pod("other", owner="rs-2"))  # another owner's pods do not count
    assert schedule(pod("o3", owner="rs-1"), [a1, a2, b1]).node == "b1"
    a1.remove_pod("uid-o1")
    assert "rs-1" not in a1.owners  # no count left behind for an owner with no pod on the node
    b1.add_pod(pod("o4", owner="rs-1"))
    b1.add_pod(pod("o5", owner="rs-1"))
    assert schedule(pod("o6", owner="rs-1"), [a1, a2, b1]).node == "a1"  # a1 is empty again


def test_profile_times_each_plugin_and_skipped_checks_are_not_called():
    from orchestrator.scheduler.profile import PluginTimes

    times = PluginTimes()
    framework = Framework([times.wrap(p) for p in default_plugins()])
    nodes = [node(f"n{i}") for i in range(5)]
    plain = framework.schedule(pod("plain", cpu="100m"), nodes)
    times.cycle(0.001)
    assert plain.node and plain.feasible == 5
    assert times.calls[("NodeResourcesFit", "filter")] == 5
    # nothing in the pod asks for affinity, spreading or a node selector: those filters never run
    for plugin in ("InterPodAffinity", "PodTopologySpread", "NodeAffinity", "NodeName"):
        assert times.calls[(plugin, "filter")] == 0, plugin
        assert times.calls[(plugin, "prefilter")] == 1, plugin
    picky = pod("picky", nodeSelector={"disk": "ssd"})
    nodes.append(node("ssd", disk="ssd"))
    assert framework.schedule(picky, nodes).node == "ssd"
    times.cycle(0.001)
    assert times.calls[("NodeAffinity", "filter")] == 6
    table = times.table()
    assert "2 cycles" in table and "NodeResourcesFit" in table and "NodeAffinity" in table
    assert "InterPodAffinity" in table and "prefilter" in table
