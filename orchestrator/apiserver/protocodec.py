"""Kubernetes protobuf bodies <-> the JSON objects the server handles, driven by the type table
(orchestrator.api.types); pure.

Theory of operation. A protobuf body (`Content-Type: application/vnd.kubernetes.protobuf`) is the
magic `k8s\\0` and a runtime.Unknown: {1: TypeMeta {1: apiVersion, 2: kind}, 2: raw, 3:
contentEncoding, 4: contentType}; `raw` is the object's message. The decoder walks it with the
kind's `Message` and builds the same JSON object a JSON body would have produced, keeping the rules
Go's JSON encoding keeps for those structs:

- Go emits every non-pointer field on the wire, zero or not; JSON leaves out the zero ones that are
  `omitempty`. So a zero scalar is dropped unless the field keeps zeros (`Field.keep_zero`: a
  pointer, or no omitempty). Messages are kept even when empty (`resources: {}`), as Go's JSON
  keeps empty structs; a zero Time and a zero IntOrString mean "unset" and are dropped.
- An embedded struct (`inline`) is a nested message on the wire and flat in JSON.
- Special types: Quantity {1: string}; Time and MicroTime {1: seconds, 2: nanos}; Duration
  {1: nanoseconds}; IntOrString {1: type, 2: intVal, 3: strVal}; RawExtension {1: raw JSON};
  FieldsV1 {1: raw JSON}; bytes are base64 in JSON.
- A field number the table does not know is ignored when its value is empty (Go always sends
  fields the client does not use), and refused otherwise: losing a value silently is worse than
  an error that names it.

`encode` is the inverse (for round-trip tests and clients); decode(encode(x)) == x for every object
whose non-keep_zero fields hold no zero values.

Errors: `ProtobufError` (malformed: a 400) and `UnsupportedKind` (a kind Ketch does not describe: a
415); both say where.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime, timedelta, timezone

import orjson

from orchestrator.api import types
from orchestrator.api.types import Message, TypeRef
from orchestrator.apiserver import protowire as wire

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
MAX_DEPTH = 64
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
NUMERIC = {"int32", "int64", "bool", "float64"}
_ABSENT = object()


class ProtobufError(ValueError):
    """A body that is not a well-formed Kubernetes protobuf message."""


class UnsupportedKind(ProtobufError):
    """A well-formed envelope for a kind Ketch does not describe."""


# --- the envelope -------------------------------------------------------------------------------


def read_envelope(body: bytes) -> tuple[str, str, bytes]:
    """(apiVersion, kind, raw) of a `k8s\\0` body."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the Kubernetes protobuf magic k8s\\0")
    api_version = kind = ""
    raw = b""
    try:
        for number, wire_type, value in wire.iter_fields(body[len(MAGIC):]):
            if number == 1 and wire_type == wire.LENGTH:
                for sub, sub_wire, text in wire.iter_fields(value):
                    if sub in (1, 2) and sub_wire == wire.LENGTH:
                        if sub == 1:
                            api_version = _text(text, "typeMeta.apiVersion")
                        else:
                            kind = _text(text, "typeMeta.kind")
            elif number == 2 and wire_type == wire.LENGTH:
                raw = value
            elif number == 3 and wire_type == wire.LENGTH and value:
                raise UnsupportedKind(f"content encoding {_text(value, 'contentEncoding')!r} is not supported")
    except wire.WireError as err:
        raise ProtobufError(f"the envelope is malformed: {err}") from None
    if not kind:
        raise ProtobufError("the envelope names no kind")
    return api_version, kind, raw


def write_envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    type_meta = wire.field_bytes(1, api_version.encode()) + wire.field_bytes(2, kind.encode())
    return MAGIC + wire.field_bytes(1, type_meta) + wire.field_bytes(2, raw) + wire.field_bytes(3, b"") \
        + wire.field_bytes(4, b"")


def kind_message(api_version: str, kind: str) -> Message:
    group, _, version = api_version.rpartition("/")
    msg = types.kind(group, version, kind)
    if msg is None:
        raise UnsupportedKind(f"Ketch cannot read {kind} ({api_version or 'no apiVersion'}) as protobuf: "
                              "it is not a kind this server describes")
    return msg


