"""Field validation: wrong types are refused, unknown and duplicate fields found with their paths
and dropped, in Kubernetes' words."""

from __future__ import annotations

import orjson
import pytest

from orchestrator.api import types
from orchestrator.apiserver import fieldvalidation as fv

DEPLOYMENT = types.kind("apps", "v1", "Deployment")


def test_unknown_fields_are_dropped_and_named_with_their_paths():
    body = {"metadata": {"name": "web", "labelz": {}}, "spec": {"replicass": 2, "template": {"spec": {
        "containers": [{"name": "c", "image": "x"}, {"name": "d", "imagee": "y"}]}}}}
    cleaned, unknown = fv.check(body, DEPLOYMENT)
    assert unknown == ["metadata.labelz", "spec.replicass", "spec.template.spec.containers[1].imagee"]
    assert cleaned == {"metadata": {"name": "web"}, "spec": {"template": {"spec": {
        "containers": [{"name": "c", "image": "x"}, {"name": "d"}]}}}}


def test_free_form_maps_and_embedded_structs_are_not_unknown():
    pod = {"metadata": {"labels": {"any/key": "v"}, "annotations": {"x": "y"}},
           "spec": {"containers": [], "volumes": [{"name": "v", "emptyDir": {}, "configMap": {"name": "cm"}}]}}
    assert fv.check(pod, types.kind("", "v1", "Pod")) == (pod, [])


@pytest.mark.parametrize("body,message", [
    ({"spec": {"replicas": "3"}},
     "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ({"spec": {"paused": 1}},
     "json: cannot unmarshal number into Go struct field DeploymentSpec.spec.paused of type bool"),
    ({"metadata": {"labels": ["a"]}},
     "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    ({"spec": {"replicas": 2**40}}, "of type int32"),
    ({"metadata": {"creationTimestamp": "yesterday"}}, "of type v1.Time"),
])
def test_a_value_of_the_wrong_type_is_refused_as_go_would(body, message):
    with pytest.raises(fv.FieldTypeError, match=message.replace("[", r"\[").replace("]", r"\]")):
        fv.check(body, DEPLOYMENT)


def test_quantities_sent_as_numbers_are_stored_as_strings():
    pod = {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": 2, "memory": 0.5}}}]}}
    cleaned, _ = fv.check(pod, types.kind("", "v1", "Pod"))
    assert cleaned["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "0.5"}


def test_duplicate_fields_are_found_in_json_and_yaml():
    raw = b'{"spec": {"replicas": 1, "template": {}, "replicas": 2}, "note": "a\\":b"}'
    assert fv.duplicate_fields_json(raw, orjson.loads(raw)) == ["spec.replicas"]
    clean = b'{"a": "x\\":", "b": {"c": 1}}'
    assert fv.duplicate_fields_json(clean, orjson.loads(clean)) == []
    assert fv.duplicate_fields_yaml(b"spec:\n  replicas: 1\n  replicas: 2\n") == ["spec.replicas"]


def test_messages_read_as_kubernetes_writes_them():
    found = fv.problems(["spec.replicass"], ["spec.replicas"])
    assert fv.strict_message("Deployment", "v1", found) == (
        'Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: '
        'duplicate field "spec.replicas", unknown field "spec.replicass"')
    assert fv.directive(None) == "Warn"
    with pytest.raises(ValueError):
        fv.directive("Loose")
