"""Sets of field paths, the currency of server-side apply (pure).

A path is a sequence of path elements; an element is one of
    ("f", name)     a field of an object or a key of a map             serialized f:name
    ("k", json)     an item of a list-map, by its keys (sorted JSON)   serialized k:{"name":"web"}
    ("v", json)     an item of a set list, by its value (JSON)         serialized v:"a"
    ("i", index)    an item of an atomic list (never owned alone)      serialized i:0

A `FieldSet` is a trie: `members` are the elements owned as a whole at this level, `children` the
elements below which something is owned. An element may be both (an owned list item whose fields
are owned too); in the FieldsV1 JSON format this is the `".": {}` entry, as Kubernetes writes it:

    {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}, "f:spec": {"f:replicas": {}}}

Sets are immutable values: every operation returns a new set.
"""

from __future__ import annotations

import json
from typing import Iterator

Element = tuple[str, str]
Path = tuple[Element, ...]
KIND_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


class FieldsError(ValueError):
    """A FieldsV1 document that cannot be read."""


def field(name: str) -> Element:
    return ("f", name)


def key_element(keys: dict) -> Element:
    return ("k", json.dumps(keys, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def value_element(value) -> Element:
    return ("v", json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False))


def _sort_key(element: Element):
    return KIND_ORDER[element[0]], element[1]


class FieldSet:
    __slots__ = ("members", "children", "_document")

    def __init__(self, members: frozenset[Element] = frozenset(), children: dict[Element, FieldSet] | None = None):
        self.members = members
        self.children = children or {}
        self._document: dict | None = None  # to_fields_v1's answer, kept: the set never changes

    # --- building -----------------------------------------------------------------------------

    @classmethod
    def of(cls, *paths: Path) -> FieldSet:
        """The set of the given paths (built as one mutable trie, then frozen)."""
        root: dict = {}
        for path in paths:
            if not path:
                continue
            node = root
            for element in path[:-1]:
                node = node.setdefault(element, [False, {}])[1]
            node.setdefault(path[-1], [False, {}])[0] = True
        return cls._freeze(root)

    @classmethod
    def _freeze(cls, node: dict) -> FieldSet:
        members = frozenset(element for element, (member, _) in node.items() if member)
        children = {element: cls._freeze(below) for element, (_, below) in node.items() if below}
        return cls(members, children)

    def with_path(self, path: Path) -> FieldSet:
        if not path:
            return self
        head, rest = path[0], path[1:]
        if not rest:
            return FieldSet(self.members | {head}, self.children)
        children = dict(self.children)
        children[head] = children.get(head, EMPTY).with_path(rest)
        return FieldSet(self.members, children)

    # --- queries ------------------------------------------------------------------------------

    def empty(self) -> bool:
        return not self.members and not self.children

    def has(self, path: Path) -> bool:
        node = self
        for element in path[:-1]:
            node = node.children.get(element)
            if node is None:
                return False
        return bool(path) and path[-1] in node.members

    def paths(self, prefix: Path = ()) -> Iterator[Path]:
        """Every owned path (members), in a stable order."""
        for element in sorted(self.members | set(self.children), key=_sort_key):
            if element in self.members:
                yield prefix + (element,)
            if element in self.children:
                yield from self.children[element].paths(prefix + (element,))

    def __eq__(self, other) -> bool:
        return isinstance(other, FieldSet) and self.members == other.members and self.children == other.children

    def __repr__(self) -> str:
        return f"FieldSet({[path_text(p) for p in self.paths()]})"

    # --- algebra ------------------------------------------------------------------------------

    def union(self, other: FieldSet) -> FieldSet:
        if other.empty():
            return self
        if self.empty():
            return other
        children = dict(self.children)
        for element, child in other.children.items():
            children[element] = children[element].union(child) if element in children else child
        return FieldSet(self.members | other.members, children)

    def difference(self, other: FieldSet) -> FieldSet:
        """Members of self not members of other, at each level (a member of other does not remove
        the children below it: only what is named)."""
        if other.empty() or self.empty():
            return self
        children = {}
        for element, child in self.children.items():
            rest = child.difference(other.children[element]) if element in other.children else child
            if not rest.empty():
                children[element] = rest
        return FieldSet(self.members - other.members, children)

    def intersection(self, other: FieldSet) -> FieldSet:
        if other.empty() or self.empty():
            return EMPTY
        children = {}
        for element, child in self.children.items():
            if element in other.children:
                both = child.intersection(other.children[element])
                if not both.empty():
                    children[element] = both
        return FieldSet(self.members & other.members, children)

    # --- FieldsV1 -----------------------------------------------------------------------------

    def to_fields_v1(self) -> dict:
        """The FieldsV1 document (the same dict each time: callers must not change it)."""
        if self._document is None:
            self._document = self._render()
        return self._document

    def _render(self) -> dict:
        out = {}
        for element in sorted(self.members | set(self.children), key=_sort_key):
            node = self.children[element].to_fields_v1() if element in self.children else {}
            if element in self.members and element in self.children:
                node = {".": {}, **node}
            out[f"{element[0]}:{element[1]}"] = node
        return out

    @classmethod
    def from_fields_v1(cls, document, depth: int = 0) -> FieldSet:
        if not isinstance(document, dict):
            raise FieldsError("a FieldsV1 node must be an object")
        if depth > 64:
            raise FieldsError("FieldsV1 nests too deep")
        members, children = set(), {}
        for text, node in document.items():
            if text == ".":
                continue
            element = _parse_element(text)
            if not isinstance(node, dict):
                raise FieldsError(f"the FieldsV1 node of {text!r} must be an object")
            if not node or "." in node:
                members.add(element)
            child = cls.from_fields_v1(node, depth + 1)
            if not child.empty():
                children[element] = child
        return cls(frozenset(members), children)


EMPTY = FieldSet()


def _parse_element(text: str) -> Element:
    kind, sep, rest = text.partition(":")
    if not sep or kind not in KIND_ORDER:
        raise FieldsError(f"{text!r} is not a FieldsV1 path element (f:, k:, v: or i:)")
    if kind in ("k", "v"):
        try:
            value = json.loads(rest)
        except ValueError:
            raise FieldsError(f"{text!r} does not hold JSON") from None
        if kind == "k" and not isinstance(value, dict):
            raise FieldsError(f"{text!r}: a key element holds an object")
        return key_element(value) if kind == "k" else value_element(value)
    if kind == "i" and not rest.isdigit():
        raise FieldsError(f"{text!r}: an index element holds a number")
    return (kind, rest)


def element_text(element: Element) -> str:
    """As Kubernetes prints a path element in conflict messages: .name, [name="web"], [=value], [0]."""
    kind, text = element
    if kind == "f":
        return "." + text
    if kind == "k":
        keys = json.loads(text)
        return "[" + ",".join(f"{name}={json.dumps(value)}" for name, value in sorted(keys.items())) + "]"
    if kind == "v":
        return f"[={text}]"
    return f"[{text}]"


def path_text(path: Path) -> str:
    return "".join(element_text(element) for element in path)
