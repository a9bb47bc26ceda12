"""The three patch kinds Kubernetes clients send, applied to plain JSON values (pure).

- JSON merge patch (RFC 7386, `application/merge-patch+json`): maps merge, null deletes,
  anything else replaces.
- JSON patch (RFC 6902, `application/json-patch+json`): add, remove, replace, move, copy, test.
- Strategic merge patch (`application/strategic-merge-patch+json`, what kubectl apply and the
  Python client send): a merge patch where some lists merge by a key instead of being replaced,
  with the directives `$patch` (replace / delete / merge), `$setElementOrder/<list>`,
  `$deleteFromPrimitiveList/<list>` and `$retainKeys`. Merge keys are the ones k8s.io/api
  declares (patchMergeKey in its types).
"""

from __future__ import annotations

import copy
from typing import Any

from orchestrator.apiserver.errors import APIError, bad_request

MERGE_KEYS = {
    "containers": "name", "initContainers": "name", "ephemeralContainers": "name", "volumes": "name",
    "env": "name", "imagePullSecrets": "name", "volumeMounts": "mountPath", "conditions": "type",
    "addresses": "type", "ownerReferences": "uid", "tolerations": "key", "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
}
SET_LISTS = {"finalizers"}  # lists of strings merged as sets


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


# --- JSON patch --------------------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"json patch path must start with '/': {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    return _get(doc, parts[:-1]), parts[-1]


def _get(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise APIError(422, "Invalid", f"json patch: path {'/'.join(parts)!r} does not exist")
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        index = len(parent) if last == "-" else int(last) if last.isdigit() else -1
        if not 0 <= index <= len(parent):
            raise APIError(422, "Invalid", f"json patch: index {last!r} is out of range")
        parent.insert(index, value)
    else:
        raise APIError(422, "Invalid", "json patch: cannot add into a scalar")
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    if not parts:
        raise APIError(422, "Invalid", "json patch: cannot remove the whole document")
    parent, last = _parent(doc, parts)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise APIError(422, "Invalid", f"json patch: path {'/'.join(parts)!r} does not exist")
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("a json patch is a list of operations")
    doc = copy.deepcopy(doc)
    for operation in operations:
        if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
            raise bad_request(f"json patch operation needs op and path: {operation!r}")
        op, parts = operation["op"], _pointer(operation["path"])
        if op in ("add", "replace", "test") and "value" not in operation:
            raise bad_request(f"json patch {op} needs a value")
        if op == "add":
            doc = _add(doc, parts, copy.deepcopy(operation["value"]))
        elif op == "remove":
            doc = _remove(doc, parts)
        elif op == "replace":
            _get(doc, parts)
            doc = _add(_remove(doc, parts), parts, copy.deepcopy(operation["value"])) if parts \
                else copy.deepcopy(operation["value"])
        elif op in ("move", "copy"):
            source = _pointer(operation.get("from", ""))
            value = copy.deepcopy(_get(doc, source))
            if op == "move":
                doc = _remove(doc, source)
            doc = _add(doc, parts, value)
        elif op == "test":
            if _get(doc, parts) != operation["value"]:
                raise APIError(422, "Invalid", f"json patch test failed at {operation['path']}")
        else:
            raise bad_request(f"unknown json patch op {op!r}")
    return doc


# --- strategic merge patch -----------------------------------------------------------------------


def _merge_key(name: str, parent_path: tuple[str, ...]) -> str | None:
    if name == "ports":
        in_container = len(parent_path) >= 1 and parent_path[-1] in ("containers", "initContainers")
        return "containerPort" if in_container else "port"
    return MERGE_KEYS.get(name)


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(target)
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/") \
                or key.startswith("$deleteFromPrimitiveList/"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list):
            result[key] = _merge_list(key, result.get(key), value, path)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value, path + (key,))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = value
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            name = key.split("/", 1)[1]
            if isinstance(result.get(name), list):
                result[name] = [item for item in result[name] if item not in value]
        elif key.startswith("$setElementOrder/"):
            name = key.split("/", 1)[1]
            result[name] = _ordered(result.get(name), value, _merge_key(name, path))
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(name: str, current: Any, patch: list, path: tuple[str, ...]) -> list:
    current = current if isinstance(current, list) else []
    if name in SET_LISTS:
        return current + [item for item in patch if item not in current]
    key = _merge_key(name, path)
    if key is None or not all(isinstance(item, dict) for item in patch):
        if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
            return [p for p in patch if not (isinstance(p, dict) and p.get("$patch"))]
        return copy.deepcopy(patch)
    if any(isinstance(p, dict) and p.get("$patch") == "replace" for p in patch):
        return [{k: v for k, v in p.items()} for p in patch if p.get("$patch") != "replace"]
    result = [copy.deepcopy(item) for item in current]
    for item in patch:
        if key not in item:
            raise bad_request(f"a strategic merge patch item of {name} has no merge key {key!r}")
        index = next((i for i, existing in enumerate(result)
                      if isinstance(existing, dict) and existing.get(key) == item[key]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append({k: v for k, v in item.items() if k != "$patch"})
        else:
            result[index] = strategic_merge_patch(result[index], item, path + (name,))
    return result


def _ordered(items: Any, order: list, key: str | None) -> Any:
    """$setElementOrder: the listed elements first, in the given order, then any others."""
    if not isinstance(items, list) or not isinstance(order, list):
        return items
    if key is None:
        rank = {value: i for i, value in enumerate(order) if isinstance(value, (str, int))}
        return sorted(items, key=lambda item: rank.get(item, len(rank)) if isinstance(item, (str, int)) else len(rank))
    rank = {entry.get(key): i for i, entry in enumerate(order) if isinstance(entry, dict)}
    return sorted(items, key=lambda item: rank.get(item.get(key), len(rank)) if isinstance(item, dict) else len(rank))
