"""Table columns for the kinds added after the first ones, as Kubernetes' printers show them
(pkg/printers/internalversion): Secrets, ServiceAccounts, ConfigMaps, volumes, DaemonSets,
StatefulSets, Jobs, CronJobs, autoscalers, budgets, StorageClasses, Leases, EndpointSlices and
ControllerRevisions. `-o wide` adds the priority-1 columns. Pure."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from orchestrator.api import timestamps
from orchestrator.apiserver.tables import _age, _containers, _meta, _selector_text, human_age

ACCESS_MODES = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}


def _spec(obj: dict) -> dict:
    return obj.get("spec") or {}


def _status(obj: dict) -> dict:
    return obj.get("status") or {}


def _modes(modes) -> str:
    return ",".join(ACCESS_MODES.get(m, m) for m in modes or []) or ""


def _when(stamp: str | None) -> str:
    return human_age(stamp[:19] + "Z" if stamp and len(stamp) > 20 else stamp) if stamp else "<none>"


def _secret_row(obj: dict) -> list[Any]:
    return [_meta(obj).get("name"), obj.get("type", "Opaque"), len(obj.get("data") or {}), _age(obj)]


def _configmap_row(obj: dict) -> list[Any]:
    return [_meta(obj).get("name"), len(obj.get("data") or {}) + len(obj.get("binaryData") or {}), _age(obj)]


def _service_account_row(obj: dict) -> list[Any]:
    return [_meta(obj).get("name"), len(obj.get("secrets") or []), _age(obj)]


def _pv_row(obj: dict) -> list[Any]:
    spec, claim = _spec(obj), _spec(obj).get("claimRef") or {}
    bound = f"{claim.get('namespace')}/{claim.get('name')}" if claim.get("name") else ""
    return [_meta(obj).get("name"), (spec.get("capacity") or {}).get("storage", ""), _modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), _status(obj).get("phase", ""), bound,
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>",
            _status(obj).get("reason", ""), _age(obj), spec.get("volumeMode", "Filesystem")]


def _pvc_row(obj: dict) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    return [_meta(obj).get("name"), status.get("phase", "Pending"), spec.get("volumeName", ""),
            (status.get("capacity") or {}).get("storage", ""), _modes(status.get("accessModes")),
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>", _age(obj),
            spec.get("volumeMode", "Filesystem")]


def _daemonset_row(obj: dict) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    node_selector = ((spec.get("template") or {}).get("spec") or {}).get("nodeSelector") or {}
    names, images = _containers(obj)
    return [_meta(obj).get("name"), status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or "<none>", _age(obj), names, images,
            _selector_text(spec.get("selector"))]


def _statefulset_row(obj: dict) -> list[Any]:
    names, images = _containers(obj)
    return [_meta(obj).get("name"), f"{_status(obj).get('readyReplicas', 0)}/{_spec(obj).get('replicas', 1)}",
            _age(obj), names, images]


def _job_state(obj: dict) -> str:
    for condition in _status(obj).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed", "Suspended",
                                                                          "FailureTarget", "SuccessCriteriaMet"):
            return {"FailureTarget": "FailureTarget", "SuccessCriteriaMet": "SuccessCriteriaMet"}.get(
                condition["type"], condition["type"])
    return "Running"


def _job_row(obj: dict, now: datetime | None = None) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    completions = spec.get("completions")
    done = f"{status.get('succeeded', 0)}/{completions}" if completions is not None \
        else f"{status.get('succeeded', 0)}/1 of {spec.get('parallelism', 1)}"
    started, finished = timestamps.epoch(status.get("startTime")), timestamps.epoch(status.get("completionTime"))
    if started is None:
        duration = ""
    else:
        end = finished if finished is not None else (now or datetime.now(timezone.utc)).timestamp()
        duration = human_age(status.get("startTime"), datetime.fromtimestamp(end, timezone.utc))
    names, images = _containers(obj)
    return [_meta(obj).get("name"), _job_state(obj), done, duration, _age(obj), names, images,
            _selector_text(spec.get("selector"))]


def _cronjob_row(obj: dict) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    template = {"spec": ((spec.get("jobTemplate") or {}).get("spec") or {})}
    names, images = _containers(template)
    return [_meta(obj).get("name"), spec.get("schedule", ""), spec.get("timeZone") or "<none>",
            str(bool(spec.get("suspend"))), len(status.get("active") or []), _when(status.get("lastScheduleTime")),
            _age(obj), names, images, _selector_text((template["spec"]).get("selector"))]


def _metric_text(spec_metric: dict, current: dict | None) -> str:
    kind = spec_metric.get("type")
    source = spec_metric.get({"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
                              "Object": "object", "External": "external"}.get(kind, ""), {}) or {}
    target = source.get("target") or {}
    name = source.get("name") or (source.get("metric") or {}).get("name", "")
    now = ((current or {}).get(kind[0].lower() + kind[1:] if kind else "", {}) or {}).get("current") or {}
    if target.get("type") == "Utilization":
        shown = f"{now['averageUtilization']}%" if "averageUtilization" in now else "<unknown>"
        return f"{name}: {shown}/{target.get('averageUtilization')}%"
    wanted = target.get("averageValue") or target.get("value")
    shown = now.get("averageValue") or now.get("value") or "<unknown>"
    return f"{name}: {shown}/{wanted}"


def _hpa_row(obj: dict) -> list[Any]:
    spec, status = _spec(obj), _status(obj)
    ref = spec.get("scaleTargetRef") or {}
    currents = status.get("currentMetrics") or []
    metrics = spec.get("metrics") or []
    targets = [_metric_text(m, currents[i] if i < len(currents) else None) for i, m in enumerate(metrics)]
    shown = ", ".join(targets[:2]) + (f" + {len(targets) - 2} more..." if len(targets) > 2 else "")
    return [_meta(obj).get("name"), f"{ref.get('kind')}/{ref.get('name')}", shown or "<none>",
            spec.get("minReplicas", 1), spec.get("maxReplicas"), status.get("currentReplicas", 0), _age(obj)]


def _pdb_row(obj: dict) -> list[Any]:
    spec = _spec(obj)
    return [_meta(obj).get("name"), spec.get("minAvailable", "N/A"), spec.get("maxUnavailable", "N/A"),
            _status(obj).get("disruptionsAllowed", 0), _age(obj)]


def _storage_class_row(obj: dict) -> list[Any]:
    name = _meta(obj).get("name")
    if (_meta(obj).get("annotations") or {}).get("storageclass.kubernetes.io/is-default-class") == "true":
        name = f"{name} (default)"
    return [name, obj.get("provisioner", ""), obj.get("reclaimPolicy", "Delete"),
            obj.get("volumeBindingMode", "Immediate"), str(bool(obj.get("allowVolumeExpansion"))).lower(), _age(obj)]


def _lease_row(obj: dict) -> list[Any]:
    return [_meta(obj).get("name"), _spec(obj).get("holderIdentity", ""), _age(obj)]


def _endpointslice_row(obj: dict) -> list[Any]:
    ports = ",".join(str(p.get("port")) for p in obj.get("ports") or [] if p.get("port")) or "<unset>"
    addresses = [a for e in obj.get("endpoints") or [] for a in e.get("addresses") or []]
    shown = ",".join(addresses[:3]) + (f" + {len(addresses) - 3} more..." if len(addresses) > 3 else "")
    return [_meta(obj).get("name"), obj.get("addressType", ""), ports, shown or "<unset>", _age(obj)]


def _revision_row(obj: dict) -> list[Any]:
    owner = next((o for o in _meta(obj).get("ownerReferences") or [] if o.get("controller")), None)
    controller = f"{owner['kind'].lower()}.{owner['apiVersion'].split('/')[0]}/{owner['name']}" if owner else "<none>"
    return [_meta(obj).get("name"), controller, obj.get("revision", 0), _age(obj)]


def _columns(*names: str, wide: tuple[str, ...] = ()) -> list[tuple[str, str, int]]:
    return [(name, "string", 0) for name in names] + [(name, "string", 1) for name in wide]


PRINTERS = {
    "Secret": (_columns("Name", "Type", "Data", "Age"), _secret_row),
    "ConfigMap": (_columns("Name", "Data", "Age"), _configmap_row),
    "ServiceAccount": (_columns("Name", "Secrets", "Age"), _service_account_row),
    "PersistentVolume": (_columns("Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim",
                                  "StorageClass", "VolumeAttributesClass", "Reason", "Age", wide=("VolumeMode",)),
                         _pv_row),
    "PersistentVolumeClaim": (_columns("Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass",
                                       "VolumeAttributesClass", "Age", wide=("VolumeMode",)), _pvc_row),
    "DaemonSet": (_columns("Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age",
                           wide=("Containers", "Images", "Selector")), _daemonset_row),
    "StatefulSet": (_columns("Name", "Ready", "Age", wide=("Containers", "Images")), _statefulset_row),
    "Job": (_columns("Name", "Status", "Completions", "Duration", "Age", wide=("Containers", "Images", "Selector")),
            _job_row),
    "CronJob": (_columns("Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age",
                         wide=("Containers", "Images", "Selector")), _cronjob_row),
    "HorizontalPodAutoscaler": (_columns("Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"),
                                _hpa_row),
    "PodDisruptionBudget": (_columns("Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"),
                            _pdb_row),
    "StorageClass": (_columns("Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion",
                              "Age"), _storage_class_row),
    "Lease": (_columns("Name", "Holder", "Age"), _lease_row),
    "EndpointSlice": (_columns("Name", "AddressType", "Ports", "Endpoints", "Age"), _endpointslice_row),
    "ControllerRevision": (_columns("Name", "Controller", "Revision", "Age"), _revision_row),
}
