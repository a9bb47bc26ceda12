"""Field validation of request bodies against the type table (pure).

Kubernetes decodes every body into typed structs, so (api-concepts, "Field validation"):
- a value of the wrong JSON type is always refused (400): "json: cannot unmarshal string into Go
  struct field DeploymentSpec.spec.replicas of type int32";
- an unknown field is dropped, and the `fieldValidation` parameter says what the client hears:
  Ignore (nothing), Warn (the default: one `Warning` header per field, which kubectl prints) or
  Strict (400: `Deployment in version "v1" cannot be handled as a Deployment: strict decoding
  error: unknown field "spec.replicass"`);
- a duplicate field in a JSON or YAML object counts the same way (`duplicate field "spec.replicas"`);
  the last value wins.
Quantities sent as JSON numbers are stored as strings, as Kubernetes serializes them. Paths are the
JSON path from the object's root, with list indexes: `spec.template.spec.containers[0].imagee`.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

import yaml

from orchestrator.api import types
from orchestrator.api.types import Message, TypeRef

DIRECTIVES = ("Ignore", "Warn", "Strict")
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
KEY_TOKEN = re.compile(rb'"\s*:')
GO_TYPES = {"string": "string", "int32": "int32", "int64": "int64", "bool": "bool", "float64": "float64",
            "bytes": "[]uint8"}


class FieldTypeError(ValueError):
    """A value of the wrong JSON type: the request cannot be decoded (400)."""


class FieldValidationError(ValueError):
    """fieldValidation=Strict and the body had unknown or duplicate fields (400)."""


def directive(value: str | None) -> str:
    if value in (None, ""):
        return "Warn"
    if value not in DIRECTIVES:
        raise ValueError(f'fieldValidation must be one of "Ignore", "Warn" or "Strict", not {value!r}')
    return value


# --- duplicates -----------------------------------------------------------------------------------


def duplicate_fields_json(raw: bytes, parsed) -> list[str]:
    """Paths of keys that appear twice in one JSON object of `raw` (`parsed` is its decoded value).
    Fast path: when the `"key":` tokens are as many as the keys parsed there can be none, since
    every key adds a token and only string contents can add more."""
    if len(KEY_TOKEN.findall(raw)) == _count_keys(parsed):
        return []
    return _duplicates(json.loads(raw, object_pairs_hook=_Pairs))


def duplicate_fields_yaml(text: bytes | str) -> list[str]:
    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                           lambda loader, node: _Pairs(loader.construct_pairs(node, deep=True)))
    return _duplicates(yaml.load(text, Loader=Loader))


class _Pairs(list):
    """An object's (key, value) pairs in order, duplicates kept."""


def _duplicates(tree) -> list[str]:
    out: list[str] = []

    def walk(node, path: str) -> None:
        if isinstance(node, _Pairs):
            seen = set()
            for key, value in node:
                where = f"{path}.{key}" if path else str(key)
                if key in seen and where not in out:
                    out.append(where)
                seen.add(key)
                walk(value, where)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")
    walk(tree, "")
    return out


def _count_keys(node) -> int:
    if isinstance(node, dict):
        return len(node) + sum(_count_keys(v) for v in node.values())
    if isinstance(node, list):
        return sum(_count_keys(v) for v in node)
    return 0


# --- unknown fields and types ---------------------------------------------------------------------


def check(obj: dict, msg: Message, known: dict | None = None) -> tuple[dict, list[str]]:
    """(the object without unknown fields, their paths). Raises FieldTypeError on a wrong type.

    known: an object already checked (the stored one a patch was applied to); a part of `obj`
    that *is* (by identity) the same part of `known` is not checked again, which leaves a patch
    to pay only for what it changed."""
    unknown: list[str] = []
    cleaned = _message(obj, msg, "", unknown, msg.short_name, known)
    return cleaned, unknown


def _fields(msg: Message) -> dict:
    out = {}
    for f in msg.fields:
        if f.inline:
            out.update(_fields(types.message(msg.types[f.name].name)))
        else:
            out[f.name] = (msg, f)
    return out


