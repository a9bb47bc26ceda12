"""Scheduling decisions end to end: a pod that fits nowhere, then does; taints, selectors,
anti-affinity and topology spread each deciding a placement."""

from __future__ import annotations

import yaml


def pod(name: str, cpu: str = "100m", **spec) -> str:
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"test": name.split("-")[0]}},
            "spec": {"containers": [{"name": "c", "image": "busybox",
                                     "resources": {"requests": {"cpu": cpu}}}], **spec}}
    return yaml.safe_dump(body)


def node_of(cluster, name: str) -> str:
    return cluster.wait(lambda: cluster.json("get", "pod", name)["spec"].get("nodeName"), 30)


def test_a_pod_that_fits_nowhere_waits_with_the_reason_then_lands_on_a_new_node(cluster):
    cluster.wait(lambda: len(cluster.json("get", "nodes")["items"]) >= 5, 60)
    cluster.kubectl("apply", "-f", "-", input=pod("huge", cpu="3"))
    events = cluster.wait(lambda: [e for e in cluster.json("get", "events", "--field-selector",
                                                           "involvedObject.name=huge")["items"]
                                   if e["reason"] == "FailedScheduling"], 30)
    assert "0/5 nodes are available: 5 Insufficient cpu." in events[0]["message"]
    assert "Insufficient cpu" in cluster.kubectl("describe", "pod", "huge").stdout
    cluster.component("hollow-nodes", "--kubeconfig", str(cluster.plane.kubeconfig()), "--count", "1",
                      "--prefix", "big-", "--cpu", "8", "--heartbeat-seconds", "1")
    assert node_of(cluster, "huge") == "big-0"


def test_taints_selectors_anti_affinity_and_spread_decide_placements(cluster):
    cluster.wait(lambda: len(cluster.json("get", "nodes")["items"]) >= 5, 60)
    cluster.kubectl("taint", "node", "hollow-0", "dedicated=db:NoSchedule")
    try:
        cluster.kubectl("apply", "-f", "-", input=pod("tolerant", nodeSelector={"kubernetes.io/hostname": "hollow-0"},
                                                      tolerations=[{"key": "dedicated", "operator": "Equal",
                                                                    "value": "db", "effect": "NoSchedule"}]))
        cluster.kubectl(
            "apply", "-f", "-", input=pod("intolerant", nodeSelector={"kubernetes.io/hostname": "hollow-0"})
        )
        assert node_of(cluster, "tolerant") == "hollow-0"
        events = cluster.wait(
            lambda: [
                e
                for e in cluster.json("get", "events", "--field-selector", "involvedObject.name=intolerant")["items"]
                if e["reason"] == "FailedScheduling"
            ],
            30,
        )
        assert "1 node(s) had untolerated taint {dedicated: db}" in events[0]["message"]
        assert "node(s) didn't match Pod's node affinity/selector" in events[0]["message"]
    finally:
        cluster.kubectl("taint", "node", "hollow-0", "dedicated-")
    anti = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"test": "lonely"}}, "topologyKey": "kubernetes.io/hostname"}
            ]
        }
    }
    for i in range(3):
        cluster.kubectl("apply", "-f", "-", input=pod(f"lonely-{i}", affinity=anti))
    assert len({node_of(cluster, f"lonely-{i}") for i in range(3)}) == 3
    spread = [
        {
            "maxSkew": 1,
            "topologyKey": "topology.kubernetes.io/zone",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": {"test": "zoned"}},
        }
    ]
    for i in range(6):
        cluster.kubectl("apply", "-f", "-", input=pod(f"zoned-{i}", topologySpreadConstraints=spread))
    nodes = {
        n["metadata"]["name"]: n["metadata"]["labels"]["topology.kubernetes.io/zone"]
        for n in cluster.json("get", "nodes")["items"]
    }
    zones = [nodes[node_of(cluster, f"zoned-{i}")] for i in range(6)]
    counts = [zones.count(zone) for zone in set(nodes.values())]
    assert max(counts) - min(counts) <= 1, zones
