"""Kubernetes' timestamps: RFC 3339 in UTC, whole seconds (Time) or microseconds (MicroTime)."""

from __future__ import annotations

from datetime import datetime, timezone

SECONDS = "%Y-%m-%dT%H:%M:%SZ"


def now() -> str:
    """metav1.Time: creationTimestamp, condition transition times, event timestamps."""
    return datetime.now(timezone.utc).strftime(SECONDS)


def now_micro() -> str:
    """metav1.MicroTime: a Lease's acquireTime and renewTime."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def epoch(text: str | None) -> float | None:
    """Seconds since the epoch of a Time or MicroTime (fractions ignored); None if unreadable."""
    try:
        return datetime.strptime(text[:19], SECONDS[:-1]).replace(tzinfo=timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def format_epoch(seconds: float) -> str:
    """metav1.Time of an instant given in seconds since the epoch (time enters pure code as a number)."""
    return datetime.fromtimestamp(seconds, timezone.utc).strftime(SECONDS)
