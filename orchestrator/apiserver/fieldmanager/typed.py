"""Schema-aware operations on JSON objects, for server-side apply (pure).

The schema is the type table (orchestrator.api.types); how each position merges follows
Kubernetes' structured-merge-diff rules:
- a scalar, an atomic struct (+structType=atomic), an atomic list, an atomic map and any schemaless
  value (RawExtension, FieldsV1, a field the table does not know) is a leaf, owned and replaced
  as a whole;
- objects and maps are granular: each field or key separately;
- list-maps (+listType=map, or patchStrategy merge with a merge key) are granular by item, keyed by
  their key fields (an absent key takes its declared default, e.g. protocol TCP); sets
  (+listType=set) by item value.

Operations: `field_set` (which paths a value sets), `merge` (apply a configuration onto a live
object: the configuration wins), `compare` (added, removed and modified paths between two
versions), `remove` (drop the paths of a set), `with_named_fields` (also own the struct fields
whose insides are owned), all over a `Shape`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from orchestrator.api import types
from orchestrator.api.types import Message, TypeRef, list_semantics
from orchestrator.apiserver.fieldmanager.fieldpath import Element, FieldSet, Path, key_element, value_element

LEAF_SPECIALS = types.SPECIAL


class ShapeError(ValueError):
    """A value that does not fit the schema where apply needs it to (e.g. a list-map item without its key)."""


@dataclass(frozen=True)
class Shape:
    """How a position in an object merges: kind is "leaf", "message", "map" or "list"."""
    kind: str
    message: Message | None = None
    relation: str = ""  # lists: atomic | set | map
    keys: tuple[str, ...] = ()
    element: TypeRef | None = None
    key_defaults: tuple = ()

    def child(self, name: str) -> tuple[Shape, bool]:
        """The shape of a field of a message (or a key of a map), and whether Go's zero value of
        the parent already holds it (then its own node is never "added", only what is inside)."""
        if self.kind == "map":
            return shape_of(self.element), False
        if self.kind != "message":
            return LEAF, False
        found = _fields(self.message.name).get(name)
        if found is None:
            return LEAF, False
        owner, f = found
        return field_shape(owner.name, f.name), _implicit(owner, f.name)

    def declares(self, name: str) -> bool:
        return self.kind == "message" and name in _fields(self.message.name)


LEAF = Shape("leaf")


@functools.lru_cache(maxsize=None)
def _fields(message_name: str) -> dict:
    """JSON name -> (owning message, field), embedded structs flattened."""
    msg = types.message(message_name)
    out = {}
    for f in msg.fields:
        if f.inline:
            out.update(_fields(msg.types[f.name].name))
        else:
            out[f.name] = (msg, f)
    return out


def _implicit(owner: Message, name: str) -> bool:
    f, ref = owner.by_name[name], owner.types[name]
    if ref.pointer:
        return False
    non_omitempty = f.required or f.keep_zero
    return non_omitempty or (ref.is_message and not ref.container)


def shape_of(ref: TypeRef) -> Shape:
    if ref.name in types.SCALARS or ref.name in LEAF_SPECIALS:
        return LEAF
    msg = types.message(ref.name)
    return LEAF if msg.atomic else Shape("message", msg)


@functools.lru_cache(maxsize=None)
def field_shape(message_name: str, name: str) -> Shape:
    msg = types.message(message_name)
    f, ref = msg.by_name[name], msg.types[name]
    element = TypeRef(ref.name)
    if ref.container == "list":
        relation, keys = list_semantics(f, element)
        if relation == "atomic":
            return LEAF
        defaults = ()
        if relation == "map" and element.is_message:
            inner = _fields(element.name)
            defaults = tuple((k, inner[k][1].default) for k in keys if k in inner and inner[k][1].default is not None)
        return Shape("list", relation=relation, keys=keys, element=element, key_defaults=defaults)
    if ref.container == "map":
        return LEAF if f.map_type == "atomic" else Shape("map", element=element)
    return shape_of(ref)


def kind_shape(msg: Message) -> Shape:
    return Shape("message", msg)


# --- list items -----------------------------------------------------------------------------------


def item_element(shape: Shape, item, strict: bool) -> Element:
    """The path element of a list item. strict: an applied configuration, where a list-map item
    must carry its keys; a live object falls back to null for a missing key."""
    if shape.relation == "set":
        return value_element(item)
    defaults = dict(shape.key_defaults)
    keys = {}
    for name in shape.keys:
        if isinstance(item, dict) and name in item:
            keys[name] = item[name]
        elif name in defaults:
            keys[name] = defaults[name]
        elif strict:
            raise ShapeError(f"an item of a list keyed by {', '.join(shape.keys)} has no {name!r}")
        else:
            keys[name] = None
    return key_element(keys)


def _index(shape: Shape, items: list, strict: bool) -> tuple[list[Element], dict[Element, list]]:
    order, found = [], {}
    for item in items:
        element = item_element(shape, item, strict)
        if element in found:
            if strict:
                raise ShapeError(f"duplicate entries for {element[1]}")
            found[element].append(item)
        else:
            found[element] = [item]
            order.append(element)
    return order, found


# --- field sets ---------------------------------------------------------------------------------


def field_set(value, shape: Shape, strict: bool = False) -> FieldSet:
    """The paths `value` sets, as Kubernetes' ToFieldSet counts them."""
    return FieldSet.of(*_paths(value, shape, (), strict))


