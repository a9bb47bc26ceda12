"""Label and field selectors, every operator kubectl and the components use."""

import pytest

from orchestrator.api.selectors import (
    SelectorError,
    fields_match,
    labels_match,
    parse_field_selector,
    parse_label_selector,
)

POD = {"metadata": {"name": "p", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
       "spec": {"nodeName": "node-1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize("selector,expected", [
    ("app=web", True), ("app==web", True), ("app!=web", False), ("app=db", False),
    ("tier in (front,back)", True), ("tier notin (front)", False), ("tier notin (back)", True),
    ("app", True), ("!app", False), ("!missing", True), ("missing", False), ("missing!=x", True),
    ("app=web,tier in (front),!missing", True), ("app=web,tier=back", False), ("", True),
])
def test_label_selectors(selector, expected):
    assert labels_match(parse_label_selector(selector), POD) is expected


@pytest.mark.parametrize("selector,expected", [
    ("metadata.name=p", True), ("metadata.namespace==default", True), ("spec.nodeName=node-1", True),
    ("spec.nodeName=", False), ("status.phase!=Succeeded,status.phase!=Failed", True),
    ("status.phase=Pending", False),
])
def test_pod_field_selectors(selector, expected):
    assert fields_match(parse_field_selector(selector, "Pod"), POD) is expected


def test_unscheduled_pods_match_an_empty_node_name():
    assert fields_match(parse_field_selector("spec.nodeName=", "Pod"), {"metadata": {}, "spec": {}})


def test_event_involved_object_fields():
    event = {
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default", "uid": "u"},
    }
    assert fields_match(
        parse_field_selector(
            "involvedObject.name=p,involvedObject.kind=Pod,involvedObject.uid=u,involvedObject.namespace=default",
            "Event",
        ),
        event,
    )


@pytest.mark.parametrize(
    "selector, message",
    [("spec.nodeName=x", "field label not supported: spec.nodeName"), ("nonsense", "can't understand 'nonsense'")],
)
def test_unsupported_field_selectors_are_refused_with_kubernetes_words(selector, message):
    with pytest.raises(SelectorError, match=message):
        parse_field_selector(selector, "ConfigMap")


def test_a_malformed_label_key_is_refused():
    with pytest.raises(SelectorError, match="invalid label key"):
        parse_label_selector("a b=c")
