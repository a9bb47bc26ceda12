"""VolumeBinding: claims that stop a pod everywhere, bound volumes that pin it to their node, and
WaitForFirstConsumer claims left for the scheduler's choice; the kubelet's claim -> directory."""

import pytest

from orchestrator.api.volumes import DEFAULT_CLASS
from orchestrator.kubelet import volumes
from orchestrator.scheduler.framework import Framework, NodeInfo
from orchestrator.scheduler.plugins import default_plugins
from orchestrator.scheduler.volumebinding import check_claims

WAIT = {"metadata": {"name": "local-path", "annotations": {DEFAULT_CLASS: "true"}},
        "volumeBindingMode": "WaitForFirstConsumer"}
NOW = {"metadata": {"name": "fast"}, "volumeBindingMode": "Immediate"}


def claim(name, volume=None, cls=None, deleting=False):
    meta = {"name": name, "namespace": "default", **({"deletionTimestamp": "x"} if deleting else {})}
    spec = {**({"volumeName": volume} if volume else {}), **({"storageClassName": cls} if cls else {})}
    return {"metadata": meta, "spec": spec}


def pinned_volume(name, node):
    return {"metadata": {"name": name}, "spec": {"hostPath": {"path": f"/vol/{name}"}, "nodeAffinity": {"required": {
        "nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}]}]}}}}


class Objects:
    def __init__(self, claims=(), vols=(), classes=(WAIT, NOW)):
        self.c = {c["metadata"]["name"]: c for c in claims}
        self.v = {v["metadata"]["name"]: v for v in vols}
        self.k = list(classes)

    def claim(self, namespace, name):
        return self.c.get(name)

    def volume(self, name):
        return self.v.get(name)

    def classes(self):
        return self.k


def pod(*claims):
    return {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {
        "containers": [{"name": "c"}],
        "volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]}}


def node(name):
    return NodeInfo({"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
                     "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}})


@pytest.mark.parametrize("objects, claims, chosen, message", [
    (Objects(), ["data"], None, '0/2 nodes are available: 2 persistentvolumeclaim "data" not found.'),
    (Objects([claim("data", deleting=True)]), ["data"], None,
     '0/2 nodes are available: 2 persistentvolumeclaim "data" is being deleted.'),
    (Objects([claim("data", cls="fast")]), ["data"], None,
     "0/2 nodes are available: 2 pod has unbound immediate PersistentVolumeClaims."),
    (Objects([claim("data", volume="pv1")], [pinned_volume("pv1", "n2")]), ["data"], "n2", ""),
    (Objects([claim("a", volume="pv1"), claim("b", volume="pv2")], [pinned_volume("pv1", "n1"),
                                                                       pinned_volume("pv2", "n2")]), ["a", "b"], None,
     "0/2 nodes are available: 2 node(s) had volume node affinity conflict."),
    (Objects([claim("data")]), ["data"], "any", ""),  # the default class waits for the first consumer
])
def test_volume_binding_filters_nodes_as_kubernetes_says(objects, claims, chosen, message):
    result = Framework(default_plugins(objects)).schedule(pod(*claims), [node("n1"), node("n2")])
    if chosen is None:
        assert result.node is None and result.message == message
    else:
        assert result.node == chosen or (chosen == "any" and result.node in ("n1", "n2"))


def test_only_unbound_wait_for_first_consumer_claims_are_left_for_the_chosen_node():
    objects = Objects([claim("a"), claim("b", volume="pv1")], [pinned_volume("pv1", "n1")])
    check = check_claims(pod("a", "b"), objects)
    assert [c["metadata"]["name"] for c in check.delayed] == ["a"] and check.problem is None


def test_the_kubelet_mounts_a_claim_as_its_volume_directory_and_waits_for_an_unbound_one():
    paths = {"data": "/vol/pvc-1"}

    def claim_path(namespace, name):
        if name not in paths:
            raise volumes.VolumeError(name, f'persistentvolumeclaim "{name}" is not bound', permanent=False)
        return paths[name]
    resolved = volumes.pod_volumes(pod("data"), claim_path)
    assert resolved["v0"] == volumes.Volume("v0", "hostPath", {"path": "/vol/pvc-1", "type": "DirectoryOrCreate"})
    with pytest.raises(volumes.VolumeError) as err:
        volumes.pod_volumes(pod("other"), claim_path)
    assert not err.value.permanent
