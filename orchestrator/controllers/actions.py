"""What the plan-driven controllers do with a plan: create and delete objects, write status,
record events. Each step tolerates the races a level-triggered controller meets (an object
already created by an earlier pass, or already gone) and lets any other error through, so the
work queue retries the key with back-off."""

from __future__ import annotations

from orchestrator.api.resources import Resource
from orchestrator.client.api import APIClient, APIStatusError
from orchestrator.client.events import EventRecorder


async def create_each(api: APIClient, res: Resource, namespace: str, bodies: list[dict]) -> list[dict]:
    """Create every body; one that exists already (a retried pass) is skipped. Returns the created."""
    created = []
    for body in bodies:
        try:
            created.append(await api.create(res, namespace, body))
        except APIStatusError as err:
            if err.code != 409:
                raise
    return created


async def delete_each(api: APIClient, res: Resource, namespace: str, names: list[str], *,
                      propagation: str | None = None) -> None:
    for name in dict.fromkeys(names):  # once each, in order
        try:
            await api.delete(res, namespace, name, propagation=propagation)
        except APIStatusError as err:
            if err.code not in (404, 409):
                raise


def status_patch(old: dict, new: dict) -> dict:
    """A JSON merge patch (RFC 7386) turning `old` into `new`: changed keys, null for keys that went.
    Objects are patched key by key, since a merge patch merges into a nested object rather than
    replacing it (`{"uncountedTerminatedPods": {}}` would leave the old lists in place)."""
    patch = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if isinstance(value, dict) and isinstance(before, dict):
            patch[key] = status_patch(before, value)
        else:
            patch[key] = value
    patch.update({k: None for k in old if k not in new})
    return patch


async def write_status(api: APIClient, res: Resource, obj: dict, status: dict, *, compare: bool = False) -> bool:
    """Patch the status subresource when the plan changed it. True if written. With compare, only
    if the object is still the one the plan saw (its resourceVersion; a 409 otherwise, so the
    work queue retries from a fresh copy): for a status that someone else writes too."""
    patch = status_patch(obj.get("status") or {}, status)
    if not patch:
        return False
    meta = obj["metadata"]
    body = {"status": patch}
    if compare:
        body["metadata"] = {"resourceVersion": meta["resourceVersion"]}
    try:
        await api.patch(res, meta.get("namespace"), meta["name"], body, subresource="status")
    except APIStatusError as err:
        if err.code != 404:
            raise
        return False
    return True


def record(events: EventRecorder, obj: dict, kind: str, planned: list[tuple[str, str, str]]) -> None:
    for event_type, reason, message in planned:
        events.record(obj, kind, event_type, reason, message)