def decode_object(body: bytes) -> dict:
    """The JSON object of a whole protobuf request body."""
    api_version, kind, raw = read_envelope(body)
    msg = kind_message(api_version, kind)
    obj = decode(raw, msg)
    return {"apiVersion": api_version, "kind": kind, **obj}


def encode_object(obj: dict) -> bytes:
    msg = kind_message(obj.get("apiVersion", ""), obj.get("kind", ""))
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return write_envelope(obj["apiVersion"], obj["kind"], encode(body, msg))


# --- decoding -----------------------------------------------------------------------------------


def decode(data: bytes, msg: Message) -> dict:
    try:
        return _decode_message(data, msg, msg.short_name, 0)
    except wire.WireError as err:
        raise ProtobufError(f"{msg.short_name}: {err}") from None


def _decode_message(data: bytes, msg: Message, where: str, depth: int) -> dict:
    if depth > MAX_DEPTH:
        raise ProtobufError(f"{where}: messages nest deeper than {MAX_DEPTH}")
    out: dict = {}
    for number, wire_type, value in wire.iter_fields(data):
        f = msg.by_number.get(number)
        if f is None:
            if value in (0, b""):
                continue
            raise ProtobufError(f"{where}: field number {number} of {msg.short_name} is not one Ketch knows")
        ref = msg.types[f.name]
        at = f"{where}.{f.name}"
        if ref.container == "map":
            entry_key, entry_value = _decode_entry(value, wire_type, ref, at, depth)
            out.setdefault(f.name, {})[entry_key] = entry_value
        elif ref.container == "list":
            items = out.setdefault(f.name, [])
            if wire_type == wire.LENGTH and ref.name in NUMERIC:
                packed = wire.unpack_varints(value) if ref.name != "float64" else _unpack_doubles(value, at)
                items.extend(_scalar(ref.name, wire.VARINT if ref.name != "float64" else wire.FIXED64, v, at)
                             for v in packed)
            else:
                item = _decode_value(value, wire_type, ref, at, depth)
                items.append(_zero_value(ref) if item is _ABSENT else item)
        else:
            decoded = _decode_value(value, wire_type, ref, at, depth)
            if f.inline:
                out.update(decoded)
            elif decoded is _ABSENT:
                out.pop(f.name, None)
            else:
                out[f.name] = decoded
    for f in msg.fields:
        if f.name in out and not f.keep_zero and not msg.types[f.name].container and _is_zero_scalar(out[f.name]):
            del out[f.name]
    return out


def _is_zero_scalar(value) -> bool:
    return value == "" or value is False or (type(value) in (int, float) and value == 0)


def _zero_value(ref: TypeRef):
    return {"Time": None, "MicroTime": None, "IntOrString": 0}.get(ref.name)


def _decode_entry(data, wire_type: int, ref: TypeRef, where: str, depth: int) -> tuple[str, object]:
    if wire_type != wire.LENGTH:
        raise ProtobufError(f"{where}: a map entry must be length-delimited")
    entry_key, entry_value = "", _ABSENT
    for number, sub_wire, value in wire.iter_fields(data):
        if number == 1:
            entry_key = _text(_expect(value, sub_wire, wire.LENGTH, where), where)
        elif number == 2:
            entry_value = _decode_value(value, sub_wire, ref, f"{where}[{entry_key}]", depth)
    if entry_value is _ABSENT:
        entry_value = _scalar(ref.name, wire.LENGTH, b"", where) if not ref.is_message else (
            {} if ref.name not in types.SPECIAL else _zero_value(ref))
    return entry_key, entry_value


def _decode_value(value, wire_type: int, ref: TypeRef, where: str, depth: int):
    if ref.name in types.SCALARS:
        return _scalar(ref.name, wire_type, value, where)
    data = _expect(value, wire_type, wire.LENGTH, where)
    if ref.name in types.SPECIAL:
        return _special(ref.name, data, where)
    return _decode_message(data, types.message(ref.name), where, depth + 1)


