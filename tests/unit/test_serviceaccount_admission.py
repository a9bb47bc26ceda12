"""The ServiceAccount admission of new pods, as Kubernetes' plugin does it (table tests)."""

from __future__ import annotations

import copy

import pytest

from orchestrator.apiserver.serviceaccount_admission import TOKEN_MOUNT_PATH, admit_pod, suffix_from, token_volume

MOUNT = {"name": "kube-api-access-b2x9z", "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}
VOLUME = {"name": "kube-api-access-b2x9z", "projected": {"defaultMode": 420, "sources": [
    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
    {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1",
                                                                  "fieldPath": "metadata.namespace"}}]}}]}}
ROBOT = {"metadata": {"name": "robot", "namespace": "shop", "uid": "sa-1"}}
QUIET_ROBOT = {**ROBOT, "automountServiceAccountToken": False}


def pod(**spec) -> dict:
    return {"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": "busybox"}], **spec}}


def admitted(spec: dict, account: dict | None = ROBOT, mount_token: bool = True) -> dict:
    obj = pod(**copy.deepcopy(spec))
    admit_pod(obj, account, "b2x9z", mount_token)
    return obj["spec"]


def test_the_suffix_uses_kubernetes_name_alphabet():
    assert suffix_from([0, 1, 19, 26, 27]) == "bcz9b"
    assert token_volume("kube-api-access-b2x9z") == VOLUME


@pytest.mark.parametrize("spec, account, account_name, mounted", [
    ({}, None, "default", True),                                    # lenient: account not made yet
    ({"serviceAccountName": "robot"}, ROBOT, "robot", True),
    ({"serviceAccount": "robot"}, ROBOT, "robot", True),             # the deprecated field alone
    ({"serviceAccountName": "robot"}, QUIET_ROBOT, "robot", False),  # the account says no
    ({"serviceAccountName": "robot", "automountServiceAccountToken": True}, QUIET_ROBOT, "robot", True),  # pod wins
    ({"automountServiceAccountToken": False}, ROBOT, "default", False),
])
def test_every_pod_gets_its_account_and_a_token_unless_told_not_to(spec, account, account_name, mounted):
    out = admitted(spec, account)
    assert out["serviceAccountName"] == out["serviceAccount"] == account_name
    assert out.get("volumes", []) == ([VOLUME] if mounted else [])
    assert out["containers"][0].get("volumeMounts", []) == ([MOUNT] if mounted else [])


def test_every_container_and_init_container_mounts_it_but_an_existing_mount_at_the_path_wins():
    own = {"name": "mine", "mountPath": TOKEN_MOUNT_PATH}
    out = admitted({"initContainers": [{"name": "init", "image": "busybox"}],
                    "containers": [{"name": "a", "image": "busybox", "volumeMounts": [own]},
                                   {"name": "b", "image": "busybox"}],
                    "volumes": [{"name": "mine", "emptyDir": {}}]})
    assert out["initContainers"][0]["volumeMounts"] == [MOUNT]
    assert out["containers"][0]["volumeMounts"] == [own]
    assert out["containers"][1]["volumeMounts"] == [MOUNT]
    assert [v["name"] for v in out["volumes"]] == ["mine", "kube-api-access-b2x9z"]


def test_no_volume_when_every_container_has_its_own_mount_and_an_existing_volume_is_reused():
    own = {"name": "mine", "mountPath": TOKEN_MOUNT_PATH}
    out = admitted({"containers": [{"name": "a", "image": "busybox", "volumeMounts": [own]}]})
    assert "volumes" not in out
    kept = {"name": "kube-api-access-abcde", "emptyDir": {}}
    out = admitted({"volumes": [kept]})
    assert out["volumes"] == [kept] and out["containers"][0]["volumeMounts"][0]["name"] == "kube-api-access-abcde"


def test_mirror_pods_and_servers_without_a_signing_key():
    obj = pod()
    obj["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "x"}
    admit_pod(obj, ROBOT, "b2x9z")
    assert "serviceAccountName" not in obj["spec"]
    out = admitted({}, ROBOT, mount_token=False)
    assert out["serviceAccountName"] == "default" and "volumes" not in out
