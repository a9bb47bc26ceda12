"""The shape of Kubernetes' API types, as data (pure, standard library only).

Theory of operation. Every served kind is described once, in this package, as `Message`s made of
`Field`s. Everything else is derived from that one description: the OpenAPI v2 and v3 documents
(`kubectl explain`, client-side apply's patch metadata), the protobuf codec (kubectl 1.32+ sends
protobuf bodies), server-side apply's merge rules and managedFields, and field validation
(unknown and duplicate fields). Nothing is hand-kept JSON.

A field's type is written the way Go spells it, which is how Kubernetes' types.go reads:
`string`, `*int32`, `[]Container`, `map[string]Quantity`, `meta.v1.LabelSelector`. Names without a
package resolve in the message's own package. A leading `*` marks a Go pointer: a zero value it
carries is meaningful (kept when decoded from protobuf). The special value types are:

    Quantity     "100m", "1Gi"                  protobuf: message {string = 1}
    Time         RFC 3339, whole seconds         protobuf: message {seconds = 1, nanos = 2}
    MicroTime    RFC 3339, microseconds          protobuf: as Time
    Duration     Go duration text ("1m30s")      protobuf: message {duration (ns) = 1}
    IntOrString  80 or "http"                    protobuf: message {type = 1, intVal = 2, strVal = 3}
    RawExtension any JSON value                  protobuf: message {raw = 1}
    FieldsV1     a managedFields field set       protobuf: message {Raw = 1}
    bytes        base64 text in JSON             protobuf: length-delimited bytes

Field facts come from Kubernetes' k8s.io/api and k8s.io/apimachinery sources at v0.33 (numbers
from generated.proto, JSON names, omitempty, pointers and the +listType / +listMapKey /
patchStrategy / patchMergeKey / +mapType / +structType markers from types.go). Descriptions are
our own, kept short.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCALARS = {"string", "int32", "int64", "bool", "float64", "bytes"}
SPECIAL = {"Quantity", "Time", "MicroTime", "Duration", "IntOrString", "RawExtension", "FieldsV1"}


@dataclass(frozen=True)
class TypeRef:
    """A parsed field type: `container` is "" (a single value), "list" or "map" (string keys)."""
    name: str
    container: str = ""
    pointer: bool = False

    @property
    def is_message(self) -> bool:
        return self.name not in SCALARS and self.name not in SPECIAL


def parse_type(text: str, package: str) -> TypeRef:
    pointer = text.startswith("*")
    text = text.lstrip("*")
    container = ""
    if text.startswith("[]"):
        container, text = "list", text[2:]
    elif text.startswith("map[string]"):
        container, text = "map", text[len("map[string]"):]
    if text not in SCALARS and text not in SPECIAL and text.count(".") < 2:
        text = f"{package}.{text}"
    return TypeRef(text, container, pointer)


@dataclass(frozen=True)
class Field:
    """One field of a message.

    number:    protobuf field number (None: JSON only, e.g. apiVersion and kind)
    name:      the JSON name
    type:      Go-like type text, see the module docstring
    doc:       a short description (kubectl explain prints it)
    required:  listed as required in OpenAPI (Go: no omitempty, not +optional)
    keep_zero: a zero value is part of the JSON (no omitempty, or a pointer)
    list_type: "atomic" | "set" | "map" for lists (+listType; derived from the patch strategy when absent)
    map_keys:  the keys of a list-map (+listMapKey)
    patch:     the strategic merge patch strategy ("merge", "retainKeys", "merge,retainKeys", "replace")
    merge_key: the strategic merge patch key of a list of objects
    map_type:  "atomic" for maps replaced as a whole (+mapType=atomic)
    inline:    the message's fields appear in the parent's JSON (an embedded Go struct)
    default:   the server's default (used for absent list-map keys, as Kubernetes does)
    """
    number: int | None
    name: str
    type: str
    doc: str = ""
    required: bool = False
    keep_zero: bool = False
    list_type: str | None = None
    map_keys: tuple[str, ...] = ()
    patch: str | None = None
    merge_key: str | None = None
    map_type: str | None = None
    inline: bool = False
    default: object = None


@dataclass
class Message:
    """A message type: `name` is package-qualified ("apps.v1.DeploymentSpec")."""
    name: str
    doc: str
    fields: list[Field]
    atomic: bool = False  # +structType=atomic: replaced as a whole by merges and applies
    gvk: tuple[str, str, str] | None = None  # set on the top-level kinds
    types: dict[str, TypeRef] = field(default_factory=dict, repr=False)
    by_name: dict[str, Field] = field(default_factory=dict, repr=False)
    by_number: dict[int, Field] = field(default_factory=dict, repr=False)
    short_name: str = field(default="", repr=False)  # "DeploymentSpec"

    def __post_init__(self) -> None:
        package, self.short_name = self.name.rsplit(".", 1)
        for f in self.fields:
            self.types[f.name] = parse_type(f.type, package)
            self.by_name[f.name] = f
            if f.number is not None:
                self.by_number[f.number] = f

    @property
    def package(self) -> str:
        return self.name.rsplit(".", 1)[0]



def F(number: int | None, name: str, type_: str, doc: str = "", **facts) -> Field:  # noqa: N802 (reads as a table row)
    """A field, as one table row: F(2, "selector", "meta.v1.LabelSelector", "…", required=True)."""
    if facts.get("required"):
        facts.setdefault("keep_zero", True)
    if type_.startswith("*"):
        facts.setdefault("keep_zero", True)
    if "map_keys" in facts:
        facts["map_keys"] = tuple(facts["map_keys"])
        facts.setdefault("list_type", "map")
    return Field(number, name, type_, doc, **facts)


def list_semantics(f: Field, element: TypeRef) -> tuple[str, tuple[str, ...]]:
    """How a list merges: ("atomic" | "set" | "map", keys), as Kubernetes derives it: +listType
    first; else patchStrategy merge makes a list-map on the merge key (a set for scalars); else atomic."""
    if f.list_type:
        keys = f.map_keys or ((f.merge_key,) if f.list_type == "map" and f.merge_key else ())
        return f.list_type, keys
    if f.patch and "merge" in f.patch.split(","):
        if f.merge_key:
            return "map", (f.merge_key,)
        if not element.is_message:
            return "set", ()
    return "atomic", ()