_FIELD_CACHE: dict[str, dict] = {}


def _message(value, msg: Message, path: str, unknown: list[str], struct: str, known=None) -> dict:
    if not isinstance(value, dict):
        raise _mismatch(value, struct, path, "object")
    fields = _FIELD_CACHE.get(msg.name)
    if fields is None:
        fields = _FIELD_CACHE[msg.name] = _fields(msg)
    if not isinstance(known, dict):
        known = {}
    out = {}
    for name, child in value.items():
        where = f"{path}.{name}" if path else name
        found = fields.get(name)
        if found is None:
            unknown.append(where)
            continue
        owner, _ = found
        if child is None or child is known.get(name):
            out[name] = child
            continue
        out[name] = _value(child, owner.types[name], where, unknown, owner.short_name, known.get(name))
    return out


def _value(value, ref: TypeRef, path: str, unknown: list[str], struct: str, known=None):
    if ref.container == "list":
        if not isinstance(value, list):
            raise _mismatch(value, struct, path, "[]" + _go_name(ref))
        element = TypeRef(ref.name)
        return [item if item is None else _value(item, element, f"{path}[{i}]", unknown, struct)
                for i, item in enumerate(value)]
    if ref.container == "map":
        if not isinstance(value, dict):
            raise _mismatch(value, struct, path, "map[string]" + _go_name(ref))
        element = TypeRef(ref.name)
        return {k: v if v is None else _value(v, element, f"{path}.{k}", unknown, struct) for k, v in value.items()}
    if ref.is_message:
        return _message(value, types.message(ref.name), path, unknown, types.message(ref.name).short_name, known)
    return _scalar(value, ref.name, path, struct)


def _scalar(value, name: str, path: str, struct: str):
    kind = type(value)
    if name == "string":
        ok = kind is str
    elif name in ("int32", "int64"):
        bits = 31 if name == "int32" else 63
        ok = kind is int and -(1 << bits) <= value < (1 << bits)
    elif name == "bool":
        ok = kind is bool
    elif name == "float64":
        ok = kind in (int, float)
    elif name == "bytes":
        ok = kind is str and _is_base64(value)
    elif name == "Quantity":
        if kind in (int, float):
            return str(int(value)) if kind is float and value.is_integer() else str(value)
        ok = kind is str
    elif name in ("Time", "MicroTime"):
        ok = kind is str and bool(TIME.match(value))
    elif name == "IntOrString":
        ok = kind is str or (kind is int)
    elif name == "Duration":
        ok = kind is str
    elif name == "FieldsV1":
        ok = kind is dict
    else:  # RawExtension: any JSON
        ok = True
    if not ok:
        raise _mismatch(value, struct, path, _go_name(TypeRef(name)))
    return value


def _is_base64(text: str) -> bool:
    try:
        base64.b64decode(text, validate=True)
        return True
    except (binascii.Error, ValueError):
        return False


def _go_name(ref: TypeRef) -> str:
    if ref.name in GO_TYPES:
        return GO_TYPES[ref.name]
    if ref.name in types.SPECIAL:
        return {"Quantity": "resource.Quantity", "IntOrString": "intstr.IntOrString"}.get(ref.name, "v1." + ref.name)
    return ref.name.rsplit(".", 1)[1]


def _json_kind(value) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), "value")


def _mismatch(value, struct: str, path: str, go_type: str) -> FieldTypeError:
    return FieldTypeError(f"json: cannot unmarshal {_json_kind(value)} into Go struct field {struct}.{path} "
                          f"of type {go_type}")


# --- messages -------------------------------------------------------------------------------------


def problems(unknown: list[str], duplicates: list[str]) -> list[str]:
    return [f'duplicate field "{path}"' for path in duplicates] + [f'unknown field "{path}"' for path in unknown]


def strict_message(kind: str, version: str, found: list[str]) -> str:
    return f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: ' + ", ".join(found)


def decode_message(kind: str, version: str, err: Exception) -> str:
    return f'{kind} in version "{version}" cannot be handled as a {kind}: {err}'
