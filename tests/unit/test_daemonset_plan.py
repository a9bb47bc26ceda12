"""The DaemonSet plan: which nodes get a pod, placement through the scheduler, rolling updates."""

from orchestrator.api import timestamps
from orchestrator.controllers.plans.daemonset import REVISION_LABEL, plan, target_node
from orchestrator.controllers.plans.revisions import template_hash

NOW = 1_800_000_000.0
TEMPLATE = {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": [{"name": "a", "image": "busybox"}]}}


def ds(template=TEMPLATE, **spec) -> dict:
    return {"metadata": {"name": "agent", "namespace": "kube-system", "uid": "ds-1", "generation": 2},
            "spec": {"selector": {"matchLabels": {"app": "agent"}}, "template": template, **spec}}


def node(name: str, labels=None, taints=None) -> dict:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def pod(name: str, node_name: str, revision: str, ready=True, phase="Running", created="2026-01-01T00:00:00Z") -> dict:
    since = timestamps.format_epoch(NOW - 100)
    return {"metadata": {"name": name, "labels": {"app": "agent", REVISION_LABEL: revision},
                         "creationTimestamp": created},
            "spec": {"nodeName": node_name},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                                       "lastTransitionTime": since}]}}


CURRENT = template_hash(TEMPLATE)


def test_every_eligible_node_gets_one_pod_placed_by_the_scheduler():
    result = plan(ds(), [node("a"), node("b")], [], NOW)
    assert sorted(target_node(p) for p in result.create) == ["a", "b"]
    body = result.create[0]
    assert "nodeName" not in body["spec"]
    term = body["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {"nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In",
                                                             "values": [target_node(body)]}]}]}
    assert body["metadata"]["labels"][REVISION_LABEL] == CURRENT
    keys = {t["key"] for t in body["spec"]["tolerations"]}
    assert {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable",
            "node.kubernetes.io/unschedulable"} <= keys
    assert result.status["desiredNumberScheduled"] == 2 and result.status["currentNumberScheduled"] == 0


def test_node_selector_and_untolerated_taints_exclude_nodes_but_daemon_tolerations_do_not():
    template = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "nodeSelector": {"role": "edge"}}}
    nodes = [node("edge-1", {"role": "edge"}), node("core-1"),
             node("edge-2", {"role": "edge"}, [{"key": "dedicated", "value": "db", "effect": "NoSchedule"}]),
             node("edge-3", {"role": "edge"}, [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}])]
    result = plan(ds(template), nodes, [], NOW)
    assert sorted(target_node(p) for p in result.create) == ["edge-1", "edge-3"]


def test_pods_on_ineligible_nodes_extras_and_failed_pods_are_deleted():
    pods = [pod("a-1", "a", CURRENT), pod("a-2", "a", CURRENT, created="2026-01-02T00:00:00Z"),
            pod("gone-1", "gone", CURRENT), pod("b-1", "b", CURRENT, phase="Failed")]
    result = plan(ds(), [node("a"), node("b")], pods, NOW)
    assert sorted(result.delete) == ["a-2", "b-1", "gone-1"]
    assert [target_node(p) for p in result.create] == ["b"]  # the failed pod's replacement, in the same pass
    assert result.status["numberMisscheduled"] == 1


def test_rolling_update_replaces_one_node_at_a_time_by_default():
    pods = [pod(f"{n}-old", n, "old") for n in "abc"]
    result = plan(ds(), [node(n) for n in "abc"], pods, NOW)
    assert result.delete == ["a-old"] and result.create == []
    # a's old pod is gone and its new pod is not ready yet: nobody else is touched
    pods = [pod("a-new", "a", CURRENT, ready=False), pod("b-old", "b", "old"), pod("c-old", "c", "old")]
    assert plan(ds(), [node(n) for n in "abc"], pods, NOW).delete == []
    pods[0] = pod("a-new", "a", CURRENT)
    assert plan(ds(), [node(n) for n in "abc"], pods, NOW).delete == ["b-old"]


def test_max_surge_starts_the_new_pod_beside_the_old_one():
    spec = {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}}
    pods = [pod("a-old", "a", "old"), pod("b-old", "b", "old")]
    first = plan(ds(**spec), [node("a"), node("b")], pods, NOW)
    assert first.delete == [] and [target_node(p) for p in first.create] == ["a"]
    pods.append(pod("a-new", "a", CURRENT))
    second = plan(ds(**spec), [node("a"), node("b")], pods, NOW)
    assert second.delete == ["a-old"] and [target_node(p) for p in second.create] == ["b"]


def test_on_delete_leaves_old_pods_alone():
    pods = [pod("a-old", "a", "old")]
    result = plan(ds(updateStrategy={"type": "OnDelete"}), [node("a")], pods, NOW)
    assert result.delete == [] and result.create == []
    assert result.status["updatedNumberScheduled"] == 0 and result.status["numberAvailable"] == 1
