"""Discovery documents and the minimal OpenAPI v3, all derived from the resource table (pure).

- `/version`: Kubernetes v1.32 (the kubectl dispatcher picks its client by this minor version).
- `/api`, `/apis`: aggregated discovery v2 when the client asks for it (its exact content type,
  shared/reference/k8s-api.md §0.2), legacy APIVersions / APIGroupList otherwise.
- `/api/v1`, `/apis/<group>/<version>`: legacy APIResourceList.
- `/openapi/v3` and `/openapi/v3/<gv>`: one PATCH operation per kind, tagged with its GVK and the
  fieldValidation parameter, and no schemas: enough for kubectl's default validation check,
  which then leaves validation to the server.
"""

from __future__ import annotations

import hashlib
import json

from orchestrator.api.resources import (
    Resource,
    groups,
    in_group_version,
    subresource_info,
)

AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-ketch", "gitCommit": "ketch",
           "gitTreeState": "clean", "buildDate": "2026-11-23T00:00:00Z", "goVersion": "python",
           "compiler": "gc", "platform": "linux/amd64"}


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "v=v2" in accept


def _gv(group: str, version: str) -> str:
    return f"{group}/{version}" if group else version


def _aggregated_resource(r: Resource) -> dict:
    out = {"resource": r.plural, "responseKind": {"group": r.group, "version": r.version, "kind": r.kind},
           "scope": "Namespaced" if r.namespaced else "Cluster", "singularResource": r.singular,
           "verbs": list(r.verbs)}
    if r.short_names:
        out["shortNames"] = list(r.short_names)
    if r.categories:
        out["categories"] = list(r.categories)
    subs = []
    for name in r.subresources:
        info = subresource_info(r, name)
        subs.append({"subresource": name, "responseKind": {"group": info.group, "version": info.version,
                                                           "kind": info.kind}, "verbs": info.verbs})
    if subs:
        out["subresources"] = subs
    return out


def aggregated(core: bool) -> dict:
    items = []
    for group, versions in groups().items():
        if (group == "") != core:
            continue
        items.append({"metadata": {"name": group},
                      "versions": [{"version": v, "freshness": "Current",
                                    "resources": [_aggregated_resource(r) for r in in_group_version(group, v)]}
                                   for v in versions]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items}


def legacy_api() -> dict:
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def legacy_groups() -> dict:
    out = []
    for group, versions in groups().items():
        if not group:
            continue
        gvs = [{"groupVersion": _gv(group, v), "version": v} for v in versions]
        out.append({"name": group, "versions": gvs, "preferredVersion": gvs[0]})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": out}


def resource_list(group: str, version: str) -> dict | None:
    members = in_group_version(group, version)
    if not members:
        return None
    entries = []
    for r in members:
        entry = {"name": r.plural, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                 "verbs": list(r.verbs)}
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for name in r.subresources:
            info = subresource_info(r, name)
            sub = {"name": f"{r.plural}/{name}", "singularName": "", "namespaced": r.namespaced,
                   "kind": info.kind, "verbs": info.verbs}
            if info.group != r.group or info.version != r.version:
                sub.update(group=info.group, version=info.version)
            entries.append(sub)
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": _gv(group, version), "resources": entries}


def openapi_document(group: str, version: str) -> dict | None:
    members = [r for r in in_group_version(group, version) if r.stored]
    if not members:
        return None
    paths = {}
    for r in members:
        prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        scope = "/namespaces/{namespace}" if r.namespaced else ""
        paths[f"{prefix}{scope}/{r.plural}/{{name}}"] = {"patch": {
            "x-kubernetes-group-version-kind": {"group": group, "version": version, "kind": r.kind},
            "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string"}}],
            "requestBody": {"content": {"application/merge-patch+json": {"schema": {"type": "object"}}}},
            "responses": {"200": {"description": "OK"}}}}
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
            "components": {"schemas": {}}, "paths": paths}


def openapi_index() -> dict:
    paths = {}
    for group, versions in groups().items():
        for version in versions:
            document = openapi_document(group, version)
            if document is None:
                continue
            digest = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()[:16].upper()
            key = f"apis/{group}/{version}" if group else f"api/{version}"
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": paths}
