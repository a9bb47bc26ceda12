"""Restart and image-pull back-off, as the kubelet keeps it (client-go's flowcontrol.Backoff).

Rules kept (Kubernetes' kubelet):
- A container that exits is restarted at once the first time; each further exit waits the
  current delay, counted from the moment it exited: 10 s, then doubling, capped at 300 s.
  While it waits its status is `waiting: CrashLoopBackOff` ("back-off 20s restarting failed
  container=...").
- The delay starts over once the entry has not been bumped for twice the cap (10 minutes):
  a container that ran for 10 minutes before crashing is treated as a first crash again.
- Image pulls (and other failures to create a container) back off the same way; the status
  says `ImagePullBackOff` while waiting and `ErrImagePull` right after a failed attempt.

Pure: time enters as an argument (seconds, any monotonic-enough clock shared by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_DELAY_S = 10.0
MAX_DELAY_S = 300.0


@dataclass(frozen=True)
class BackoffEntry:
    delay_s: float
    last_update: float


def expired(entry: BackoffEntry, event_time: float, max_delay_s: float = MAX_DELAY_S) -> bool:
    """Stable for twice the cap since the last bump: the delay starts over."""
    return event_time - entry.last_update > 2 * max_delay_s


def in_backoff(entry: BackoffEntry | None, event_time: float, now: float, max_delay_s: float = MAX_DELAY_S) -> bool:
    """Must the action that failed at event_time still wait at `now`?"""
    if entry is None or expired(entry, event_time, max_delay_s):
        return False
    return now - event_time < entry.delay_s


def bumped(entry: BackoffEntry | None, event_time: float, now: float, *, initial_s: float = INITIAL_DELAY_S,
           max_delay_s: float = MAX_DELAY_S) -> BackoffEntry:
    """The entry after one more attempt at `now` (for a failure at event_time)."""
    if entry is None or expired(entry, event_time, max_delay_s):
        return BackoffEntry(initial_s, now)
    return BackoffEntry(min(entry.delay_s * 2, max_delay_s), now)


def remaining_s(entry: BackoffEntry | None, event_time: float, now: float) -> float:
    """Seconds until in_backoff turns False (0 when it already is)."""
    if not in_backoff(entry, event_time, now):
        return 0.0
    return max(0.0, event_time + entry.delay_s - now)


def duration_text(seconds: float) -> str:
    """Go's time.Duration form as the kubelet prints it in back-off messages: 10s, 1m20s, 5m0s."""
    whole = int(round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes}m{secs}s"
