"""The protobuf codec: kubectl's real bodies decode to the JSON kubectl would have sent, every kind
round-trips, and no byte string makes it fail other than with a ProtobufError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.api import types
from orchestrator.apiserver import protocodec as pc
from orchestrator.apiserver import protowire as wire
from tests.k8s_objects import SERVED_KINDS, objects_of

# Bodies kubectl 1.32.5 sent for `kubectl create namespace demo`, `create deployment web --image=nginx
# --replicas=2` and `create service clusterip web --tcp=80:8080` (captured with -v=9).
NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121c0a140a0464656d6f12001a0022002a0032003800420012001a020a"
    "001a002200")
DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412ab010a1f0a0377656212001a0022002a003200380042"
    "005a0a0a036170701203776562127a0802120c0a0a0a0361707012037765621a600a1c0a0012001a0022002a003200380042"
    "005a0a0a036170701203776562124012220a056e67696e7812056e67696e782a0042006a007200800100880100900100a201"
    "001a00320042004a0052005800600068008201008a01009a0100c2010022020a00280038001a0c0800100018002000280038"
    "001a002200")
SERVICE = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512690a1f0a0377656212001a0022002a003200380042005a0a0a0361707012"
    "0377656212420a1b0a0738302d38303830120354435018502207080010903f1a002800120a0a0361707012037765621a0022"
    "09436c757374657249503a00420052005a00600068001a020a001a002200")


def test_kubectl_create_namespace_decodes_to_its_json():
    assert pc.decode_object(NAMESPACE) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"},
                                           "spec": {}, "status": {}}


def test_kubectl_create_deployment_decodes_as_kubectl_would_send_it_in_json():
    """Go sends every non-pointer field, zero or not; the zero ones with omitempty are left out, as
    JSON would leave them out, while replicas (a pointer) and the empty structs stay."""
    decoded = pc.decode_object(DEPLOYMENT)
    assert decoded["metadata"] == {"name": "web", "labels": {"app": "web"}}
    assert decoded["spec"]["replicas"] == 2 and decoded["spec"]["strategy"] == {}
    assert decoded["spec"]["template"]["spec"]["containers"] == [{"name": "nginx", "image": "nginx", "resources": {}}]


def test_kubectl_create_service_decodes_with_an_int_or_string_target_port():
    decoded = pc.decode_object(SERVICE)
    assert decoded["spec"] == {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                               "selector": {"app": "web"}, "type": "ClusterIP"}
    assert decoded["status"] == {"loadBalancer": {}}


@pytest.mark.parametrize("value,text", [(0, "0s"), (1500, "1.5µs"), (2_000_000, "2ms"), (90 * 10**9, "1m30s"),
                                        (3723 * 10**9 + 5 * 10**8, "1h2m3.5s"), (-10**9, "-1s")])
def test_durations_read_as_go_prints_them(value, text):
    assert pc.format_duration(value) == text and pc.parse_duration(text) == value


def test_special_types_decode_to_their_json_forms():
    container = types.message("core.v1.Container")
    raw = pc.encode({"name": "c", "resources": {"limits": {"cpu": "250m"}},
                     "ports": [{"containerPort": 80}], "livenessProbe": {"httpGet": {"port": "http"}}}, container)
    assert pc.decode(raw, container) == {"name": "c", "resources": {"limits": {"cpu": "250m"}},
                                         "ports": [{"containerPort": 80}],
                                         "livenessProbe": {"httpGet": {"port": "http"}}}
    meta = types.message("meta.v1.ObjectMeta")
    stamped = {"name": "x", "creationTimestamp": "2024-02-29T23:59:59Z", "deletionGracePeriodSeconds": 0}
    assert pc.decode(pc.encode(stamped, meta), meta) == stamped  # a pointer's zero is kept


def test_negative_numbers_travel_as_ten_byte_varints():
    spec = types.message("core.v1.PodSpec")
    raw = pc.encode({"containers": [], "priority": -5}, spec)
    assert wire.field_varint(25, -5) in raw and len(wire.varint(-5)) == 10
    assert pc.decode(raw, spec) == {"priority": -5}


def test_a_field_number_ketch_does_not_know_is_refused_when_it_carries_a_value():
    namespace = types.kind("", "v1", "Namespace")
    assert pc.decode(wire.field_bytes(99, b""), namespace) == {}  # Go sends empty fields it has: ignored
    with pytest.raises(pc.ProtobufError, match="field number 99 of Namespace"):
        pc.decode(wire.field_bytes(99, b"x"), namespace)


def test_an_unknown_kind_is_unsupported_and_says_which():
    with pytest.raises(pc.UnsupportedKind, match="Widget"):
        pc.decode_object(pc.write_envelope("v1", "Widget", b""))


@pytest.mark.parametrize("body,fragment", [
    (b"", "magic"), (b"not protobuf", "magic"), (pc.MAGIC + b"\x0a\xff", "truncated"),
    (pc.MAGIC + b"\x0a\x05ab", "claims 5 bytes"), (pc.MAGIC + b"\x12\x00", "names no kind"),
    (pc.write_envelope("v1", "ConfigMap", wire.field_varint(2, 1)), "map entry"),
    (pc.write_envelope("v1", "ConfigMap", wire.field_varint(1, 3)), "wire type"),
    (pc.write_envelope("v1", "ConfigMap", wire.field_bytes(1, wire.field_bytes(1, b"\xff"))), "not UTF-8"),
])
def test_malformed_bodies_are_protobuf_errors_that_say_what(body, fragment):
    with pytest.raises(pc.ProtobufError, match=fragment):
        pc.decode_object(body)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_every_kind_round_trips_through_protobuf(data):
    group, version, kind = data.draw(st.sampled_from(SERVED_KINDS))
    obj = data.draw(objects_of(types.kind(group, version, kind)))
    api_version = f"{group}/{version}" if group else version
    body = pc.encode_object({"apiVersion": api_version, "kind": kind, **obj})
    assert pc.decode_object(body) == {"apiVersion": api_version, "kind": kind, **obj}


@settings(max_examples=1000, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(SERVED_KINDS))
def test_random_bytes_after_the_envelope_never_fail_other_than_as_protobuf_errors(raw, gvk):
    group, version, kind = gvk
    try:
        decoded = pc.decode_object(pc.write_envelope(f"{group}/{version}" if group else version, kind, raw))
    except pc.ProtobufError:
        return
    assert isinstance(decoded, dict) and decoded["kind"] == kind
