"""OpenAPI v2 and v3 documents generated from the type table (pure).

What kubectl reads from them:
- `kubectl explain` (v3 on 1.27+, v2 before): the definitions, their descriptions, `required`, and
  `x-kubernetes-group-version-kind` on each kind's definition ("GVK ... not found" without it).
- client-side apply (v2 on 1.27/1.28, v3 later): the patch metadata of lists
  (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`) to compute a strategic merge patch.
- the field-validation check: a PATCH operation tagged with the kind's GVK that lists a
  `fieldValidation` query parameter means "the server validates", so kubectl sends
  `fieldValidation=Strict` and leaves unknown fields to the server.

Definition names follow Kubernetes' (`io.k8s.api.apps.v1.Deployment`, `io.k8s.apimachinery.pkg.apis.
meta.v1.ObjectMeta`). References are `$ref` with a sibling description in v2, and `allOf: [$ref]` in
v3, as Kubernetes publishes them. `resources` is the API server's resource table (group, version,
plural, kind, namespaced, stored, subresources).
"""

from __future__ import annotations

import hashlib
from typing import Iterable

import orjson

from orchestrator.api import types
from orchestrator.api.types import Message, TypeRef, list_semantics

SPECIAL_NAMES = {"Quantity": "io.k8s.apimachinery.pkg.api.resource.Quantity",
                 "Time": "io.k8s.apimachinery.pkg.apis.meta.v1.Time",
                 "MicroTime": "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime",
                 "Duration": "io.k8s.apimachinery.pkg.apis.meta.v1.Duration",
                 "FieldsV1": "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1",
                 "IntOrString": "io.k8s.apimachinery.pkg.util.intstr.IntOrString",
                 "RawExtension": "io.k8s.apimachinery.pkg.runtime.RawExtension"}
SPECIAL_DOCS = {
    "Quantity": "A fixed-point number with an optional suffix: \"100m\" (0.1), \"2Gi\", \"1.5\".",
    "Time": "An RFC 3339 time in UTC, whole seconds.",
    "MicroTime": "An RFC 3339 time in UTC, with microseconds.",
    "Duration": "A duration, as Go writes it (\"1m30s\").",
    "FieldsV1": "A set of fields, in the managedFields tree format.",
    "IntOrString": "An integer or a string (e.g. a port number or name, a count or a percentage).",
    "RawExtension": "An embedded object of any kind.",
}
SCALAR_SCHEMAS = {"string": {"type": "string"}, "int32": {"type": "integer", "format": "int32"},
                  "int64": {"type": "integer", "format": "int64"}, "bool": {"type": "boolean"},
                  "float64": {"type": "number", "format": "double"}, "bytes": {"type": "string", "format": "byte"}}
PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json",
               "application/strategic-merge-patch+json", "application/apply-patch+yaml"]
VERSION_TEXT = "v1.32.0-ketch"


def definition_name(type_name: str) -> str:
    if type_name in SPECIAL_NAMES:
        return SPECIAL_NAMES[type_name]
    if type_name.startswith("meta."):
        return f"io.k8s.apimachinery.pkg.apis.{type_name}"
    return f"io.k8s.api.{type_name}"


# --- schemas ------------------------------------------------------------------------------------


def _special_schema(name: str, v3: bool) -> dict:
    doc = SPECIAL_DOCS[name]
    if name == "IntOrString":
        shape = ({"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]} if v3
                 else {"type": "string", "format": "int-or-string"})
    elif name == "Quantity":
        shape = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]} if v3 \
            else {"type": "string"}
    elif name in ("Time", "MicroTime"):
        shape = {"type": "string", "format": "date-time"}
    elif name == "Duration":
        shape = {"type": "string"}
    else:
        shape = {"type": "object"}
    return {"description": doc, **shape}


def _ref(name: str, v3: bool) -> dict:
    return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + definition_name(name)}


