"""The resource types the API server serves: one table, read by routing, discovery and storage.

Each `Resource` says where it lives (group, version, plural), what it is called (kind,
singular, shortNames, categories), whether it is namespaced, and which subresources it has.
Storage keys are `/registry/<group or "core">/<plural>/<namespace>/<name>` (cluster-scoped:
without the namespace), as DESIGN §4 says.
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

    def key_prefix(self, namespace: str | None = None) -> str:
        base = f"/registry/{self.group or 'core'}/{self.plural}/"
        return base + f"{namespace}/" if self.namespaced and namespace else base

    def key(self, namespace: str | None, name: str) -> str:
        if self.namespaced:
            return f"/registry/{self.group or 'core'}/{self.plural}/{namespace}/{name}"
        return f"/registry/{self.group or 'core'}/{self.plural}/{name}"


RESOURCES: list[Resource] = [
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",), subresources=("status",)),
    Resource("", "v1", "nodes", "Node", False, ("no",), subresources=("status",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("all",), ("status", "binding", "log")),
    Resource("", "v1", "services", "Service", True, ("svc",), ("all",), ("status",)),
    Resource("", "v1", "endpoints", "Endpoints", True, ("ep",)),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "configmaps", "ConfigMap", True, ("cm",)),
    Resource("", "v1", "bindings", "Binding", True, verbs=("create",), stored=False),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("all",), ("status", "scale")),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("all",), ("status", "scale")),
    Resource("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False,
             verbs=("create",), stored=False),
]

BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND = {(r.group, r.kind): r for r in RESOURCES}
STORED = [r for r in RESOURCES if r.stored]


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
    return Subresource(name, resource.kind, resource.group, resource.version)