def _expect(value, wire_type: int, wanted: int, where: str):
    if wire_type != wanted:
        raise ProtobufError(f"{where}: wire type {wire_type} where {wanted} was expected")
    return value


def _text(value: bytes, where: str) -> str:
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtobufError(f"{where}: a string that is not UTF-8") from None


def _scalar(name: str, wire_type: int, value, where: str):
    if name == "string":
        return _text(_expect(value, wire_type, wire.LENGTH, where), where)
    if name == "bytes":
        return base64.b64encode(_expect(value, wire_type, wire.LENGTH, where)).decode()
    if name == "float64":
        return wire.as_double(_expect(value, wire_type, wire.FIXED64, where))
    number = _expect(value, wire_type, wire.VARINT, where)
    if name == "bool":
        return number != 0
    return wire.signed(number, 32 if name == "int32" else 64)


def _unpack_doubles(data: bytes, where: str) -> list[int]:
    if len(data) % 8:
        raise ProtobufError(f"{where}: packed doubles are not a multiple of 8 bytes")
    return [int.from_bytes(data[i:i + 8], "little") for i in range(0, len(data), 8)]


def _special(name: str, data: bytes, where: str):
    fields: dict[int, tuple[int, object]] = {}
    for number, wire_type, value in wire.iter_fields(data):
        fields[number] = (wire_type, value)

    def get(number: int, kind: str, default):
        if number not in fields:
            return default
        return _scalar(kind, fields[number][0], fields[number][1], where)
    if name == "Quantity":
        return get(1, "string", "0")
    if name in ("Time", "MicroTime"):
        seconds, nanos = get(1, "int64", 0), get(2, "int32", 0)
        if seconds == 0 and nanos == 0:
            return _ABSENT
        return format_time(seconds, nanos, micro=name == "MicroTime", where=where)
    if name == "Duration":
        return format_duration(get(1, "int64", 0))
    if name == "IntOrString":
        kind, number, text = get(1, "int64", 0), get(2, "int32", 0), get(3, "string", "")
        if kind == 1:
            return text
        return number if number else _ABSENT
    raw = fields.get(1, (wire.LENGTH, b""))  # RawExtension, FieldsV1
    payload = _expect(raw[1], raw[0], wire.LENGTH, where)
    if not payload:
        return {} if name == "FieldsV1" else _ABSENT
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ProtobufError(f"{where}: the raw value is not JSON") from None


def format_time(seconds: int, nanos: int, micro: bool = False, where: str = "") -> str:
    try:
        moment = EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise ProtobufError(f"{where}: the time {seconds}s is out of range") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def format_duration(ns: int) -> str:
    """Go's time.Duration.String(): "1h2m3.5s", "1.5ms", "0s"."""
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _decimal(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if hours or minutes else "")
    return sign + text + _decimal(rest, 1_000_000_000) + "s"


def _decimal(value: int, unit: int) -> str:
    whole, fraction = divmod(value, unit)
    if not fraction:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{fraction:0{digits}d}".rstrip("0")


# --- encoding -----------------------------------------------------------------------------------

DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "m": 60_000_000_000,
                  "h": 3_600_000_000_000}


def encode(obj: dict, msg: Message) -> bytes:
    return _encode_message(obj, msg, msg.short_name)


def _encode_message(obj, msg: Message, where: str) -> bytes:
    if not isinstance(obj, dict):
        raise ProtobufError(f"{where}: expected an object")
    known = _json_names(msg)
    unknown = set(obj) - known
    if unknown:
        raise ProtobufError(f"{where}: unknown field {sorted(unknown)[0]!r}")
    out = bytearray()
    for f in sorted((f for f in msg.fields if f.number is not None), key=lambda f: f.number):
        ref = msg.types[f.name]
        if f.inline:
            inner = types.message(ref.name)
            part = {k: v for k, v in obj.items() if k in _json_names(inner)}
            out += wire.field_bytes(f.number, _encode_message(part, inner, where))
            continue
        value = obj.get(f.name)
        if value is None:
            continue
        at = f"{where}.{f.name}"
        if ref.container == "list":
            if not isinstance(value, list):
                raise ProtobufError(f"{at}: expected a list")
            for item in value:
                out += _encode_value(f.number, item, ref, at)
        elif ref.container == "map":
            if not isinstance(value, dict):
                raise ProtobufError(f"{at}: expected an object")
            for entry_key, entry_value in value.items():
                entry = wire.field_bytes(1, str(entry_key).encode()) + _encode_value(2, entry_value, ref, at)
                out += wire.field_bytes(f.number, entry)
        else:
            out += _encode_value(f.number, value, ref, at)
    return bytes(out)


