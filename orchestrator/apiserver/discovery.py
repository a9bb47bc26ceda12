"""Discovery documents and /version, derived from the resource table (pure).

- `/version`: Kubernetes v1.32, or for a kubectl 1.27 to 1.33 (by its User-Agent) its own minor:
  every bundled kubectl then works without a version-skew warning, and the machines' kubectl
  dispatcher (which asks with its own User-Agent) still picks its 1.32 client.
- `/api`, `/apis`: aggregated discovery in the version the Accept header asks for first
  (`apidiscovery.k8s.io` v2 for kubectl 1.30+, v2beta1 for 1.27 to 1.29; the documents are the
  same), else the legacy APIVersions / APIGroupList; 406 if the client accepts neither.
- `/api/v1`, `/apis/<group>/<version>`: legacy APIResourceList.
"""

from __future__ import annotations

import re

from orchestrator.api.resources import (
    Resource,
    groups,
    in_group_version,
    subresource_info,
)

AGGREGATED = "application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList"
AGGREGATED_CONTENT_TYPE = AGGREGATED.format(version="v2")
AGGREGATED_VERSIONS = ("v2", "v2beta1")
VERSION = {"major": "1", "minor": "32", "gitVersion": "v1.32.0-ketch", "gitCommit": "ketch",
           "gitTreeState": "clean", "buildDate": "2026-11-23T00:00:00Z", "goVersion": "python",
           "compiler": "gc", "platform": "linux/amd64"}
KUBECTL_AGENT = re.compile(r"^kubectl(?:\.1\.\d+)?/v1\.(\d+)\.")
SERVED_MINORS = range(27, 34)


def version_for(user_agent: str | None) -> dict:
    """The /version answer for a client: kubectl 1.27 to 1.33 sees its own minor (see above)."""
    match = KUBECTL_AGENT.match(user_agent or "")
    minor = int(match.group(1)) if match else None
    if minor is None or minor not in SERVED_MINORS or minor == 32:
        return VERSION
    return {**VERSION, "minor": str(minor), "gitVersion": f"v1.{minor}.0-ketch"}


def negotiate(accept: str | None) -> str | None:
    """"v2" or "v2beta1" (aggregated), "legacy", or None (nothing the client accepts), by the
    order of the client's Accept header (Kubernetes' content negotiation)."""
    for part in (accept or "*/*").split(","):
        media, *params = [p.strip() for p in part.split(";")]
        values = dict(p.split("=", 1) for p in params if "=" in p)
        if values.get("as") == "APIGroupDiscoveryList" and values.get("g") == "apidiscovery.k8s.io":
            if values.get("v") in AGGREGATED_VERSIONS and media in ("application/json", "*/*"):
                return values["v"]
            continue
        if media in ("application/json", "*/*", "application/*") and "as" not in values:
            return "legacy"
    return None


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


def aggregated(core: bool, version: str = "v2") -> dict:
    items = []
    for group, versions in groups().items():
        if (group == "") != core:
            continue
        items.append({"metadata": {"name": group},
                      "versions": [{"version": v, "freshness": "Current",
                                    "resources": [_aggregated_resource(r) for r in in_group_version(group, v)]}
                                   for v in versions]})
    return {"kind": "APIGroupDiscoveryList", "apiVersion": f"apidiscovery.k8s.io/{version}", "metadata": {},
            "items": items}


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
