"""Discovery in the version each kubectl asks for, /version by client, and request bodies in every
format kubectl sends."""

from __future__ import annotations

import pytest

from orchestrator.api import types
from orchestrator.apiserver import bodies, discovery, errors, protocodec

KUBECTL_127 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json"
KUBECTL_132 = ("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,"
               "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json")


@pytest.mark.parametrize("accept,form", [(KUBECTL_127, "v2beta1"), (KUBECTL_132, "v2"),
                                         ("application/json, */*", "legacy"), (None, "legacy"),
                                         ("application/xml", None)])
def test_discovery_answers_in_the_first_form_the_client_accepts(accept, form):
    assert discovery.negotiate(accept) == form


def test_aggregated_documents_name_their_version_and_every_resource():
    document = discovery.aggregated(core=False, version="v2beta1")
    assert document["apiVersion"] == "apidiscovery.k8s.io/v2beta1"
    groups = {item["metadata"]["name"]: item for item in document["items"]}
    assert [v["version"] for v in groups["autoscaling"]["versions"]] == ["v2", "v1"]  # v2 preferred
    batch = {r["resource"] for r in groups["batch"]["versions"][0]["resources"]}
    assert batch == {"jobs", "cronjobs"}


@pytest.mark.parametrize("agent,minor", [("kubectl.1.27/v1.27.16 (linux/amd64) kubernetes/cbb86e0", "27"),
                                         ("kubectl/v1.33.1 (linux/amd64) kubernetes/8adc0f0", "33"),
                                         ("kubectl-dispatcher/v1.0", "32"), ("kubectl/v1.20.0 (x)", "32"),
                                         ("OpenAPI-Generator/37.0.2/python", "32"), (None, "32")])
def test_each_bundled_kubectl_sees_its_own_minor_and_everyone_else_1_32(agent, minor):
    assert discovery.version_for(agent)["minor"] == minor


def test_bodies_in_json_yaml_and_protobuf_decode_to_the_same_object():
    configmap = types.kind("", "v1", "ConfigMap")
    expected = {"metadata": {"name": "x"}, "data": {"a": "b"}}
    as_json = bodies.decode_object(b'{"metadata": {"name": "x"}, "data": {"a": "b"}}', "application/json",
                                   configmap, "Strict")
    as_yaml = bodies.decode_object(b"metadata: {name: x}\ndata: {a: b}\n", "application/yaml", configmap, "Strict")
    as_proto = bodies.decode_object(protocodec.encode_object({"apiVersion": "v1", "kind": "ConfigMap", **expected}),
                                    "application/vnd.kubernetes.protobuf", configmap, "Strict")
    assert as_json.obj == as_yaml.obj == expected
    assert as_proto.obj == {"apiVersion": "v1", "kind": "ConfigMap", **expected}


@pytest.mark.parametrize("raw,content_type,code,fragment", [
    (protocodec.write_envelope("v1", "Widget", b""), "application/vnd.kubernetes.protobuf", 415, "Widget"),
    (b"k8s\x00\x0a\xff", "application/vnd.kubernetes.protobuf", 400, "protobuf request body is malformed"),
    (b'{"a": 1', "application/json", 400, "not valid JSON"),
    (b"a: [1", "application/yaml", 400, "not valid YAML"),
    (b"[]", "application/json", 400, "must be an object"),
])
def test_unreadable_bodies_say_why(raw, content_type, code, fragment):
    with pytest.raises(errors.APIError) as err:
        bodies.decode_object(raw, content_type, None, "Warn")
    assert err.value.code == code and fragment in err.value.message


def test_unknown_fields_warn_by_default_and_fail_under_strict():
    configmap = types.kind("", "v1", "ConfigMap")
    raw = b'{"metadata": {"name": "x"}, "dataa": {}, "data": {"a": "1"}, "data": {"a": "2"}}'
    warned = bodies.decode_object(raw, "application/json", configmap, "Warn")
    assert warned.obj == {"metadata": {"name": "x"}, "data": {"a": "2"}}
    assert warned.warnings == ['duplicate field "data"', 'unknown field "dataa"']
    assert bodies.decode_object(raw, "application/json", configmap, "Ignore").warnings == []
    with pytest.raises(errors.APIError) as err:
        bodies.decode_object(raw, "application/json", configmap, "Strict")
    assert err.value.message == ('ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
                                 'duplicate field "data", unknown field "dataa"')


def test_patch_bodies_by_type():
    assert bodies.decode_patch(b'[{"op": "remove", "path": "/a"}]', "application/json-patch+json").obj[0]["op"] == \
        "remove"
    assert bodies.decode_patch(b"kind: Deployment\n", "application/apply-patch+yaml").obj == {"kind": "Deployment"}
    with pytest.raises(errors.APIError) as err:
        bodies.decode_patch(b"{}", "application/xml")
    assert err.value.code == 415 and "application/apply-patch+yaml" in err.value.message


@pytest.mark.parametrize("name, kind", [("exec", "PodExecOptions"), ("attach", "PodAttachOptions"),
                                        ("portforward", "PodPortForwardOptions")])
def test_the_streaming_subresources_are_discovered_as_kubernetes_lists_them(name, kind):
    legacy = {r["name"]: r for r in discovery.resource_list("", "v1")["resources"]}
    assert legacy[f"pods/{name}"]["kind"] == kind and legacy[f"pods/{name}"]["verbs"] == ["create", "get"]
    core = discovery.aggregated(core=True)["items"][0]["versions"][0]["resources"]
    pods = next(r for r in core if r["resource"] == "pods")
    assert {"subresource": name, "responseKind": {"group": "", "version": "v1", "kind": kind},
            "verbs": ["create", "get"]} in pods["subresources"]
