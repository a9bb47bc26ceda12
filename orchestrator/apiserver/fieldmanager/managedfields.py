"""metadata.managedFields: who owns which fields, kept on every write; and server-side apply (pure).

Theory of operation (Kubernetes' field manager, sigs.k8s.io/structured-merge-diff):
- Every write names a manager (the request's fieldManager, else the start of its User-Agent).
  Non-apply writes are "Update" operations: the manager gains the fields the write changed,
  every other manager loses them, and nobody keeps a field that was removed.
- An apply ("Apply" operation) declares the whole intent of its manager: the applied
  configuration is merged onto the live object; fields the manager applied before and no longer
  applies are removed unless someone else owns them; and changing a field another manager owns
  is a conflict (409, naming each field and manager) unless `force` takes it over.
- One entry per manager and operation (and subresource); Update entries over MAX_UPDATE_MANAGERS
  are folded, oldest first, into "ancient-changes". The time of an entry moves when its manager
  changed the object.
- An object that has no managedFields yet is first owned whole by "before-first-apply".
- Migration from client-side apply, for manager "kubectl" only: conflicts on fields listed in the
  kubectl.kubernetes.io/last-applied-configuration annotation are taken over, and the annotation is
  kept in step with what is applied, so client-side apply keeps working afterwards.
- Never owned: apiVersion, kind and the server's metadata (name, namespace, uid, ...); through the
  main resource of a kind with a status subresource, not status; through status, only status.

Time enters as `now` (an RFC 3339 string).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace

import orjson

from orchestrator.api.types import Message
from orchestrator.apiserver.fieldmanager import typed
from orchestrator.apiserver.fieldmanager.fieldpath import EMPTY, FieldsError, FieldSet, Path, field, path_text

MAX_UPDATE_MANAGERS = 10
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
BEFORE_FIRST_APPLY = "before-first-apply"
ANCIENT = "ancient-changes"
STRIPPED = FieldSet.of((field("apiVersion"),), (field("kind"),), (field("metadata"),), *[
    (field("metadata"), field(name)) for name in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                                  "clusterName", "generation", "managedFields", "resourceVersion")])


class ManagedFieldsError(ValueError):
    """managedFields sent by a client that cannot be read (a 400)."""


@dataclass(frozen=True)
class Conflict:
    manager: str
    operation: str
    api_version: str
    subresource: str
    elements: Path

    @property
    def path(self) -> str:
        return path_text(self.elements)

    def who(self) -> str:
        """Kubernetes' printManager: `"name"`, with its subresource, and `using <apiVersion>` for updaters."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        return f"{text} using {self.api_version}" if self.operation == "Update" else text


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[Conflict]) -> None:
        self.conflicts = conflicts
        super().__init__(self.message())

    def message(self) -> str:
        """Kubernetes' wording, which kubectl prints after "error: "."""
        if len(self.conflicts) == 1:
            c = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {c.who()}: {c.path}"
        lines = []
        for who in sorted({c.who() for c in self.conflicts}):
            lines.append(f"conflicts with {who}:")
            lines += [f"- {c.path}" for c in self.conflicts if c.who() == who]
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict]:
        return [{"reason": "FieldManagerConflict", "message": f"conflict with {c.who()}", "field": c.path}
                for c in self.conflicts]


@dataclass(frozen=True)
class Entry:
    """One managedFields entry."""
    manager: str
    operation: str
    api_version: str
    fields: FieldSet
    time: str | None = None
    subresource: str = ""

    @property
    def identity(self) -> tuple[str, str, str]:
        return self.manager, self.operation, self.subresource


def decode(entries) -> list[Entry]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ManagedFieldsError("metadata.managedFields must be a list")
    out = []
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("operation") not in ("Apply", "Update"):
            raise ManagedFieldsError("each managedFields entry needs operation Apply or Update")
        if entry.get("fieldsType", "FieldsV1") != "FieldsV1":
            raise ManagedFieldsError(f"fieldsType {entry.get('fieldsType')!r} is not FieldsV1")
        try:
            fields = _fields_of(orjson.dumps(entry.get("fieldsV1") or {}))
        except (FieldsError, TypeError) as err:
            raise ManagedFieldsError(f"managedFields of {entry.get('manager')!r}: {err}") from None
        out.append(Entry(str(entry.get("manager", "")), entry["operation"], str(entry.get("apiVersion", "")), fields,
                         entry.get("time"), str(entry.get("subresource") or "")))
    return out


