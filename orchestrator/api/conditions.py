"""Status conditions ({type, status, reason, message, lastTransitionTime}), as Kubernetes keeps them:
a condition's transition time moves only when its status changes."""

from __future__ import annotations

from orchestrator.api.meta import field


def conditions(obj: dict) -> list[dict]:
    return field(obj, "status", "conditions", default=[])


def find(obj: dict, kind: str) -> dict | None:
    return next((c for c in conditions(obj) if c.get("type") == kind), None)


def is_true(obj: dict, kind: str) -> bool:
    condition = find(obj, kind)
    return bool(condition and condition.get("status") == "True")


def updated(existing: list[dict], kind: str, status: str, reason: str, message: str, stamp: str,
            **extra: str) -> list[dict]:
    """The list with condition `kind` set; its lastTransitionTime kept when the status did not change."""
    out = [dict(c) for c in existing]
    new = {"type": kind, "status": status, "reason": reason, "message": message, **extra}
    for i, old in enumerate(out):
        if old.get("type") == kind:
            new["lastTransitionTime"] = old.get("lastTransitionTime", stamp) if old.get("status") == status else stamp
            out[i] = {**old, **new}
            return out
    new["lastTransitionTime"] = stamp
    out.append(new)
    return out
