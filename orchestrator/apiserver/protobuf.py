"""The one protobuf request kubectl sends: `kubectl auth can-i` posts its SelfSubjectAccessReview
as `application/vnd.kubernetes.protobuf` whatever the server prefers. This reads that message
(Kubernetes' envelope: the magic `k8s\\0`, then a runtime.Unknown whose `raw` is the object) into
the JSON shape the rest of the server uses. Answers go back as JSON, which client-go accepts.

Field numbers are those of k8s.io/api/authorization/v1/generated.proto.
"""

from __future__ import annotations

from orchestrator.apiserver import errors

MAGIC = b"k8s\x00"
RESOURCE_ATTRIBUTES = {1: "namespace", 2: "verb", 3: "group", 4: "version", 5: "resource", 6: "subresource",
                       7: "name"}
NON_RESOURCE_ATTRIBUTES = {1: "path", 2: "verb"}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated varint")
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> dict[int, list]:
    """field number -> values (ints for varints, bytes for length-delimited)."""
    out: dict[int, list] = {}
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ValueError("truncated field")
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise ValueError(f"unsupported wire type {wire}")
        out.setdefault(number, []).append(value)
    return out


def _strings(message: bytes, names: dict[int, str]) -> dict:
    parsed = fields(message)
    return {name: parsed[number][-1].decode() for number, name in names.items() if number in parsed}


def decode_access_review(body: bytes) -> dict:
    try:
        if not body.startswith(MAGIC):
            raise ValueError("no k8s protobuf envelope")
        envelope = fields(body[len(MAGIC):])
        type_meta = fields(envelope.get(1, [b""])[-1])
        kind = type_meta.get(2, [b""])[-1].decode()
        if kind != "SelfSubjectAccessReview":
            raise errors.APIError(415, "UnsupportedMediaType", f"Ketch reads protobuf only for "
                                  f"SelfSubjectAccessReview, not {kind or 'this request'}: send JSON or YAML "
                                  "(kubectl create -f or apply -f)")
        review = fields(envelope.get(2, [b""])[-1])
        spec = fields(review.get(2, [b""])[-1])
        out: dict = {}
        if 1 in spec:
            out["resourceAttributes"] = _strings(spec[1][-1], RESOURCE_ATTRIBUTES)
        if 2 in spec:
            out["nonResourceAttributes"] = _strings(spec[2][-1], NON_RESOURCE_ATTRIBUTES)
        return {"kind": kind, "apiVersion": "authorization.k8s.io/v1", "spec": out}
    except (ValueError, UnicodeDecodeError, IndexError) as err:
        raise errors.bad_request(f"the protobuf request body is malformed: {err}") from None
