"""Object metadata, as every component reads it: keys, labels, owners, deletion."""

from __future__ import annotations

import re
from typing import Any

# Names that must be RFC 1123 labels (63 characters at most): namespaces, Services, containers.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_LABEL_MESSAGE = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
                     "must start and end with an alphanumeric character")


def is_dns_label(name: Any) -> bool:
    return isinstance(name, str) and len(name) <= 63 and DNS_LABEL.match(name) is not None


def field(obj: dict | None, *path: str, default: Any = None) -> Any:
    """obj[path[0]][path[1]]..., with `default` where any step is missing or not a map."""
    for key in path:
        if not isinstance(obj, dict):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def object_key(obj: dict) -> str:
    """"namespace/name", or "name" for a cluster-scoped object: the key informers and queues use."""
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def split_key(key: str) -> tuple[str | None, str]:
    namespace, _, name = key.rpartition("/")
    return namespace or None, name


def name(obj: dict) -> str:
    return obj["metadata"]["name"]


def namespace(obj: dict) -> str | None:
    return obj["metadata"].get("namespace")


def uid(obj: dict) -> str:
    return obj["metadata"].get("uid", "")


def labels(obj: dict) -> dict[str, str]:
    return field(obj, "metadata", "labels", default={})


def annotations(obj: dict) -> dict[str, str]:
    return field(obj, "metadata", "annotations", default={})


def is_deleting(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def owner_references(obj: dict) -> list[dict]:
    return field(obj, "metadata", "ownerReferences", default=[])


def controller_of(obj: dict) -> dict | None:
    """The ownerReference with controller: true, if any (at most one, as the API enforces)."""
    return next((ref for ref in owner_references(obj) if ref.get("controller")), None)


def controller_uid(obj: dict) -> list[str]:
    """Index function: the uid of obj's controller, as a one-element list (or empty)."""
    ref = controller_of(obj)
    return [ref["uid"]] if ref and ref.get("uid") else []


def owner_reference(owner: dict, *, controller: bool = True) -> dict:
    """A reference to `owner` (which must carry apiVersion and kind) for a dependent to carry."""
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": controller, "blockOwnerDeletion": True}
