"""Admission of the kinds added for tutorials, the two-shape resources, and their Table columns."""

from __future__ import annotations

import base64

import pytest

from orchestrator.api.resources import BY_PATH
from orchestrator.apiserver import admission, errors, objects, tables, views


def resource(group: str, version: str, plural: str):
    return BY_PATH[(group, version, plural)]


def created(group: str, version: str, plural: str, body: dict) -> dict:
    r = resource(group, version, plural)
    obj = objects.prepare_create(r, body, "default" if r.namespaced else None)
    admission.apply_defaults(r, obj)
    admission.validate(r, obj)
    return obj


def pod_template(restart: str = "Never") -> dict:
    return {"metadata": {"labels": {"app": "x"}},
            "spec": {"restartPolicy": restart, "containers": [{"name": "c", "image": "busybox"}]}}


def test_a_secret_folds_string_data_into_data_and_defaults_its_type():
    secret = created("", "v1", "secrets", {"metadata": {"name": "s"}, "stringData": {"user": "me"}})
    assert secret["type"] == "Opaque" and "stringData" not in secret
    assert base64.b64decode(secret["data"]["user"]) == b"me"
    with pytest.raises(errors.APIError, match=r"data\[tls.key\]: Required value"):
        created("", "v1", "secrets", {"metadata": {"name": "t"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}})


def test_a_job_gets_kubernetes_defaults_and_a_generated_selector_and_labels():
    job = created("batch", "v1", "jobs", {"metadata": {"name": "once"}, "spec": {"template": pod_template()}})
    uid = job["metadata"]["uid"]
    assert (job["spec"]["completions"], job["spec"]["parallelism"], job["spec"]["backoffLimit"]) == (1, 1, 6)
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert job["spec"]["template"]["metadata"]["labels"]["job-name"] == "once"
    with pytest.raises(errors.APIError, match='restartPolicy: Unsupported value: "Always"'):
        created("batch", "v1", "jobs", {"metadata": {"name": "bad"}, "spec": {"template": pod_template("Always")}})


@pytest.mark.parametrize("plural,group,body,cause", [
    ("cronjobs", "batch", {"spec": {"jobTemplate": {"spec": {"template": pod_template()}}}}, "spec.schedule"),
    ("horizontalpodautoscalers", "autoscaling", {"spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"},
                                                          "maxReplicas": 0}}, "spec.maxReplicas"),
    ("daemonsets", "apps", {"spec": {"template": pod_template("Always")}}, "spec.selector"),
    ("persistentvolumeclaims", "", {"spec": {"accessModes": ["ReadWriteOnce"]}}, "spec.resources[storage]"),
    ("storageclasses", "storage.k8s.io", {}, "provisioner"),
])
def test_validation_names_the_field(plural, group, body, cause):
    version = "v2" if plural == "horizontalpodautoscalers" else "v1"
    with pytest.raises(errors.APIError) as err:
        created(group, version, plural, {"metadata": {"name": "x"}, **body})
    assert cause in [c["field"] for c in err.value.details["causes"]]


def test_an_immutable_configmap_keeps_its_data():
    configmaps = resource("", "v1", "configmaps")
    current = created("", "v1", "configmaps", {"metadata": {"name": "c"}, "immutable": True, "data": {"a": "1"}})
    with pytest.raises(errors.APIError, match="field is immutable when `immutable` is set"):
        admission.validate_update(configmaps, current, {**current, "data": {"a": "2"}})


def test_events_k8s_io_is_a_view_of_core_events():
    core = {"metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi",
            "reportingComponent": "sched", "count": 2, "reason": "Scheduled"}
    newer = objects.with_type(resource("events.k8s.io", "v1", "events"), core)
    assert (newer["regarding"], newer["note"], newer["reportingController"], newer["deprecatedCount"]) == \
        ({"kind": "Pod", "name": "p"}, "hi", "sched", 2)
    assert newer["apiVersion"] == "events.k8s.io/v1"
    assert objects.stored_form(resource("events.k8s.io", "v1", "events"), newer) == {**core, "kind": "Event",
                                                                                     "apiVersion": "events.k8s.io/v1"}


def test_autoscaling_v1_keeps_what_it_cannot_express_in_annotations():
    v2 = {"metadata": {"name": "h"}, "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 4,
                                              "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                                                  "type": "Utilization", "averageUtilization": 70}}},
                                                          {"type": "Pods", "pods": {"metric": {"name": "qps"}}}]}}
    v1 = views.hpa_to_v1(v2)
    assert v1["spec"]["targetCPUUtilizationPercentage"] == 70
    assert views.METRICS_ANNOTATION in v1["metadata"]["annotations"]
    assert views.hpa_from_v1(v1) == v2


@pytest.mark.parametrize("kind,obj,header,cells", [
    ("Secret", {"metadata": {"name": "s"}, "type": "Opaque", "data": {"a": "", "b": ""}},
     ["Name", "Type", "Data", "Age"], ["s", "Opaque", 2]),
    ("HorizontalPodAutoscaler", {"metadata": {"name": "h"}, "spec": {
        "scaleTargetRef": {"kind": "Deployment", "name": "w"}, "maxReplicas": 3, "metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                        "averageUtilization": 80}}}]}},
     ["Name", "Reference", "Targets", "MinPods", "MaxPods"], ["h", "Deployment/w", "cpu: <unknown>/80%", 1, 3]),
    ("CronJob", {"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {}}}},
     ["Name", "Schedule", "Timezone", "Suspend", "Active"], ["c", "*/5 * * * *", "<none>", "False", 0]),
])
def test_tables_show_kubernetes_columns(kind, obj, header, cells):
    shown = tables.table(kind, [obj], "1")
    assert [c["name"] for c in shown["columnDefinitions"]][:len(header)] == header
    assert shown["rows"][0]["cells"][:len(cells)] == cells


def test_defaults_never_add_a_field_the_kind_does_not_have():
    """Every default lands on a field of the kind's description (a ReplicaSet has no
    revisionHistoryLimit), so later patches are not warned about fields nobody sent."""
    from orchestrator.api import types
    from orchestrator.apiserver import fieldvalidation

    workload = {"spec": {"selector": {"matchLabels": {"app": "x"}}, "template": pod_template("Always")}}
    cases = [("apps", "v1", "replicasets", workload), ("apps", "v1", "deployments", workload),
             ("apps", "v1", "statefulsets", workload), ("apps", "v1", "daemonsets", workload),
             ("batch", "v1", "jobs", {"spec": {"template": pod_template()}}),
             ("", "v1", "services", {"spec": {"ports": [{"port": 80}]}}),
             ("", "v1", "namespaces", {})]
    for group, version, plural, body in cases:
        obj = created(group, version, plural, {"metadata": {"name": "x"}, **body})
        r = resource(group, version, plural)
        assert fieldvalidation.check(obj, types.kind(r.group, r.version, r.kind))[1] == [], plural
