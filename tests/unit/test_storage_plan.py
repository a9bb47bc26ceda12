"""Claims, volumes and the local-path provisioner: default class, wait for the first consumer,
binding both ways, static volumes, release, and the cleanup helper before Delete."""

from orchestrator.api.volumes import DEFAULT_CLASS, SELECTED_NODE
from orchestrator.controllers.plans.storage import BIND_COMPLETED, CLEANUP_LABEL, PROVISIONER, plan

LOCAL = {"metadata": {"name": "local-path", "annotations": {DEFAULT_CLASS: "true"}}, "provisioner": PROVISIONER,
         "volumeBindingMode": "WaitForFirstConsumer", "reclaimPolicy": "Delete", "parameters": {"path": "/lab/vol"}}


def claim(name="data", cls=None, node=None, volume=None, size="1Gi") -> dict:
    spec = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if cls is not None:
        spec["storageClassName"] = cls
    if volume:
        spec["volumeName"] = volume
    meta = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if node:
        meta["annotations"] = {SELECTED_NODE: node}
    return {"metadata": meta, "spec": spec, "status": {}}


def test_a_claim_without_class_gets_the_default_and_waits_for_its_first_consumer():
    result = plan([claim()], [], [LOCAL], [], 0)
    assert result.claim_patches == [("default", "data", {"spec": {"storageClassName": "local-path"}})]
    assert result.create_volumes == [] and result.claim_statuses == [("default", "data", {"phase": "Pending"})]


def test_once_a_node_is_selected_a_pinned_volume_is_provisioned_and_bound():
    result = plan([claim(cls="local-path", node="worker-1")], [], [LOCAL], [], 0)
    volume = result.create_volumes[0]
    assert volume["metadata"]["name"] == "pvc-uid-data"
    assert volume["spec"]["hostPath"] == {"path": "/lab/vol/pvc-uid-data", "type": "DirectoryOrCreate"}
    assert volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] \
        == ["worker-1"]
    assert volume["spec"]["claimRef"]["uid"] == "uid-data"
    assert ("default", "data", {"metadata": {"annotations": {BIND_COMPLETED: "yes"}},
                                "spec": {"volumeName": "pvc-uid-data"}}) in result.claim_patches
    assert result.claim_statuses[0][2]["phase"] == "Bound"


def test_a_static_volume_of_the_class_is_bound_smallest_first():
    volumes = [{"metadata": {"name": f"pv-{size}"}, "spec": {"capacity": {"storage": size}, "storageClassName": "",
                                                              "accessModes": ["ReadWriteOnce"]}, "status": {}}
               for size in ("5Gi", "2Gi", "512Mi")]
    result = plan([claim(cls="", size="1Gi")], volumes, [LOCAL], [], 0)
    assert result.volume_patches[0][0] == "pv-2Gi"


def test_a_volume_whose_claim_is_gone_is_cleaned_on_its_node_then_deleted():
    volume = {"metadata": {"name": "pvc-old", "annotations": {"pv.kubernetes.io/provisioned-by": PROVISIONER}},
              "spec": {"persistentVolumeReclaimPolicy": "Delete", "claimRef": {"uid": "gone"},
                       "hostPath": {"path": "/lab/vol/pvc-old"},
                       "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                           {"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker-2"]}]}]}}},
              "status": {"phase": "Bound"}}
    first = plan([], [volume], [LOCAL], [], 0)
    helper = first.cleanup_pods[0]
    assert helper["spec"]["nodeName"] == "worker-2"
    assert helper["spec"]["containers"][0]["command"] == ["rm", "-rf", "/parent/pvc-old"]
    assert helper["spec"]["volumes"][0]["hostPath"]["path"] == "/lab/vol"
    finished = {**helper, "status": {"phase": "Succeeded"}}
    finished["metadata"] = {**helper["metadata"], "labels": {CLEANUP_LABEL: "pvc-old"}}
    second = plan([], [volume], [LOCAL], [finished], 0)
    assert second.delete_volumes == ["pvc-old"] and second.delete_pods == [("kube-system", helper["metadata"]["name"])]


def test_retain_keeps_the_volume_released():
    volume = {"metadata": {"name": "keep"}, "spec": {"persistentVolumeReclaimPolicy": "Retain",
                                                     "claimRef": {"uid": "gone"}}, "status": {"phase": "Bound"}}
    result = plan([], [volume], [LOCAL], [], 0)
    assert result.volume_statuses == [("keep", {"phase": "Released"})] and result.delete_volumes == []