@functools.lru_cache(maxsize=4096)
def _fields_of(document: bytes) -> FieldSet:
    """FieldSets are immutable, and every write of an object reads the same entries again."""
    return FieldSet.from_fields_v1(orjson.loads(document))


def encode(entries: list[Entry]) -> list[dict]:
    """In Kubernetes' order: Apply before Update, then oldest first, then by manager."""
    ordered = sorted(entries, key=lambda e: (e.operation, e.time or "", e.manager, e.api_version, e.subresource))
    out = []
    for e in ordered:
        entry = {"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version}
        if e.time:
            entry["time"] = e.time
        entry.update(fieldsType="FieldsV1", fieldsV1=e.fields.to_fields_v1())
        if e.subresource:
            entry["subresource"] = e.subresource
        out.append(entry)
    return out


# --- which fields count -------------------------------------------------------------------------


def _owned_part(fields: FieldSet, has_status: bool, subresource: str) -> FieldSet:
    fields = fields.difference(STRIPPED)
    status = field("status")
    if subresource == "status":
        kept = fields.children.get(status)
        return FieldSet(fields.members & {status}, {status: kept} if kept else {})
    if has_status:
        return FieldSet(fields.members - {status}, {k: v for k, v in fields.children.items() if k != status})
    return fields


def _without_none(value):
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_none(v) for v in value]
    return value


# --- update ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What every operation needs: the kind, and whether it has a status subresource."""
    kind: Message
    api_version: str
    has_status: bool

    @property
    def shape(self) -> typed.Shape:
        return typed.kind_shape(self.kind)


def update(ctx: Context, live: dict | None, new: dict, manager: str, now: str, subresource: str = "") -> list[Entry]:
    """The managedFields of `new` after a non-apply write by `manager` (create: live is None)."""
    entries = _entries_for_update(live, new, subresource)
    if live is None:
        live = {}
    comparison = typed.compare(_object_part(live), _object_part(new), ctx.shape)
    changed = _owned_part(comparison.changed(), ctx.has_status, subresource)
    removed = comparison.removed
    identity = (manager, "Update", subresource)
    out, previous = [], EMPTY
    for e in entries:
        kept = e.fields.difference(changed).difference(removed)
        if e.identity == identity:
            previous = kept
            continue
        if not kept.empty():
            out.append(replace(e, fields=kept))
    mine = previous.union(changed)
    if not mine.empty():
        old = next((e for e in entries if e.identity == identity), None)
        time = now if not changed.empty() or old is None else old.time
        out.append(Entry(manager, "Update", ctx.api_version, mine, time, subresource))
    return _cap(out)


def _entries_for_update(live: dict | None, new: dict, subresource: str) -> list[Entry]:
    """Kubernetes' decodeLiveOrNew: a client may reset managedFields (an empty list) or replace them;
    otherwise, and always through a subresource, the live object's stand."""
    live_entries = ((live or {}).get("metadata") or {}).get("managedFields")
    sent = (new.get("metadata") or {}).get("managedFields")
    if subresource or sent is None or sent == live_entries:
        return decode(live_entries)
    if sent == [] or sent == [{}]:
        return []
    try:
        return decode(sent) or decode(live_entries)
    except ManagedFieldsError:
        return decode(live_entries)


def _object_part(obj: dict) -> dict:
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "managedFields" in meta:
        return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}
    return obj


def _cap(entries: list[Entry]) -> list[Entry]:
    updates = sorted((e for e in entries if e.operation == "Update"), key=lambda e: (e.time or "", e.manager))
    if len(updates) <= MAX_UPDATE_MANAGERS:
        return entries
    folded = updates[:len(updates) - MAX_UPDATE_MANAGERS + 1]
    bucket = Entry(ANCIENT, "Update", folded[-1].api_version, EMPTY, folded[-1].time)
    for e in folded:
        bucket = replace(bucket, fields=bucket.fields.union(e.fields))
    return [e for e in entries if e not in folded] + [bucket]


# --- apply ----------------------------------------------------------------------------------------