def _value_schema(ref: TypeRef, v3: bool) -> dict:
    if ref.name in types.SCALARS:
        return dict(SCALAR_SCHEMAS[ref.name])
    if v3:
        return {"allOf": [_ref(ref.name, v3)], "default": {}} if ref.is_message and not ref.pointer \
            else {"allOf": [_ref(ref.name, v3)]}
    return _ref(ref.name, v3)


def _property(msg: Message, name: str, v3: bool) -> dict:
    f, ref = msg.by_name[name], msg.types[name]
    if ref.container == "list":
        schema: dict = {"type": "array", "items": _value_schema(TypeRef(ref.name), v3)}
        list_type, keys = list_semantics(f, TypeRef(ref.name))
        if f.list_type or f.map_keys:
            schema["x-kubernetes-list-type"] = list_type
            if keys:
                schema["x-kubernetes-list-map-keys"] = list(keys)
    elif ref.container == "map":
        schema = {"type": "object", "additionalProperties": _value_schema(TypeRef(ref.name), v3)}
        if f.map_type:
            schema["x-kubernetes-map-type"] = f.map_type
    else:
        schema = _value_schema(ref, v3)
    if f.doc:
        schema["description"] = f.doc
    if f.default is not None:
        schema["default"] = f.default
    if f.patch:
        schema["x-kubernetes-patch-strategy"] = f.patch
    if f.merge_key:
        schema["x-kubernetes-patch-merge-key"] = f.merge_key
    return schema


def _flat_fields(msg: Message) -> Iterable[tuple[Message, str]]:
    for f in msg.fields:
        if f.inline:
            yield from _flat_fields(types.message(msg.types[f.name].name))
        else:
            yield msg, f.name


