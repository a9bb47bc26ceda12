"""Patches as Kubernetes applies them: merge, JSON patch, and strategic merge with its directives."""

import pytest

from orchestrator.apiserver.errors import APIError
from orchestrator.apiserver.patch import json_patch, merge_patch, strategic_merge_patch

DEPLOYMENT = {"metadata": {"labels": {"app": "web", "tier": "front"}},
              "spec": {"replicas": 2, "template": {"spec": {"containers": [
                  {"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
                   "env": [{"name": "A", "value": "1"}]},
                  {"name": "side", "image": "busybox"}]}}}}


def containers(obj):
    return obj["spec"]["template"]["spec"]["containers"]


def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists():
    out = merge_patch(DEPLOYMENT, {"metadata": {"labels": {"tier": None, "new": "x"}},
                                   "spec": {"template": {"spec": {"containers": [{"name": "only"}]}}}})
    assert out["metadata"]["labels"] == {"app": "web", "new": "x"}
    assert containers(out) == [{"name": "only"}]
    assert DEPLOYMENT["metadata"]["labels"]["tier"] == "front"  # the input is not changed


def test_strategic_merge_merges_containers_by_name_and_keeps_unmentioned_fields():
    out = strategic_merge_patch(DEPLOYMENT, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
        "containers": [{"name": "web", "image": "nginx:1.26"}]}}}})
    assert containers(out)[0] == {"name": "web", "image": "nginx:1.26", "ports": [{"containerPort": 80}],
                                  "env": [{"name": "A", "value": "1"}]}
    assert containers(out)[1] == {"name": "side", "image": "busybox"}


def test_strategic_merge_directives_delete_replace_and_order():
    deleted = strategic_merge_patch(DEPLOYMENT, {"spec": {"template": {"spec": {
        "containers": [{"name": "side", "$patch": "delete"}]}}}})
    assert [c["name"] for c in containers(deleted)] == ["web"]
    ordered = strategic_merge_patch(DEPLOYMENT, {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}}}})
    assert [c["name"] for c in containers(ordered)] == ["side", "web"]
    replaced = strategic_merge_patch(DEPLOYMENT, {"metadata": {"labels": {"$patch": "replace", "only": "this"}}})
    assert replaced["metadata"]["labels"] == {"only": "this"}
    ports = strategic_merge_patch(DEPLOYMENT, {"spec": {"template": {"spec": {"containers": [
        {"name": "web", "ports": [{"containerPort": 443}]}]}}}})
    assert containers(ports)[0]["ports"] == [{"containerPort": 80}, {"containerPort": 443}]  # merged by containerPort


def test_strategic_merge_retain_keys_and_primitive_lists():
    strategy = {"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}}}
    out = strategic_merge_patch(strategy, {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}}})
    assert out["spec"]["strategy"] == {"type": "Recreate"}
    finalizers = {"metadata": {"finalizers": ["a", "b"]}}
    assert strategic_merge_patch(finalizers, {"metadata": {"finalizers": ["c"]}})["metadata"]["finalizers"] == [
        "a",
        "b",
        "c",
    ]
    assert strategic_merge_patch(finalizers, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}})["metadata"][
        "finalizers"
    ] == ["b"]


def test_strategic_merge_item_without_its_merge_key_is_a_bad_request():
    with pytest.raises(APIError) as err:
        strategic_merge_patch(DEPLOYMENT, {"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})
    assert err.value.code == 400


def test_json_patch_operations():
    doc = {"a": {"b": [1, 2]}, "c": 1}
    out = json_patch(
        doc,
        [
            {"op": "add", "path": "/a/b/-", "value": 3},
            {"op": "replace", "path": "/c", "value": 2},
            {"op": "copy", "from": "/c", "path": "/d"},
            {"op": "move", "from": "/d", "path": "/e"},
            {"op": "remove", "path": "/a/b/0"},
            {"op": "test", "path": "/e", "value": 2},
            {"op": "add", "path": "/x~1y", "value": True},
        ],
    )
    assert out == {"a": {"b": [2, 3]}, "c": 2, "e": 2, "x/y": True}
    with pytest.raises(APIError) as failed:
        json_patch(doc, [{"op": "test", "path": "/c", "value": 9}])
    assert failed.value.code == 422
    with pytest.raises(APIError) as missing:
        json_patch(doc, [{"op": "remove", "path": "/nope"}])
    assert missing.value.code == 422
    with pytest.raises(APIError) as malformed:
        json_patch(doc, {"op": "add"})
    assert malformed.value.code == 400