def _json_names(msg: Message) -> set[str]:
    names = set()
    for f in msg.fields:
        if f.inline:
            names |= _json_names(types.message(msg.types[f.name].name))
        else:
            names.add(f.name)
    return names


def _encode_value(number: int, value, ref: TypeRef, where: str) -> bytes:
    name = ref.name
    try:
        if name == "string":
            return wire.field_bytes(number, _check(value, str, where).encode())
        if name == "bytes":
            return wire.field_bytes(number, base64.b64decode(_check(value, str, where), validate=True))
        if name == "bool":
            return wire.field_varint(number, int(_check(value, bool, where)))
        if name in ("int32", "int64"):
            if type(value) is not int:
                raise ProtobufError(f"{where}: expected an integer")
            return wire.field_varint(number, value)
        if name == "float64":
            return wire.field_double(number, float(_check(value, (int, float), where)))
        if name in types.SPECIAL:
            return wire.field_bytes(number, _encode_special(name, value, where))
        return wire.field_bytes(number, _encode_message(value, types.message(name), where))
    except binascii.Error:
        raise ProtobufError(f"{where}: not base64") from None


def _check(value, kind, where: str):
    """value, if it is of the JSON kind wanted (a bool is not a number here, as in JSON)."""
    ok = type(value) is bool if kind is bool else isinstance(value, kind) and not isinstance(value, bool)
    if not ok:
        raise ProtobufError(f"{where}: expected {getattr(kind, '__name__', 'a number')}")
    return value


def _encode_special(name: str, value, where: str) -> bytes:
    if name == "Quantity":
        return wire.field_bytes(1, _check(value, str, where).encode())
    if name in ("Time", "MicroTime"):
        seconds, nanos = parse_time(_check(value, str, where), where)
        return wire.field_varint(1, seconds) + wire.field_varint(2, nanos)
    if name == "Duration":
        return wire.field_varint(1, parse_duration(_check(value, str, where), where))
    if name == "IntOrString":
        if isinstance(value, str):
            return wire.field_varint(1, 1) + wire.field_varint(2, 0) + wire.field_bytes(3, value.encode())
        if type(value) is not int:
            raise ProtobufError(f"{where}: expected an integer or a string")
        return wire.field_varint(1, 0) + wire.field_varint(2, value) + wire.field_bytes(3, b"")
    return wire.field_bytes(1, orjson.dumps(value))  # RawExtension, FieldsV1


def parse_time(text: str, where: str = "") -> tuple[int, int]:
    for layout in ("%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%dT%H:%M:%S.%fZ"):
        try:
            moment = datetime.strptime(text, layout).replace(tzinfo=timezone.utc)
        except ValueError:
            continue
        delta = moment - EPOCH
        return delta.days * 86400 + delta.seconds, delta.microseconds * 1000
    raise ProtobufError(f"{where}: {text!r} is not an RFC 3339 UTC time")


def parse_duration(text: str, where: str = "") -> int:
    sign, body = (-1, text[1:]) if text.startswith("-") else (1, text.lstrip("+"))
    if body == "0":
        return 0
    parts = DURATION_PART.findall(body)
    if not parts or "".join(number + unit for number, unit in parts) != body:
        raise ProtobufError(f"{where}: {text!r} is not a duration")
    total = sum(round(float(number) * DURATION_UNITS[unit]) for number, unit in parts)
    return sign * total
