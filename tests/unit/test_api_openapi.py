"""OpenAPI documents generated from the type table: every served kind is there with its GVK, every
reference resolves, and the v2 protobuf form carries the same definitions."""

from __future__ import annotations

import orjson
import pytest

from orchestrator.api import types
from orchestrator.api.resources import RESOURCES
from orchestrator.apiserver import openapi, openapi_proto
from orchestrator.apiserver import protowire as wire

V2 = openapi.v2_document(RESOURCES)
V3 = openapi.v3_documents(RESOURCES)
STORED = [r for r in RESOURCES if r.stored and types.kind(r.group, r.version, r.kind)]


def refs(node):
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


@pytest.mark.parametrize("resource", STORED, ids=lambda r: r.plural)
def test_every_stored_kind_has_a_definition_tagged_with_its_gvk(resource):
    name = openapi.definition_name(types.kind(resource.group, resource.version, resource.kind).name)
    gvk = [{"group": resource.group, "kind": resource.kind, "version": resource.version}]
    assert V2["definitions"][name]["x-kubernetes-group-version-kind"] == gvk
    key = openapi.group_version_key(resource.group, resource.version)
    assert V3[key]["components"]["schemas"][name]["x-kubernetes-group-version-kind"] == gvk
    patch = V3[key]["paths"][next(p for p in V3[key]["paths"] if p.endswith(f"/{resource.plural}/{{name}}"))]["patch"]
    assert patch["x-kubernetes-group-version-kind"]["kind"] == resource.kind
    assert "fieldValidation" in [p["name"] for p in patch["parameters"]]


def test_every_reference_resolves_in_its_own_document():
    assert {r.removeprefix("#/definitions/") for r in refs(V2)} <= set(V2["definitions"])
    for document in V3.values():
        schemas = document["components"]["schemas"]
        assert {r.removeprefix("#/components/schemas/") for r in refs(document)} <= set(schemas)


def test_list_merge_metadata_is_what_kubectl_needs_for_strategic_merge():
    containers = V2["definitions"]["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert (containers["x-kubernetes-patch-strategy"], containers["x-kubernetes-patch-merge-key"]) == ("merge", "name")
    ports = V2["definitions"]["io.k8s.api.core.v1.ServiceSpec"]["properties"]["ports"]
    assert ports["x-kubernetes-list-map-keys"] == ["port", "protocol"]
    assert V2["definitions"]["io.k8s.api.core.v1.Container"]["required"] == ["name"]


def test_embedded_structs_are_flat_in_the_schema():
    volume = V2["definitions"]["io.k8s.api.core.v1.Volume"]["properties"]
    assert {"name", "hostPath", "emptyDir", "configMap"} <= set(volume) and "volumeSource" not in volume


def test_the_v2_protobuf_names_every_definition():
    body = openapi_proto.document(V2)
    fields = {number: value for number, _, value in wire.iter_fields(body)}
    assert fields[1] == b"2.0"
    names = [dict((n, v) for n, _, v in wire.iter_fields(entry))[1].decode()
             for number, _, entry in wire.iter_fields(fields[9]) if number == 1]
    assert names == list(V2["definitions"])


def test_the_index_hash_changes_with_the_document():
    index = openapi.v3_index(V3)
    changed = openapi.v3_index({**V3, "api/v1": {**V3["api/v1"], "info": {"title": "other"}}})
    assert index["paths"]["api/v1"] != changed["paths"]["api/v1"]
    assert index["paths"]["apis/apps/v1"] == changed["paths"]["apis/apps/v1"]
    assert orjson.loads(orjson.dumps(index)) == index
