"""Admission for the kinds tutorials use after the first ones: Secrets, DaemonSets, StatefulSets,
Jobs, CronJobs, HorizontalPodAutoscalers, PodDisruptionBudgets, volumes and StorageClasses (pure).

Defaults are Kubernetes' own (pkg/apis/*/v1 defaults), so `kubectl describe` and the workload
controllers read what they expect; validation keeps the rules users meet first. A Job gets a
generated selector and the controller-uid / job-name labels on its template, as Kubernetes' job
strategy gives it. A Secret's write-only stringData is folded into data (base64), as the API
server's conversion does. Updates may not change an immutable ConfigMap's or Secret's data, nor a
Secret's type.
"""

from __future__ import annotations

import base64
import re

from orchestrator.apiserver import admission as base

SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
SECRET_REQUIRED_KEYS = {"kubernetes.io/tls": ("tls.crt", "tls.key"),
                        "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
                        "kubernetes.io/basic-auth": (), "kubernetes.io/ssh-auth": ("ssh-privatekey",)}
MAX_SECRET_BYTES = 1024 * 1024
JOB_UID_LABEL, JOB_NAME_LABEL = "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name"


def _template_spec(template) -> dict | None:
    if isinstance(template, dict) and isinstance(template.get("spec"), dict):
        return template["spec"]
    return None


# --- defaults -------------------------------------------------------------------------------------