def _paths(value, shape: Shape, path: Path, strict: bool):
    if shape.kind == "leaf" or value is None:
        if path:
            yield path
        return
    if shape.kind == "list":
        if not isinstance(value, list):
            yield path
            return
        order, found = _index(shape, value, strict)
        element_shape = shape_of(shape.element)
        for element in order:
            items = found[element]
            if len(items) == 1:
                yield from _paths(items[0], element_shape, path + (element,), strict)
            yield path + (element,)
        return
    if not isinstance(value, dict):
        yield path
        return
    for name, child in value.items():
        child_shape, _ = shape.child(name)
        child_path = path + (("f", name),)
        yield from _paths(child, child_shape, child_path, strict)
        if child is None or child == {} or not shape.declares(name):
            yield child_path


def with_named_fields(fields: FieldSet, shape: Shape) -> FieldSet:
    """Also own a struct's declared fields whose insides are owned (Kubernetes'
    EnsureNamedFieldsAreMembers), so that pruning can remove them whole."""
    if fields.empty() or shape.kind == "leaf":
        return fields
    members = set(fields.members)
    children = {}
    for element, child in fields.children.items():
        if shape.kind == "list":
            children[element] = with_named_fields(child, shape_of(shape.element))
            continue
        if element[0] != "f":
            children[element] = child
            continue
        if shape.declares(element[1]):
            members.add(element)
        children[element] = with_named_fields(child, shape.child(element[1])[0])
    return FieldSet(frozenset(members), children)


# --- merge ----------------------------------------------------------------------------------------


def merge(live, config, shape: Shape):
    """`config` applied onto `live`: leaves and atomic values from config; objects, maps, list-maps
    and sets merged; the order of list items follows the configuration where both have them."""
    if live is None or config is None or shape.kind == "leaf":
        return config
    if shape.kind == "list":
        if not isinstance(live, list) or not isinstance(config, list):
            return config
        return _merge_items(live, config, shape)
    if not isinstance(live, dict) or not isinstance(config, dict):
        return config
    out = dict(live)
    for name, value in config.items():
        out[name] = merge(live.get(name), value, shape.child(name)[0]) if name in live else value
    return out


