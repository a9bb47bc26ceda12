"""The SelfSubjectAccessReview kubectl sends as protobuf is read; anything else is refused clearly."""

import pytest

from orchestrator.apiserver.errors import APIError
from orchestrator.apiserver.protobuf import MAGIC, decode_access_review


def field(number: int, payload: bytes) -> bytes:
    assert len(payload) < 128
    return bytes([number << 3 | 2, len(payload)]) + payload


def envelope(kind: str, raw: bytes) -> bytes:
    type_meta = field(1, b"authorization.k8s.io/v1") + field(2, kind.encode())
    return MAGIC + field(1, type_meta) + field(2, raw) + field(4, b"application/vnd.kubernetes.protobuf")


def test_a_protobuf_access_review_is_read():
    attributes = field(1, b"default") + field(2, b"create") + field(5, b"pods")
    review = field(1, b"") + field(2, field(1, attributes))
    decoded = decode_access_review(envelope("SelfSubjectAccessReview", review))
    assert decoded["spec"]["resourceAttributes"] == {"namespace": "default", "verb": "create", "resource": "pods"}


def test_other_protobuf_kinds_are_415():
    with pytest.raises(APIError) as err:
        decode_access_review(envelope("ConfigMap", b""))
    assert err.value.code == 415 and "send JSON or YAML" in err.value.message


@pytest.mark.parametrize("body", [b"", b"k8s\x00\x0a\xff", b"not protobuf", MAGIC + b"\x0a\x05ab"])
def test_malformed_protobuf_is_400(body):
    with pytest.raises(APIError) as err:
        decode_access_review(body)
    assert err.value.code == 400
