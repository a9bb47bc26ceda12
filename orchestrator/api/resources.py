"""The resource types the API server serves: one table, read by routing, discovery and storage.

Each `Resource` says where it lives (group, version, plural), what it is called (kind,
singular, shortNames, categories), whether it is namespaced, and which subresources it has.
Storage keys are `/registry/<group or "core">/<plural>/<namespace>/<name>` (cluster-scoped:
without the namespace), as DESIGN §4 says. A resource that is another's view in a newer API group
(`events.k8s.io/v1` events are core events, as in Kubernetes) names it in `stored_as` and shares
its storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    stored: bool = True  # False: a virtual resource (reviews, bindings) that is never stored
    stored_as: tuple[str, str] | None = None  # (group, plural) of the resource whose storage this one shares

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, or `pods` for the core group: how Kubernetes names it in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage(self) -> tuple[str, str]:
        """(group, plural) under which the objects are stored."""
        return self.stored_as or (self.group, self.plural)

    def key_prefix(self, namespace: str | None = None) -> str:
        group, plural = self.storage
        base = f"/registry/{group or 'core'}/{plural}/"
        return base + f"{namespace}/" if self.namespaced and namespace else base

    def key(self, namespace: str | None, name: str) -> str:
        return self.key_prefix(namespace if self.namespaced else None) + name


RESOURCES: list[Resource] = [
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",), subresources=("status",)),
    Resource("", "v1", "nodes", "Node", False, ("no",), subresources=("status",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("all",), ("status", "binding", "log", "eviction", "exec",
                                                                   "attach", "portforward", "ephemeralcontainers")),
    Resource("", "v1", "services", "Service", True, ("svc",), ("all",), ("status",)),
    Resource("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "secrets", "Secret", True),
    Resource("", "v1", "serviceaccounts", "ServiceAccount", True, ("sa",), subresources=("token",)),
    Resource("", "v1", "persistentvolumes", "PersistentVolume", False, ("pv",), subresources=("status",)),
    Resource("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ("pvc",), subresources=("status",)),
    Resource("", "v1", "podtemplates", "PodTemplate", True),
    Resource("", "v1", "bindings", "Binding", True, verbs=("create",), stored=False),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("all",), ("status", "scale")),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("all",), ("status", "scale")),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True, ("ds",), ("all",), ("status",)),
    Resource("apps", "v1", "statefulsets", "StatefulSet", True, ("sts",), ("all",), ("status", "scale")),
    Resource("apps", "v1", "controllerrevisions", "ControllerRevision", True),
    Resource("events.k8s.io", "v1", "events", "Event", True, ("ev",), stored_as=("", "events")),
    Resource("metrics.k8s.io", "v1beta1", "nodes", "NodeMetrics", False, verbs=("get", "list"), stored=False),
    Resource("metrics.k8s.io", "v1beta1", "pods", "PodMetrics", True, verbs=("get", "list"), stored=False),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
             verbs=("create",), stored=False),
    Resource("authentication.k8s.io", "v1", "selfsubjectreviews", "SelfSubjectReview", False, verbs=("create",),
             stored=False),
    Resource("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), ("all",),
             ("status",)),
    Resource("autoscaling", "v1", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ("hpa",), ("all",),
             ("status",), stored_as=("autoscaling", "horizontalpodautoscalers")),
    Resource("batch", "v1", "jobs", "Job", True, (), ("all",), ("status",)),
    Resource("batch", "v1", "cronjobs", "CronJob", True, ("cj",), ("all",), ("status",)),
    Resource("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ("pdb",), subresources=("status",)),
    Resource("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ("sc",)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
]

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.group, r.kind): r for r in RESOURCES if r.stored_as is None}  # a kind's stored version first
for _view in RESOURCES:
    BY_KIND.setdefault((_view.group, _view.kind), _view)
STORED = [r for r in RESOURCES if r.stored]
OWNS_STORAGE = [r for r in STORED if r.stored_as is None]  # one watch cache each
_OWNER = {r.storage: r for r in OWNS_STORAGE}


def storage_owner(resource: Resource) -> Resource:
    """The resource whose storage `resource` uses (itself, unless it is another's view)."""
    return _OWNER.get(resource.storage, resource)


def groups() -> dict[str, list[str]]:
    """group -> versions, in the order discovery lists them (core group first, named "")."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def in_group_version(group: str, version: str) -> list[Resource]:
    return [r for r in RESOURCES if r.group == group and r.version == version]


@dataclass
class Subresource:
    name: str
    kind: str
    group: str = ""
    version: str = "v1"
    verbs: list[str] = field(default_factory=lambda: ["get", "patch", "update"])


def subresource_info(resource: Resource, name: str) -> Subresource:
    if name == "scale":
        return Subresource("scale", "Scale", "autoscaling", "v1")
    if name == "binding":
        return Subresource("binding", "Binding", verbs=["create"])
    if name == "log":
        return Subresource("log", "Pod", verbs=["get"])
    if name in ("exec", "attach", "portforward"):  # as Kubernetes' discovery lists them
        options = {"exec": "PodExecOptions", "attach": "PodAttachOptions", "portforward": "PodPortForwardOptions"}
        return Subresource(name, options[name], verbs=["create", "get"])
    if name == "eviction":
        return Subresource("eviction", "Eviction", "policy", "v1", verbs=["create"])
    if name == "token":  # POST serviceaccounts/NAME/token (TokenRequest), as Kubernetes' discovery lists it
        return Subresource("token", "TokenRequest", "authentication.k8s.io", "v1", verbs=["create"])
    return Subresource(name, resource.kind, resource.group, resource.version)
