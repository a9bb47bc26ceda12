"""Ephemeral containers: what the API server takes through pods/NAME/ephemeralcontainers and
what it refuses (each refusal a 422 cause naming the field)."""

from __future__ import annotations

import pytest

from orchestrator.api.resources import BY_KIND
from orchestrator.apiserver import admission, ephemeral, errors, objects

PODS = BY_KIND[("", "Pod")]
DEBUGGER = {"name": "debugger", "image": "busybox", "targetContainerName": "web", "stdin": True, "tty": True}


def pod(*ephemeral_containers) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "5",
                         "creationTimestamp": "2026-11-29T10:00:00Z"},
            "spec": {"containers": [{"name": "web", "image": "busybox"}],
                     "initContainers": [{"name": "setup", "image": "busybox"}],
                     **({"ephemeralContainers": list(ephemeral_containers)} if ephemeral_containers else {})},
            "status": {"phase": "Running", "podIP": "10.244.1.5"}}


def refused(check) -> list[tuple[str, str]]:
    """(field, message) of each cause of the 422 that check() raised; none if it passed."""
    try:
        check()
    except errors.APIError as err:
        return [(c["field"], c["message"]) for c in err.details["causes"]]
    return []


def causes(current: dict, new: dict, subresource: str | None = ephemeral.SUBRESOURCE) -> list[tuple[str, str]]:
    """What an update of `current` to `new` through `subresource` is refused for."""
    stored = objects.prepare_update(PODS, current, new, subresource)
    admission.apply_defaults(PODS, stored)
    return refused(lambda: admission.validate_update(PODS, current, stored, subresource))


def test_the_subresource_adds_a_container_and_changes_nothing_else():
    current = pod()
    proposed = pod(DEBUGGER)
    proposed["spec"]["containers"][0]["image"] = "nginx"
    proposed["metadata"]["labels"] = {"sneaked": "in"}
    proposed["status"] = {"phase": "Failed"}
    stored = objects.prepare_update(PODS, current, proposed, ephemeral.SUBRESOURCE)
    assert stored["spec"]["ephemeralContainers"][0]["name"] == "debugger"
    assert stored["spec"]["containers"] == current["spec"]["containers"]
    assert "labels" not in stored["metadata"] and stored["status"] == current["status"]
    assert causes(current, proposed) == []


@pytest.mark.parametrize("container, field, message", [
    ({**DEBUGGER, "name": "web"}, "spec.ephemeralContainers[0].name", 'Duplicate value: "web"'),
    ({**DEBUGGER, "name": "setup"}, "spec.ephemeralContainers[0].name", 'Duplicate value: "setup"'),
    ({**DEBUGGER, "image": ""}, "spec.ephemeralContainers[0].image", "Required value"),
    ({**DEBUGGER, "targetContainerName": "nginx"}, "spec.ephemeralContainers[0].targetContainerName",
     'Not found: "nginx"'),
    ({**DEBUGGER, "ports": [{"containerPort": 80}]}, "spec.ephemeralContainers[0].ports",
     "Forbidden: cannot be set for an Ephemeral Container"),
    ({**DEBUGGER, "readinessProbe": {"exec": {"command": ["true"]}}}, "spec.ephemeralContainers[0].readinessProbe",
     "Forbidden: cannot be set for an Ephemeral Container"),
    ({**DEBUGGER, "resources": {"limits": {"cpu": "1"}}}, "spec.ephemeralContainers[0].resources",
     "Forbidden: cannot be set for an Ephemeral Container"),
])
def test_a_bad_ephemeral_container_is_refused_naming_the_field(container, field, message):
    assert causes(pod(), pod(container)) == [(field, message)]


def test_an_added_ephemeral_container_may_be_neither_changed_nor_removed():
    current = objects.prepare_update(PODS, pod(), pod(DEBUGGER), ephemeral.SUBRESOURCE)
    admission.apply_defaults(PODS, current)
    changed = pod({**DEBUGGER, "image": "alpine"})
    assert causes(current, changed) == [
        ("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "debugger" may not be changed')]
    assert causes(current, pod()) == [
        ("spec.ephemeralContainers", 'Forbidden: existing ephemeral containers "debugger" may not be removed')]
    second = {**DEBUGGER, "name": "debugger-2"}
    assert causes(current, {**current, "spec": {**current["spec"], "ephemeralContainers": [
        *current["spec"]["ephemeralContainers"], second]}}) == []


def test_an_update_of_the_pod_itself_may_not_touch_ephemeral_containers():
    found = causes(pod(), pod(DEBUGGER), subresource=None)
    assert [field for field, _ in found] == ["spec.ephemeralContainers"]
    assert "ephemeralcontainers subresource" in found[0][1]
    labelled = pod()
    labelled["metadata"]["labels"] = {"app": "web"}
    assert causes(pod(), labelled, subresource=None) == []


def test_a_pod_is_not_created_with_ephemeral_containers_nor_a_template_holding_one():
    assert refused(lambda: admission.validate_create(PODS, pod(DEBUGGER))) == [
        ("spec.ephemeralContainers", "Forbidden: cannot be set on create")]
    deployments = BY_KIND[("apps", "Deployment")]
    template_spec = {**pod(DEBUGGER)["spec"]}
    template_spec["ephemeralContainers"] = [{k: v for k, v in DEBUGGER.items() if k != "targetContainerName"}]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}}, "spec": template_spec}}}
    assert ("spec.template.spec.ephemeralContainers",
            "Forbidden: ephemeral containers are added to running pods, not to templates") in \
        refused(lambda: admission.validate_create(deployments, deployment))


@pytest.mark.parametrize("change, field, message", [
    ({"containers": [{"name": "Web_1", "image": "busybox"}]}, "spec.containers[0].name", 'Invalid value: "Web_1"'),
    ({"containers": [{"name": "../../etc", "image": "busybox"}]}, "spec.containers[0].name", "Invalid value"),
    ({"containers": [{"name": ["web"], "image": "busybox"}]}, "spec.containers[0].name", "Invalid value"),
    ({"hostPID": True, "shareProcessNamespace": True}, "spec.shareProcessNamespace",
     "ShareProcessNamespace and HostPID cannot both be enabled"),
])
def test_names_that_would_become_paths_and_contradictions_are_refused(change, field, message):
    body = pod()
    body["spec"].update(change)
    found = refused(lambda: admission.validate_create(PODS, body))
    assert [f for f, _ in found] == [field] and message in found[0][1]


def test_odd_ephemeral_values_are_422_causes_not_crashes():
    assert [f for f, _ in causes(pod(), pod({**DEBUGGER, "targetContainerName": {"a": 1}}))] == [
        "spec.ephemeralContainers[0].targetContainerName"]
    assert [f for f, _ in causes(pod(), pod({**DEBUGGER, "name": ["x"]}))] == ["spec.ephemeralContainers[0].name"]
    assert causes(pod(), pod({**DEBUGGER, "targetContainerName": ""})) == []  # empty: no target, as Kubernetes reads it
