"""The kubelet's container runtimes (contract A, base.py): runc, process and local backends
(backends.py) over one on-disk layout and per-container shim (containers.py, shim.py), the image
store (images.py) and cgroups (cgroups.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestrator.kubelet.runtime import cgroups
from orchestrator.kubelet.runtime.base import RuntimeFailure
from orchestrator.kubelet.runtime.images import ImageStore

RUNTIMES = ("runc", "process", "local")


def default_runtime() -> str:
    if os.geteuid() == 0:
        return "runc" if shutil.which("runc") else "process"
    return "local"


def choose_runtime(name: str | None, root_dir: Path, images: ImageStore, cgroup_prefix: str):
    """runc as root with runc installed, process as root without it, local otherwise."""
    from orchestrator.kubelet.runtime.backends import LocalRuntime, ProcessRuntime, RuncRuntime
    name = name or default_runtime()
    if name not in RUNTIMES:
        raise RuntimeFailure(f"unknown runtime {name!r}: choose {', '.join(RUNTIMES)}")
    if name in ("runc", "process") and os.geteuid() != 0:
        raise RuntimeFailure(f"the {name} runtime needs root (namespaces, cgroups, overlay mounts): use local")
    if name == "runc" and not shutil.which("runc"):
        raise RuntimeFailure("the runc runtime needs runc on PATH (apt-get install runc), or use --runtime process")
    if name in ("runc", "process") and not cgroups.available():
        raise RuntimeFailure(f"the {name} runtime needs the cgroup filesystem under {cgroups.ROOT}, and this mount "
                             "namespace has none (started under `ip netns exec`, which remounts /sys? use "
                             "`nsenter --net=/var/run/netns/NAME` instead)")
    cls = {"runc": RuncRuntime, "process": ProcessRuntime, "local": LocalRuntime}[name]
    return cls(Path(root_dir) / "runtime", images, cgroup_prefix)