def apply(ctx: Context, live: dict | None, config: dict, manager: str, force: bool,
          now: str) -> tuple[dict, list[Entry]]:
    """(the new object, its managedFields) for an apply of `config` by `manager` onto `live`
    (None: the object does not exist yet). Raises ApplyConflict."""
    config = _without_none(config)
    if ctx.has_status:
        config = {k: v for k, v in config.items() if k != "status"}
    if live is None:
        live, entries = {}, []
    else:
        entries = decode((live.get("metadata") or {}).get("managedFields"))
        live = _object_part(live)
        if not entries:  # owned whole by before-first-apply, so that pruning never drops a field nobody claimed
            entries = update(ctx, {}, live, BEFORE_FIRST_APPLY, now)
    try:
        result, new_entries = _apply(ctx, live, config, entries, manager, force, now)
    except ApplyConflict as conflict:
        allowed = _migration_allowance(ctx, live, manager)
        if allowed is None or any(not allowed.has(c.elements) for c in conflict.conflicts):
            raise
        result, new_entries = _apply(ctx, live, config, entries, manager, True, now)
    if manager == "kubectl" and LAST_APPLIED in ((live.get("metadata") or {}).get("annotations") or {}):
        result = _with_last_applied(result, config)
    return result, new_entries


def _apply(ctx: Context, live: dict, config: dict, entries: list[Entry], manager: str, force: bool,
           now: str) -> tuple[dict, list[Entry]]:
    shape = ctx.shape
    identity = (manager, "Apply", "")
    last = next((e.fields for e in entries if e.identity == identity), EMPTY)
    applied = _owned_part(typed.field_set(config, shape, strict=True), ctx.has_status, "")
    merged = typed.merge(live, config, shape)
    others = [e for e in entries if e.identity != identity]
    merged = _prune(merged, last, applied, others, shape) if not last.empty() else merged
    comparison = typed.compare(live, merged, shape)
    changed = _owned_part(comparison.changed(), ctx.has_status, "")
    conflicts = []
    kept = []
    for e in others:
        taken = e.fields.intersection(changed)
        if not taken.empty():
            conflicts += [Conflict(e.manager, e.operation, e.api_version, e.subresource, p) for p in taken.paths()]
        rest = e.fields.difference(taken).difference(comparison.removed)
        if not rest.empty():
            kept.append(replace(e, fields=rest))
    if conflicts and not force:
        raise ApplyConflict(conflicts)
    previous = next((e for e in entries if e.identity == identity), None)
    object_changed = not comparison.added.empty() or not comparison.removed.empty() or \
        not comparison.modified.empty()
    time = now if object_changed or previous is None else previous.time
    if not applied.empty():
        kept.append(Entry(manager, "Apply", ctx.api_version, applied, time))
    return merged, _cap(kept)


def _prune(merged: dict, last: FieldSet, applied: FieldSet, others: list[Entry], shape: typed.Shape) -> dict:
    """Remove what the manager applied last time and no longer does, unless someone owns it
    (Kubernetes' prune: remove, add back what is owned, add back what was never the manager's)."""
    named = lambda fields: typed.with_named_fields(fields, shape)  # noqa: E731
    owned = applied
    for e in others:
        owned = owned.union(e.fields)
    last_named = named(last)
    pruned = typed.remove(merged, last_named, shape)
    merged_set = named(typed.field_set(merged, shape))
    pruned_set = named(typed.field_set(pruned, shape))
    pruned = typed.remove(merged, merged_set.difference(pruned_set.union(named(owned))), shape)
    pruned_set = named(typed.field_set(pruned, shape))
    return typed.remove(merged, merged_set.difference(pruned_set).intersection(last_named), shape)


def _migration_allowance(ctx: Context, live: dict, manager: str) -> FieldSet | None:
    if manager != "kubectl":
        return None
    text = ((live.get("metadata") or {}).get("annotations") or {}).get(LAST_APPLIED)
    if not text:
        return None
    try:
        last_applied = json.loads(text)
        return typed.field_set(last_applied, ctx.shape) if isinstance(last_applied, dict) else None
    except (ValueError, typed.ShapeError):
        return None


def _with_last_applied(obj: dict, config: dict) -> dict:
    meta = dict(config.get("metadata") or {})
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k != LAST_APPLIED}
    if "annotations" in meta:
        meta["annotations"] = annotations
    text = json.dumps({**config, "metadata": meta}, separators=(",", ":"))
    out_meta = dict(obj.get("metadata") or {})
    out_meta["annotations"] = {**(out_meta.get("annotations") or {}), LAST_APPLIED: text + "\n"}
    return {**obj, "metadata": out_meta}
