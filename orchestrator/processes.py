"""Processes by pid (shared by the lab and the kubelet's runtime)."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int | None) -> bool:
    """The process exists and is not a zombie (an exited child nobody has waited for yet).
    A process of another user counts as alive."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False