def message_schema(msg: Message, v3: bool) -> dict:
    properties, required = {}, []
    for owner, name in _flat_fields(msg):
        properties[name] = _property(owner, name, v3)
        if owner.by_name[name].required:
            required.append(name)
    schema: dict = {"description": msg.doc, "type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if msg.atomic:
        schema["x-kubernetes-map-type"] = "atomic"
    if msg.gvk:
        group, version, kind = msg.gvk
        schema["x-kubernetes-group-version-kind"] = [{"group": group, "kind": kind, "version": version}]
    return schema


def _references(msg: Message) -> Iterable[str]:
    for owner, name in _flat_fields(msg):
        ref = owner.types[name]
        if ref.name not in types.SCALARS:
            yield ref.name


def closure(roots: Iterable[str]) -> list[str]:
    """Every type name reachable from `roots` (messages and special types), sorted."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in types.MESSAGES:
            stack.extend(_references(types.message(name)))
    return sorted(seen)


def definitions(names: Iterable[str], v3: bool) -> dict:
    out = {}
    for name in names:
        schema = _special_schema(name, v3) if name in types.SPECIAL else message_schema(types.message(name), v3)
        out[definition_name(name)] = schema
    return dict(sorted(out.items()))


# --- paths --------------------------------------------------------------------------------------


def _kind_message(resource) -> Message | None:
    return types.kind(resource.group, resource.version, resource.kind)


def _paths_of(resource, v3: bool) -> dict:
    """The item and collection paths of a stored resource: what kubectl's checks look for."""
    prefix = f"/apis/{resource.group}/{resource.version}" if resource.group else f"/api/{resource.version}"
    scope = "/namespaces/{namespace}" if resource.namespaced else ""
    gvk = {"group": resource.group, "kind": resource.kind, "version": resource.version}
    kind_name = f"{resource.kind}"
    own = _kind_message(resource)
    list_message = types.kind(resource.group, resource.version, f"{resource.kind}List")
    query = ["dryRun", "fieldManager", "fieldValidation"]

    def operation(action: str, verb_doc: str, params: list[str], body: Message | None, answer: Message | None,
                  consumes: list[str] | None = None) -> dict:
        op: dict = {"description": f"{verb_doc} {kind_name}", "operationId": f"{action}{kind_name}",
                    "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk}
        parameters = [{"name": p, "in": "query", "description": PARAM_DOCS[p],
                       **({"schema": {"type": "string" if p != "force" else "boolean"}} if v3
                          else {"type": "string" if p != "force" else "boolean"})} for p in params]
        answer_schema = _ref(answer.name, v3) if answer else {"type": "object"}
        if v3:
            op["parameters"] = parameters
            if body is not None or consumes:
                schema = _ref(body.name, v3) if body else {"type": "object"}
                op["requestBody"] = {"content": {ct: {"schema": schema} for ct in consumes or ["application/json"]},
                                     "required": True}
            op["responses"] = {"200": {"description": "OK",
                                       "content": {"application/json": {"schema": answer_schema}}}}
        else:
            if body is not None or consumes:
                parameters.insert(0, {"name": "body", "in": "body", "required": True,
                                      "schema": _ref(body.name, v3) if body else {"type": "object"}})
            op["parameters"] = parameters
            if consumes:
                op["consumes"] = consumes
            op["produces"] = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
            op["responses"] = {"200": {"description": "OK", "schema": answer_schema}}
        return op

    item = {"get": operation("get", "read the specified", [], None, own),
            "put": operation("put", "replace the specified", query, own, own),
            "patch": operation("patch", "partially update the specified", query + ["force"], None, own,
                               PATCH_TYPES),
            "delete": operation("delete", "delete a", ["dryRun"], types.message("meta.v1.DeleteOptions"),
                                types.message("meta.v1.Status"))}
    collection = {"get": operation("list", "list or watch objects of kind", [], None, list_message),
                  "post": operation("post", "create a", query, own, own)}
    return {f"{prefix}{scope}/{resource.plural}": collection, f"{prefix}{scope}/{resource.plural}/{{name}}": item}


PARAM_DOCS = {
    "dryRun": "All: check the request and answer as if it were stored, storing nothing.",
    "fieldManager": "The name of the actor making the change (managedFields).",
    "fieldValidation": "Ignore, Warn (default) or Strict: what to do with unknown and duplicate fields.",
    "force": "Apply only: take over fields other managers own instead of answering a conflict.",
}


def _documented(resources) -> list:
    return [r for r in resources if r.stored and _kind_message(r) is not None]


def v2_document(resources) -> dict:
    documented = _documented(resources)
    paths: dict = {}
    roots = set()
    for resource in documented:
        paths.update(_paths_of(resource, v3=False))
        roots.update({_kind_message(resource).name, f"{_kind_message(resource).name}List"})
    roots.update({"meta.v1.DeleteOptions", "meta.v1.Status", "autoscaling.v1.Scale", "policy.v1.Eviction",
                  "core.v1.Binding", "authorization.v1.SelfSubjectAccessReview"})
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": VERSION_TEXT},
            "paths": dict(sorted(paths.items())), "definitions": definitions(closure(roots), v3=False)}


def group_version_key(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def v3_documents(resources) -> dict[str, dict]:
    """One document per group-version: its paths and every schema they reach."""
    by_gv: dict[str, list] = {}
    for resource in _documented(resources):
        by_gv.setdefault(group_version_key(resource.group, resource.version), []).append(resource)
    out = {}
    for key, members in sorted(by_gv.items()):
        paths: dict = {}
        roots = {"meta.v1.DeleteOptions", "meta.v1.Status"}
        for resource in members:
            paths.update(_paths_of(resource, v3=True))
            msg = _kind_message(resource)
            roots.update({msg.name, f"{msg.name}List"})
            if "scale" in resource.subresources:
                roots.add("autoscaling.v1.Scale")
        out[key] = {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION_TEXT},
                    "paths": dict(sorted(paths.items())),
                    "components": {"schemas": definitions(closure(roots), v3=True)}}
    return out


def v3_index(documents: dict[str, dict]) -> dict:
    """The discovery document of /openapi/v3: each group-version's URL, with a content hash that
    changes when the document does (kubectl caches by it)."""
    paths = {}
    for key, document in documents.items():
        digest = hashlib.sha512(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest().upper()
        paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}
