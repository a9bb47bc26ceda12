"""Request bodies into JSON objects, as Kubernetes decodes them (pure).

- `application/json` (also anything unnamed), `application/yaml`, and
  `application/vnd.kubernetes.protobuf` (kubectl 1.32+ sends its generator commands' objects so):
  each becomes the same JSON object. A body that cannot be read is a 400 that says why; a
  protobuf kind Ketch does not describe is a 415.
- Field validation (fieldvalidation.py) against the kind's description: wrong types are a 400;
  unknown and duplicate fields become warnings, or a 400 under fieldValidation=Strict.
- Patch bodies: JSON (json-patch, merge-patch, strategic-merge-patch) or, for server-side apply,
  YAML (`application/apply-patch+yaml`, which kubectl sends as JSON, itself valid YAML).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson
import yaml

from orchestrator.api.types import Message
from orchestrator.apiserver import errors, fieldvalidation, protocodec

JSON = "application/json"
PROTOBUF = "application/vnd.kubernetes.protobuf"
APPLY = "application/apply-patch+yaml"
JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC, APPLY)


@dataclass
class Decoded:
    """A decoded body and the warnings it earned (sent as `Warning` headers)."""
    obj: object
    warnings: list[str] = field(default_factory=list)


def media_type(header: str | None) -> str:
    return (header or JSON).split(";")[0].strip().lower() or JSON


def parse(raw: bytes, content_type: str) -> tuple[object, list[str]]:
    """(the decoded value, paths of duplicate fields). YAML is read only when it is not JSON."""
    kind = media_type(content_type)
    if kind == PROTOBUF:
        try:
            return protocodec.decode_object(raw), []
        except protocodec.UnsupportedKind as err:
            raise errors.APIError(415, "UnsupportedMediaType", str(err)) from None
        except protocodec.ProtobufError as err:
            raise errors.bad_request(f"the protobuf request body is malformed: {err}") from None
    try:
        value = orjson.loads(raw)
        return value, fieldvalidation.duplicate_fields_json(raw, value)
    except orjson.JSONDecodeError as err:
        if "yaml" not in kind:
            raise errors.bad_request(f"the request body is not valid JSON: {err}") from None
    try:
        return yaml.safe_load(raw), fieldvalidation.duplicate_fields_yaml(raw)
    except (yaml.YAMLError, ValueError) as err:
        raise errors.bad_request(f"the request body is not valid YAML: {str(err).splitlines()[0]}") from None


def decode_object(raw: bytes, content_type: str, msg: Message | None, directive: str) -> Decoded:
    """A create or update body (or any object body), validated against `msg` when given."""
    if not raw.strip():
        raise errors.bad_request("the request has no body")
    value, duplicates = parse(raw, content_type)
    if not isinstance(value, dict):
        raise errors.bad_request("the request body must be an object")
    return validate(value, msg, directive, duplicates)


def validate(obj: dict, msg: Message | None, directive: str, duplicates: list[str] = (),
             known: dict | None = None) -> Decoded:
    """Field validation of a whole object: wrong types refused, unknown fields dropped and reported.
    known: the stored object a patch started from (its untouched parts need no second check)."""
    if msg is None:
        return Decoded(obj)
    group, version, kind = msg.gvk
    try:
        cleaned, unknown = fieldvalidation.check(obj, msg, known)
    except fieldvalidation.FieldTypeError as err:
        raise errors.bad_request(fieldvalidation.decode_message(kind, version, err)) from None
    found = fieldvalidation.problems(unknown, list(duplicates))
    if found and directive == "Strict":
        raise errors.bad_request(fieldvalidation.strict_message(kind, version, found))
    return Decoded(cleaned, found if directive == "Warn" else [])


def decode_patch(raw: bytes, content_type: str) -> Decoded:
    """A patch body: a list of operations for json-patch, an object otherwise. Duplicate fields
    are returned as warnings here; Strict turns them into errors where the patch is applied."""
    kind = media_type(content_type)
    if kind not in PATCH_TYPES:
        raise errors.APIError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format - "
                              f"accepted media types include: {', '.join(PATCH_TYPES)}")
    if not raw.strip():
        raise errors.bad_request("the patch is empty")
    value, duplicates = parse(raw, "application/yaml" if kind == APPLY else JSON)
    if kind == JSON_PATCH:
        if not isinstance(value, list):
            raise errors.bad_request("a json patch is a list of operations")
    elif not isinstance(value, dict):
        raise errors.bad_request("a merge patch must be a JSON object" if kind != APPLY
                                 else "an apply patch must be an object")
    return Decoded(value, fieldvalidation.problems([], duplicates))
