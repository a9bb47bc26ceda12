"""Every message type Ketch serves, by name, and the top-level kinds by group, version and kind.

    from orchestrator.api import types
    types.kind("apps", "v1", "Deployment")       # the Message of a kind (None if not served)
    types.message("core.v1.PodSpec")            # any message by its package-qualified name
    types.field_type(msg, "spec")               # the TypeRef of a field

Top-level kinds get `apiVersion` and `kind` (JSON only), and each listable kind a `<Kind>List`
message (metadata and items), as Kubernetes' API has them.
"""

from __future__ import annotations

from orchestrator.api.types import (
    apps,
    authorization,
    autoscaling,
    batch,
    coordination,
    core,
    core_container,
    core_pod,
    core_volume,
    discovery,
    events,
    meta,
    policy,
    storage,
)
from orchestrator.api.types.model import SCALARS, SPECIAL, F, Field, Message, TypeRef, list_semantics, parse_type

__all__ = ["Field", "Message", "TypeRef", "SCALARS", "SPECIAL", "MESSAGES", "KINDS", "kind", "message",
           "list_semantics", "parse_type", "field_type"]

TYPE_META = [
    F(None, "apiVersion", "string", "The versioned schema of this object (group/version)."),
    F(None, "kind", "string", "The kind of this object, in CamelCase."),
]
# Kinds that are only ever sent, never listed (requests and answers of one call).
NOT_LISTED = {"Binding", "Scale", "Eviction", "SelfSubjectAccessReview", "DeleteOptions", "Status"}

_MODULES = (meta, core, core_pod, core_container, core_volume, apps, batch, autoscaling, discovery, coordination,
            events, policy, storage, authorization)


def _with_type_meta(msg: Message) -> Message:
    return Message(msg.name, msg.doc, TYPE_META + msg.fields, msg.atomic, msg.gvk)


def _list_of(msg: Message) -> Message:
    group, version, kind_name = msg.gvk
    return Message(f"{msg.name}List", f"A list of {kind_name} objects.", TYPE_META + [
        F(1, "metadata", "meta.v1.ListMeta", "Standard list metadata."),
        F(2, "items", f"[]{msg.short_name}", f"The {kind_name} objects.", required=True),
    ], gvk=(group, version, f"{kind_name}List"))


def _build() -> tuple[dict[str, Message], dict[tuple[str, str, str], Message]]:
    messages: dict[str, Message] = {}
    kinds: dict[tuple[str, str, str], Message] = {}
    for module in _MODULES:
        for msg in module.MESSAGES:
            if msg.gvk:
                msg = _with_type_meta(msg)
                kinds[msg.gvk] = msg
                if msg.gvk[2] not in NOT_LISTED:
                    listed = _list_of(msg)
                    messages[listed.name] = listed
                    kinds[listed.gvk] = listed
            if msg.name in messages:
                raise ValueError(f"message {msg.name} is described twice")
            messages[msg.name] = msg
    for msg in messages.values():  # every referenced message is described
        for name, ref in msg.types.items():
            if ref.is_message and ref.name not in messages:
                raise ValueError(f"{msg.name}.{name} refers to {ref.name}, which is not described")
    return messages, kinds


MESSAGES, KINDS = _build()


def message(name: str) -> Message:
    return MESSAGES[name]


def kind(group: str, version: str, kind_name: str) -> Message | None:
    return KINDS.get((group, version, kind_name))


def field_type(msg: Message, name: str) -> TypeRef:
    return msg.types[name]
