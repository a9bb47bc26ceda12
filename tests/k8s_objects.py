"""Hypothesis strategies for Kubernetes objects, drawn from the type table (orchestrator.api.types).

`objects_of(message)` draws JSON objects of that message: any subset of its fields, values of the
field's type, and no zero value where Go's JSON would leave the field out (so a protobuf round trip
is exact).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from hypothesis import strategies as st

from orchestrator.api import types
from orchestrator.api.types import Message, TypeRef
from orchestrator.apiserver.protocodec import format_duration

TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF), max_size=12)
WORD = st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True)
MOMENTS = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(timezone.utc))
JSON_LEAF = st.none() | st.booleans() | st.integers(-1000, 1000) | WORD
JSON_VALUE = st.recursive(
    JSON_LEAF, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORD, inner, max_size=3), max_leaves=6)


def scalar(name: str, zero_ok: bool) -> st.SearchStrategy:
    if name == "string":
        return TEXT if zero_ok else TEXT.filter(bool)
    if name == "int32":
        return st.integers(-2**31, 2**31 - 1).filter(lambda v: zero_ok or v != 0)
    if name == "int64":
        return st.integers(-2**63, 2**63 - 1).filter(lambda v: zero_ok or v != 0)
    if name == "bool":
        return st.booleans() if zero_ok else st.just(True)
    if name == "float64":
        return st.floats(allow_nan=False, allow_infinity=False).filter(lambda v: zero_ok or v != 0)
    if name == "bytes":
        return st.binary(min_size=0 if zero_ok else 1, max_size=8).map(lambda b: base64.b64encode(b).decode())
    if name == "Quantity":
        return st.sampled_from(["1", "100m", "2Gi", "0.5", "1e3", "250Mi"])
    if name == "Time":
        return MOMENTS.map(lambda m: m.strftime("%Y-%m-%dT%H:%M:%SZ"))
    if name == "MicroTime":
        return MOMENTS.map(lambda m: m.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    if name == "Duration":
        return st.integers(1, 10**13).map(format_duration)
    if name == "IntOrString":
        return st.integers(1, 65535) | WORD
    if name in ("RawExtension", "FieldsV1"):
        return st.dictionaries(WORD, JSON_VALUE, max_size=3)
    raise ValueError(name)


def value_of(ref: TypeRef, zero_ok: bool, depth: int) -> st.SearchStrategy:
    if ref.is_message:
        element = objects_of(types.message(ref.name), depth + 1)
    else:
        element = scalar(ref.name, zero_ok if not ref.container else True)
        if ref.name in ("Quantity", "IntOrString", "Time", "MicroTime", "Duration", "RawExtension", "FieldsV1"):
            element = scalar(ref.name, False)
    if ref.container == "list":
        return st.lists(element, min_size=1, max_size=2)
    if ref.container == "map":
        return st.dictionaries(WORD, element, min_size=1, max_size=2)
    return element


def objects_of(msg: Message, depth: int = 0) -> st.SearchStrategy[dict]:
    """Objects of `msg`; below depth 4 only empty messages, to keep examples small."""
    if depth > 4:
        return st.just({})
    optional: dict[str, st.SearchStrategy] = {}
    inline: list[st.SearchStrategy] = []
    for f in msg.fields:
        ref = msg.types[f.name]
        if f.number is None:
            continue
        if f.inline:
            inline.append(objects_of(types.message(ref.name), depth))
            continue
        optional[f.name] = value_of(ref, f.keep_zero, depth)
    own = st.fixed_dictionaries({}, optional=optional)
    if not inline:
        return own
    return st.tuples(own, *inline).map(lambda parts: {k: v for part in parts for k, v in part.items()})


SERVED_KINDS = sorted(gvk for gvk, msg in types.KINDS.items() if not gvk[2].endswith("List"))
