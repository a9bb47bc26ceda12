"""Authentication (static bearer tokens) and RBAC-lite authorization (pure).

The token file is Kubernetes' static token file: `token,user,uid,"group1,group2"` per line.
A user's role comes from its groups:

| group | role | may |
|---|---|---|
| system:masters | admin | everything |
| ketch:viewers | viewer | get, list, watch everything but Secrets (Kubernetes' `view` role) |
| ketch:schedulers | scheduler | read everything; bind pods; write pod status, events, its Lease |
| ketch:controllers | controller | read and write everything but create Nodes (a node registers |
|   |   | itself; deleting one is the node and cloud controllers' job, as Kubernetes' node-controller) |
| ketch:proxies | proxy | read services, endpoints, endpointslices, nodes, pods; write events |
| system:nodes (user system:node:NAME) | node:NAME | read what a kubelet reads; write only its own Node, |
|   |   | its Lease, events, and the status and deletion of pods bound to it |

Everyone authenticated may create a SelfSubjectAccessReview (`kubectl auth can-i`).
"""

from __future__ import annotations

import csv
import hmac
from dataclasses import dataclass
from pathlib import Path

READ = {"get", "list", "watch"}
ROLE_OF_GROUP = {
    "system:masters": "admin",
    "ketch:viewers": "viewer",
    "ketch:schedulers": "scheduler",
    "ketch:controllers": "controller",
    "ketch:proxies": "proxy",
}
NODE_READS = {"pods", "services", "endpoints", "endpointslices", "configmaps", "secrets", "nodes", "namespaces",
              "leases", "persistentvolumeclaims", "persistentvolumes"}


@dataclass(frozen=True)
class User:
    name: str
    uid: str
    groups: tuple[str, ...]

    @property
    def roles(self) -> set[str]:
        roles = {ROLE_OF_GROUP[g] for g in self.groups if g in ROLE_OF_GROUP}
        if "system:nodes" in self.groups and self.name.startswith("system:node:"):
            roles.add("node:" + self.name[len("system:node:") :])
        return roles


class TokenFileError(Exception):
    pass


def load_tokens(path: Path) -> dict[str, User]:
    tokens = {}
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle), 1):
            if not row or row[0].startswith("#"):
                continue
            if len(row) < 3 or not row[0] or not row[1]:
                raise TokenFileError(f'{path}:{number}: expected token,user,uid[,"groups"]')
            groups = tuple(g.strip() for g in row[3].split(",") if g.strip()) if len(row) > 3 else ()
            tokens[row[0]] = User(row[1], row[2], groups)
    if not tokens:
        raise TokenFileError(f"{path}: no tokens")
    return tokens


def authenticate(tokens: dict[str, User], header: str | None) -> User | None:
    if not header or not header.startswith("Bearer "):
        return None
    offered = header[len("Bearer ") :].strip().encode()
    for token, user in tokens.items():  # compare each in constant time
        if hmac.compare_digest(token.encode(), offered):
            return user
    return None


@dataclass(frozen=True)
class Request:
    verb: str  # get list watch create update patch delete deletecollection
    resource: str  # plural
    subresource: str | None
    namespace: str | None
    name: str | None


def allowed(user: User, request: Request, pod_node: str | None = None) -> bool:
    """pod_node: for a pod request by a node, the node the pod is bound to (the caller looks it up)."""
    if request.resource == "selfsubjectaccessreviews":
        return request.verb == "create"
    return any(_role_allows(role, request, pod_node) for role in user.roles)


def needs_pod_node(user: User, request: Request) -> bool:
    """A node's write to a pod is decided by where the pod is bound: the caller must look it up."""
    return (
        request.resource == "pods"
        and request.verb not in READ
        and request.name is not None
        and any(r.startswith("node:") for r in user.roles)
        and not user.roles & {"admin", "controller"}
    )


def _role_allows(role: str, r: Request, pod_node: str | None) -> bool:
    if role == "admin":
        return True
    if r.verb in READ and role in ("scheduler", "controller"):
        return True
    if role == "viewer":
        return r.verb in READ and r.resource != "secrets"
    if role == "controller":
        return not (r.resource == "nodes" and r.subresource is None and r.verb == "create")
    if role == "scheduler":
        return (
            (r.resource == "pods" and r.subresource in ("binding", "status"))
            or r.resource == "bindings"
            or r.resource == "events"
            # VolumeBinding writes the chosen node into WaitForFirstConsumer claims
            or (r.resource == "persistentvolumeclaims" and r.verb in ("patch", "update"))
            or (r.resource == "leases" and r.namespace == "kube-system")
        )
    if role == "proxy":
        return (r.verb in READ and r.resource in ("services", "endpoints", "endpointslices", "nodes", "pods")) or (
            r.resource == "events" and r.verb in ("create", "patch", "update")
        )
    if role.startswith("node:"):
        node = role[len("node:") :]
        if r.verb in READ:
            return r.resource in NODE_READS
        if r.resource == "nodes":
            return r.name == node or (r.verb == "create" and r.name in (None, node))
        if r.resource == "leases":
            return r.namespace == "kube-node-lease" and r.name in (node, None)
        if r.resource == "events":
            return r.verb in ("create", "patch", "update")
        if r.resource == "pods":
            return pod_node == node and (r.subresource == "status" or (r.subresource is None and r.verb == "delete"))
    return False