def default_secret(obj: dict) -> None:
    obj.setdefault("type", "Opaque")
    folded = obj.pop("stringData", None)
    if isinstance(folded, dict):
        data = obj.setdefault("data", {}) or {}
        obj["data"] = data
        for key, value in folded.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def default_daemonset(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        rolling = strategy.setdefault("rollingUpdate", {})
        rolling.setdefault("maxUnavailable", 1)
        rolling.setdefault("maxSurge", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    _default_template(spec.get("template"))


def default_statefulset(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("replicas", 1)
    spec.setdefault("podManagementPolicy", "OrderedReady")
    strategy = spec.setdefault("updateStrategy", {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
    spec.setdefault("revisionHistoryLimit", 10)
    retention = spec.setdefault("persistentVolumeClaimRetentionPolicy", {})
    retention.setdefault("whenDeleted", "Retain")
    retention.setdefault("whenScaled", "Retain")
    _default_template(spec.get("template"))


def default_job(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    spec.setdefault("parallelism", 1)
    if spec.get("backoffLimitPerIndex") is None:
        spec.setdefault("backoffLimit", 6)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    spec.setdefault("podReplacementPolicy", "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed")
    meta = obj.get("metadata") or {}
    template = spec.get("template")
    if not spec.get("manualSelector") and meta.get("uid") and isinstance(template, dict):
        uid, name = meta["uid"], meta.get("name", "")
        spec.setdefault("selector", {"matchLabels": {JOB_UID_LABEL: uid}})
        labels = template.setdefault("metadata", {}).setdefault("labels", {})
        for key, value in ((JOB_UID_LABEL, uid), (JOB_NAME_LABEL, name), ("controller-uid", uid), ("job-name", name)):
            labels.setdefault(key, value)
    _default_template(template)


def default_cronjob(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("concurrencyPolicy", "Allow")
    spec.setdefault("suspend", False)
    spec.setdefault("successfulJobsHistoryLimit", 3)
    spec.setdefault("failedJobsHistoryLimit", 1)
    job_spec = (spec.get("jobTemplate") or {}).get("spec")
    if isinstance(job_spec, dict):
        _default_template(job_spec.get("template"))


def default_hpa(obj: dict) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]


def default_persistent_volume(obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    if isinstance(spec, dict):
        spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
        spec.setdefault("volumeMode", "Filesystem")


def default_claim(obj: dict) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        spec.setdefault("volumeMode", "Filesystem")


def default_storage_class(obj: dict) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _default_template(template) -> None:
    spec = _template_spec(template)
    if spec is not None:
        base.default_pod_spec(spec)


DEFAULTS = {"Secret": default_secret, "DaemonSet": default_daemonset, "StatefulSet": default_statefulset,
            "Job": default_job, "CronJob": default_cronjob, "HorizontalPodAutoscaler": default_hpa,
            "PersistentVolume": default_persistent_volume, "PersistentVolumeClaim": default_claim,
            "StorageClass": default_storage_class}


# --- validation -----------------------------------------------------------------------------------


def validate_secret(obj: dict, causes: base.Causes) -> None:
    data = obj.get("data") or {}
    total = 0
    for key, value in data.items():
        if not SECRET_KEY.match(key):
            base._bad(causes, "data", key, "a valid config key must consist of alphanumeric characters, '-', '_' "
                      "or '.'")
        total += len(value or "") * 3 // 4
    if total > MAX_SECRET_BYTES:
        causes.append(("data", "FieldValueTooLong", f"Too long: must have at most {MAX_SECRET_BYTES} bytes"))
    for key in SECRET_REQUIRED_KEYS.get(obj.get("type"), ()):
        if key not in data:
            base._required(causes, f"data[{key}]")


def validate_selected_template(obj: dict, causes: base.Causes, replicas: bool) -> None:
    """A DaemonSet or StatefulSet: a selector that matches its template's labels, a valid pod."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        base._required(causes, "spec")
        return
    if replicas and isinstance(spec.get("replicas"), int) and spec["replicas"] < 0:
        base._bad(causes, "spec.replicas", spec["replicas"], "must be greater than or equal to 0")
    base._validate_selector_and_template(spec, causes)


def validate_job(obj: dict, causes: base.Causes, where: str = "spec") -> None:
    spec = obj.get("spec") if where == "spec" else obj
    if not isinstance(spec, dict):
        base._required(causes, where)
        return
    template = spec.get("template")
    pod = _template_spec(template)
    if pod is None:
        base._required(causes, f"{where}.template")
        return
    base._validate_pod_spec(pod, f"{where}.template.spec", causes)
    if pod.get("restartPolicy") not in ("OnFailure", "Never"):
        causes.append((f"{where}.template.spec.restartPolicy", "FieldValueNotSupported",
                       f'Unsupported value: "{pod.get("restartPolicy")}": supported values: "OnFailure", "Never"'))
    for name in ("parallelism", "completions", "backoffLimit", "activeDeadlineSeconds"):
        value = spec.get(name)
        if isinstance(value, int) and value < 0:
            base._bad(causes, f"{where}.{name}", value, "must be greater than or equal to 0")


def validate_cronjob(obj: dict, causes: base.Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        base._required(causes, "spec")
        return
    if not spec.get("schedule"):
        base._required(causes, "spec.schedule")
    elif len(str(spec["schedule"]).split()) not in (5, 6) and not str(spec["schedule"]).startswith("@"):
        base._bad(causes, "spec.schedule", spec["schedule"], "unparseable schedule: expected 5 fields")
    job_spec = (spec.get("jobTemplate") or {}).get("spec")
    if not isinstance(job_spec, dict):
        base._required(causes, "spec.jobTemplate.spec")
        return
    validate_job(job_spec, causes, "spec.jobTemplate.spec")


def validate_hpa(obj: dict, causes: base.Causes) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        base._required(causes, "spec")
        return
    target = spec.get("scaleTargetRef") or {}
    for name in ("kind", "name"):
        if not target.get(name):
            base._required(causes, f"spec.scaleTargetRef.{name}")
    high, low = spec.get("maxReplicas"), spec.get("minReplicas", 1)
    if not isinstance(high, int) or high < 1:
        base._bad(causes, "spec.maxReplicas", high, "must be greater than or equal to 1")
    elif isinstance(low, int) and not 1 <= low <= high:
        base._bad(causes, "spec.minReplicas", low, "must be greater than or equal to 1 and at most maxReplicas")


def validate_pdb(obj: dict, causes: base.Causes) -> None:
    spec = obj.get("spec") or {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        base._bad(causes, "spec", spec, "minAvailable and maxUnavailable cannot be both set")


def validate_persistent_volume(obj: dict, causes: base.Causes) -> None:
    spec = obj.get("spec") or {}
    if not (spec.get("capacity") or {}).get("storage"):
        base._required(causes, "spec.capacity")
    if not spec.get("accessModes"):
        base._required(causes, "spec.accessModes")
    sources = [name for name in ("hostPath", "nfs", "local", "csi") if spec.get(name)]
    if len(sources) != 1:
        causes.append(("spec", "FieldValueRequired", "Required value: must specify exactly one volume type"))


def validate_claim(obj: dict, causes: base.Causes) -> None:
    spec = obj.get("spec") or {}
    if not spec.get("accessModes"):
        base._required(causes, "spec.accessModes")
    if not ((spec.get("resources") or {}).get("requests") or {}).get("storage"):
        base._required(causes, "spec.resources[storage]")


def validate_storage_class(obj: dict, causes: base.Causes) -> None:
    if not obj.get("provisioner"):
        base._required(causes, "provisioner")


VALIDATORS = {"Secret": validate_secret,
              "DaemonSet": lambda obj, causes: validate_selected_template(obj, causes, replicas=False),
              "StatefulSet": lambda obj, causes: validate_selected_template(obj, causes, replicas=True),
              "Job": validate_job, "CronJob": validate_cronjob, "HorizontalPodAutoscaler": validate_hpa,
              "PodDisruptionBudget": validate_pdb, "PersistentVolume": validate_persistent_volume,
              "PersistentVolumeClaim": validate_claim, "StorageClass": validate_storage_class}


def validate_update(kind: str, current: dict, new: dict) -> list[tuple[str, str, str]]:
    """What an update may not change (Kubernetes' immutable fields for these kinds)."""
    causes: base.Causes = []
    if kind in ("ConfigMap", "Secret") and current.get("immutable"):
        for name in ("data", "binaryData", "immutable"):
            if current.get(name) != new.get(name):
                causes.append((name, "FieldValueForbidden", "Forbidden: field is immutable when `immutable` is set"))
    if kind == "Secret" and current.get("type") != new.get("type"):
        causes.append(("type", "FieldValueInvalid", f'Invalid value: "{new.get("type")}": field is immutable'))
    if kind == "Job" and (current.get("spec") or {}).get("selector") != (new.get("spec") or {}).get("selector"):
        causes.append(("spec.selector", "FieldValueInvalid", "Invalid value: field is immutable"))
    return causes
