"""Server-side apply and managedFields as Kubernetes keeps them: ownership per manager and
operation, merges by list-map keys, conflicts in Kubernetes' words, force, pruning, and migration
from client-side apply."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.api import types
from orchestrator.apiserver.fieldmanager import managedfields as mf
from orchestrator.apiserver.fieldmanager import typed
from orchestrator.apiserver.fieldmanager.fieldpath import FieldsError, FieldSet, field, key_element, path_text
from tests.k8s_objects import objects_of

DEPLOYMENTS = mf.Context(types.kind("apps", "v1", "Deployment"), "apps/v1", has_status=True)
CONFIGMAPS = mf.Context(types.kind("", "v1", "ConfigMap"), "v1", has_status=False)
T0, T1, T2 = "2024-05-01T10:00:00Z", "2024-05-01T10:01:00Z", "2024-05-01T10:02:00Z"


def deployment(replicas: int | None = 2, image: str = "nginx", ports: bool = True) -> dict:
    container = {"name": "web", "image": image}
    if ports:
        container["ports"] = [{"containerPort": 80}]
    spec = {"selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [container]}}}
    if replicas is not None:
        spec["replicas"] = replicas
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": spec}


def stored(obj: dict, entries: list[mf.Entry]) -> dict:
    out = copy.deepcopy(obj)
    out.setdefault("metadata", {})["managedFields"] = mf.encode(entries)
    return out


def owners(entries: list[mf.Entry]) -> dict[str, list[str]]:
    return {e.manager: [path_text(p) for p in e.fields.paths()] for e in entries}


def test_fields_v1_reads_and_writes_kubernetes_format():
    document = {"f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}}}}}
    fields = FieldSet.from_fields_v1(document)
    assert fields.to_fields_v1() == document
    assert fields.has((field("spec"), field("containers"), key_element({"name": "web"})))
    assert path_text((field("spec"), field("containers"), key_element({"name": "web"}), field("image"))) == \
        '.spec.containers[name="web"].image'
    with pytest.raises(FieldsError):
        FieldSet.from_fields_v1({"x:bad": {}})


def test_an_apply_creates_and_owns_exactly_what_it_sent():
    obj, entries = mf.apply(DEPLOYMENTS, None, deployment(), "kubectl", False, T0)
    assert obj["spec"]["replicas"] == 2
    [entry] = mf.encode(entries)
    assert (entry["manager"], entry["operation"], entry["time"]) == ("kubectl", "Apply", T0)
    containers = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert containers == {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}, "f:ports": {
        'k:{"containerPort":80,"protocol":"TCP"}': {".": {}, "f:containerPort": {}}}}}  # protocol: its default
    assert "f:metadata" not in entry["fieldsV1"] or "f:name" not in entry["fieldsV1"]["f:metadata"]


def test_the_same_apply_twice_changes_nothing():
    obj, entries = mf.apply(DEPLOYMENTS, None, deployment(), "kubectl", False, T0)
    again, entries_again = mf.apply(DEPLOYMENTS, stored(obj, entries), deployment(), "kubectl", False, T1)
    assert again == obj and mf.encode(entries_again) == mf.encode(entries)  # the time stays T0


def test_a_second_manager_changing_an_owned_field_conflicts_in_kubernetes_words():
    obj, entries = mf.apply(DEPLOYMENTS, None, deployment(), "kubectl", False, T0)
    with pytest.raises(mf.ApplyConflict) as conflict:
        mf.apply(DEPLOYMENTS, stored(obj, entries), deployment(replicas=5), "other", False, T1)
    assert conflict.value.message() == 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas'
    assert conflict.value.causes() == [{"reason": "FieldManagerConflict", "message": 'conflict with "kubectl"',
                                        "field": ".spec.replicas"}]


def test_conflicts_with_an_updater_name_its_api_version_and_list_every_field():
    created = deployment()
    entries = mf.update(DEPLOYMENTS, None, created, "kubectl-create", T0)
    with pytest.raises(mf.ApplyConflict) as conflict:
        mf.apply(DEPLOYMENTS, stored(created, entries), deployment(replicas=3, image="nginx:2"), "kubectl", False, T1)
    assert conflict.value.message() == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-create" using apps/v1:\n'
        '- .spec.replicas\n- .spec.template.spec.containers[name="web"].image')


def test_force_takes_the_field_over_and_the_same_value_is_shared_without_conflict():
    obj, entries = mf.apply(DEPLOYMENTS, None, deployment(), "kubectl", False, T0)
    forced, entries = mf.apply(DEPLOYMENTS, stored(obj, entries), deployment(replicas=5), "other", True, T1)
    assert forced["spec"]["replicas"] == 5
    assert ".spec.replicas" in owners(entries)["other"] and ".spec.replicas" not in owners(entries)["kubectl"]
    shared, entries = mf.apply(DEPLOYMENTS, stored(forced, entries), deployment(replicas=5), "third", False, T2)
    assert shared == forced  # same value: both own it, nothing changes
    assert ".spec.template.spec.containers[name=\"web\"].image" in owners(entries)["third"]


def test_a_field_the_manager_stops_applying_is_removed_unless_another_owns_it():
    obj, entries = mf.apply(DEPLOYMENTS, None, deployment(), "kubectl", False, T0)
    replicas_only = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                     "spec": {"replicas": 5}}
    obj, entries = mf.apply(DEPLOYMENTS, stored(obj, entries), replicas_only, "hpa", True, T1)
    obj, entries = mf.apply(DEPLOYMENTS, stored(obj, entries), deployment(replicas=None, ports=False), "kubectl",
                            False, T2)
    assert obj["spec"]["replicas"] == 5  # the hpa still owns it
    assert "ports" not in obj["spec"]["template"]["spec"]["containers"][0]  # nobody does


def test_an_update_moves_the_changed_fields_to_its_manager():
    obj, entries = mf.apply(DEPLOYMENTS, None, deployment(), "kubectl", False, T0)
    changed = copy.deepcopy(obj)
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    entries = mf.update(DEPLOYMENTS, stored(obj, entries), changed, "kubectl-set", T1)
    assert owners(entries)["kubectl-set"] == ['.spec.template.spec.containers[name="web"].image']
    assert '.spec.template.spec.containers[name="web"].image' not in owners(entries)["kubectl"]


def test_status_is_never_owned_through_the_main_resource_and_only_status_through_status():
    obj = {**deployment(), "status": {"replicas": 1}}
    entries = mf.update(DEPLOYMENTS, None, obj, "kubectl-create", T0)
    assert not any(path.startswith(".status") for path in owners(entries)["kubectl-create"])
    reported = {**obj, "status": {"replicas": 2, "readyReplicas": 2}, "metadata": {"name": "web", "labels": {"a": "b"}}}
    entries = mf.update(DEPLOYMENTS, stored(obj, entries), reported, "controller", T1, subresource="status")
    status_entry = next(e for e in mf.encode(entries) if e["manager"] == "controller")
    assert status_entry["subresource"] == "status" and set(status_entry["fieldsV1"]) == {"f:status"}


def test_an_object_without_managed_fields_is_first_owned_by_before_first_apply():
    legacy = deployment()
    with pytest.raises(mf.ApplyConflict, match='conflict with "before-first-apply" using apps/v1: .spec.replicas'):
        mf.apply(DEPLOYMENTS, legacy, deployment(replicas=7), "flux", False, T0)


def test_kubectl_takes_over_what_client_side_apply_set_and_keeps_the_annotation_current():
    manifest = deployment()
    last_applied = json.dumps(manifest)
    created = copy.deepcopy(manifest)
    created["metadata"]["annotations"] = {mf.LAST_APPLIED: last_applied}
    entries = mf.update(DEPLOYMENTS, None, created, "kubectl-client-side-apply", T0)
    new, entries = mf.apply(DEPLOYMENTS, stored(created, entries), deployment(replicas=4), "kubectl", False, T1)
    assert new["spec"]["replicas"] == 4
    assert json.loads(new["metadata"]["annotations"][mf.LAST_APPLIED])["spec"]["replicas"] == 4
    with pytest.raises(mf.ApplyConflict):  # another manager gets no such allowance
        mf.apply(DEPLOYMENTS, stored(created, mf.update(DEPLOYMENTS, None, created, "kubectl-client-side-apply", T0)),
                 deployment(replicas=4), "argo", False, T1)


def test_update_managers_beyond_ten_fold_into_ancient_changes():
    obj, entries = {"metadata": {"name": "c"}, "data": {}}, []
    for i in range(12):
        new = {"metadata": {"name": "c"}, "data": {**obj["data"], f"k{i}": "v"}}
        entries = mf.update(CONFIGMAPS, stored(obj, entries), new, f"writer-{i}", f"2024-05-01T10:{i:02d}:00Z")
        obj = new
    managers = [e.manager for e in entries]
    assert len(managers) == 10 and "ancient-changes" in managers and "writer-11" in managers


def test_list_maps_merge_by_key_in_the_applied_order_and_sets_merge_as_sets():
    shape = typed.kind_shape(types.kind("", "v1", "Pod"))
    live = {"metadata": {"finalizers": ["a"]},
            "spec": {"containers": [{"name": "x", "image": "1"}, {"name": "side", "image": "s"}]}}
    config = {"metadata": {"finalizers": ["b"]}, "spec": {"containers": [{"name": "new", "image": "n"},
                                                                         {"name": "x", "image": "2"}]}}
    merged = typed.merge(live, config, shape)
    assert [c["name"] for c in merged["spec"]["containers"]] == ["new", "x", "side"]
    assert merged["spec"]["containers"][1] == {"name": "x", "image": "2"}
    assert merged["metadata"]["finalizers"] == ["a", "b"]
    with pytest.raises(typed.ShapeError, match="has no 'name'"):
        typed.merge(live, {"spec": {"containers": [{"image": "n"}]}}, shape)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_applies_either_succeed_consistently_or_fail_with_a_typed_error(data):
    """Any applied configuration gives an object plus readable managedFields, or a ShapeError /
    ApplyConflict; applying the result's own configuration again changes nothing."""
    kind = data.draw(st.sampled_from([("apps", "v1", "Deployment"), ("", "v1", "Pod"), ("", "v1", "Service"),
                                      ("", "v1", "ConfigMap")]))
    msg = types.kind(*kind)
    ctx = mf.Context(msg, f"{kind[0]}/{kind[1]}" if kind[0] else kind[1], has_status=kind[2] != "ConfigMap")
    first, second = data.draw(objects_of(msg)), data.draw(objects_of(msg))
    for bad in (first, second):
        (bad.get("metadata") or {}).pop("managedFields", None)
    try:
        obj, entries = mf.apply(ctx, None, first, "one", False, T0)
        live = stored(obj, entries)
        mf.decode(live["metadata"]["managedFields"])
        obj2, entries2 = mf.apply(ctx, live, second, "two", data.draw(st.booleans()), T1)
    except (typed.ShapeError, mf.ApplyConflict):
        return
    again, entries3 = mf.apply(ctx, stored(obj2, entries2), second, "two", False, T2)
    assert again == obj2
    assert mf.encode(entries3) == mf.encode(entries2)