def _merge_items(live: list, config: list, shape: Shape) -> list:
    live_order, live_items = _index(shape, live, strict=False)
    config_order, config_items = _index(shape, config, strict=True)
    element_shape = shape_of(shape.element)
    out, done = [], set()

    def emit_config_through(target: Element) -> None:
        for element in config_order:
            if element not in done:
                done.add(element)
                mine = live_items.get(element)
                out.append(merge(mine[0], config_items[element][0], element_shape) if mine and len(mine) == 1
                           else config_items[element][0])
            if element == target:
                return
    for element in live_order:
        if element in done:
            continue
        if element in config_items:
            emit_config_through(element)
        else:
            done.add(element)
            out.extend(live_items[element])
    emit_config_through(None)
    return out


# --- compare --------------------------------------------------------------------------------------


@dataclass
class Comparison:
    added: FieldSet
    removed: FieldSet
    modified: FieldSet

    def changed(self) -> FieldSet:
        return self.modified.union(self.added)


def compare(old, new, shape: Shape) -> Comparison:
    added, removed, modified = [], [], []
    _compare(old, new, shape, (), added, removed, modified, implicit=True)
    return Comparison(FieldSet.of(*added), FieldSet.of(*removed), FieldSet.of(*modified))


_MISSING = object()


def _compare(old, new, shape: Shape, path: Path, added, removed, modified, implicit: bool) -> None:
    if old is not _MISSING and new is not _MISSING and old == new:
        return
    if shape.kind == "leaf" or not _container(old, shape) or not _container(new, shape):
        if old is _MISSING:
            added.append(path)
        elif new is _MISSING:
            removed.append(path)
        else:
            modified.append(path)
        return
    if not implicit and path:
        if old is _MISSING:
            added.append(path)
        elif new is _MISSING:
            removed.append(path)
    if shape.kind == "list":
        _compare_items(old, new, shape, path, added, removed, modified)
        return
    old_map = old if old is not _MISSING else {}
    new_map = new if new is not _MISSING else {}
    for name in list(old_map) + [n for n in new_map if n not in old_map]:
        child_shape, child_implicit = shape.child(name)
        _compare(old_map.get(name, _MISSING), new_map.get(name, _MISSING), child_shape, path + (("f", name),),
                 added, removed, modified, child_implicit)


def _container(value, shape: Shape) -> bool:
    if value is _MISSING:
        return True
    return isinstance(value, list) if shape.kind == "list" else isinstance(value, dict)


def _compare_items(old, new, shape: Shape, path: Path, added, removed, modified) -> None:
    old_order, old_items = _index(shape, old if old is not _MISSING else [], strict=False)
    new_order, new_items = _index(shape, new if new is not _MISSING else [], strict=False)
    element_shape = shape_of(shape.element)
    for element in old_order + [e for e in new_order if e not in old_items]:
        before, after = old_items.get(element, []), new_items.get(element, [])
        item_path = path + (element,)
        if len(before) <= 1 and len(after) <= 1:
            _compare(before[0] if before else _MISSING, after[0] if after else _MISSING, element_shape, item_path,
                     added, removed, modified, implicit=False)
        elif before != after:
            (modified if before and after else added if after else removed).append(item_path)


# --- remove ---------------------------------------------------------------------------------------


def remove(value, fields: FieldSet, shape: Shape):
    """`value` without the paths in `fields` (a member goes whole, with everything below it)."""
    if fields.empty() or value is None or shape.kind == "leaf":
        return value
    if shape.kind == "list":
        if not isinstance(value, list):
            return value
        element_shape = shape_of(shape.element)
        out = []
        for item in value:
            element = item_element(shape, item, strict=False)
            if element in fields.members:
                continue
            out.append(remove(item, fields.children[element], element_shape) if element in fields.children else item)
        return out
    if not isinstance(value, dict):
        return value
    out = {}
    for name, child in value.items():
        element = ("f", name)
        if element in fields.members:
            continue
        out[name] = remove(child, fields.children[element], shape.child(name)[0]) if element in fields.children \
            else child
    return out
