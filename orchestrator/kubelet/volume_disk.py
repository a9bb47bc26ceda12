"""Volumes on disk (adapter): emptyDir directories and tmpfs mounts, files of API data volumes
written atomically, hostPath type checks, subPath checks, and removal when a pod goes.

Atomic writes follow Kubernetes' AtomicWriter: the files go into a fresh hidden directory
`..<timestamp>`, a symlink `..data` is switched to it with one rename, and each top-level name
the user sees is a symlink through `..data`; a reader therefore sees the old set of files or
the new one, never a mix. Nothing is rewritten when the content is unchanged.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from orchestrator.kubelet.volumes import FileEntry, MountPlan, Volume, VolumeError

DATA = "..data"
HOST_PATH_KINDS = {"Directory": stat.S_ISDIR, "File": stat.S_ISREG, "Socket": stat.S_ISSOCK,
                   "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}


def _current(target: Path) -> dict[str, tuple[bytes, int]] | None:
    data = target / DATA
    if not data.is_dir():
        return None
    out = {}
    for path in data.rglob("*"):
        if path.is_file():
            out[str(path.relative_to(data))] = (path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return out


def write_atomically(target: Path, entries: list[FileEntry]) -> bool:
    """Make target hold exactly these files; False if it already did."""
    desired = {e.path: (e.data, e.mode) for e in entries}
    target.mkdir(parents=True, exist_ok=True)
    if _current(target) == desired:
        return False
    fresh = Path(tempfile.mkdtemp(prefix="..", dir=target))
    os.chmod(fresh, 0o755)
    for entry in entries:
        path = fresh / entry.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(entry.data)
        os.chmod(path, entry.mode)
    old = os.readlink(target / DATA) if (target / DATA).is_symlink() else None
    scratch = target / "..data_tmp"
    if scratch.is_symlink() or scratch.exists():
        scratch.unlink()
    scratch.symlink_to(fresh.name)
    os.replace(scratch, target / DATA)
    visible = {entry.path.split("/")[0] for entry in entries}
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{name}")
    for child in target.iterdir():
        if not child.name.startswith("..") and child.name not in visible and child.is_symlink():
            child.unlink()
    if old and old != fresh.name:
        shutil.rmtree(target / old, ignore_errors=True)
    return True


def _is_mountpoint(path: Path) -> bool:
    try:
        return os.path.ismount(path)
    except OSError:
        return False


def set_up(volume: Volume, directory: Path, *, can_mount: bool, memory_bytes: int | None) -> None:
    """emptyDir and hostPath volumes (API data volumes: write_atomically). VolumeError on a
    hostPath whose type does not match, or a tmpfs that cannot be mounted."""
    if volume.kind == "emptyDir":
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o777)  # emptyDir is world-writable, as Kubernetes makes it
        if volume.spec.get("medium") == "Memory" and can_mount and not _is_mountpoint(directory):
            size = f",size={memory_bytes}" if memory_bytes else ""
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"mode=0777{size}", "tmpfs", str(directory)],
                                  capture_output=True, text=True)
            if done.returncode:
                raise VolumeError(volume.name, f'volume "{volume.name}": cannot mount tmpfs: {done.stderr.strip()}',
                                  permanent=False)
    elif volume.kind == "hostPath":
        _host_path(volume, directory)


def _host_path(volume: Volume, path: Path) -> None:
    kind = volume.spec.get("type", "")
    name = volume.name
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if kind == "DirectoryOrCreate":
        if mode is None:
            path.mkdir(mode=0o755, parents=True)
        elif not stat.S_ISDIR(mode):
            raise VolumeError(name, f'hostPath type check failed: {path} is not a directory', permanent=True)
    elif kind == "FileOrCreate":
        if mode is None:
            if not path.parent.is_dir():
                raise VolumeError(name, f"hostPath type check failed: {path.parent} does not exist", permanent=False)
            path.touch(mode=0o644)
        elif not stat.S_ISREG(mode):
            raise VolumeError(name, f"hostPath type check failed: {path} is not a file", permanent=True)
    elif kind in HOST_PATH_KINDS:
        if mode is None or not HOST_PATH_KINDS[kind](os.stat(path).st_mode):
            what = {"Directory": "a directory", "File": "a file", "Socket": "a socket", "CharDevice":
                    "a character device", "BlockDevice": "a block device"}[kind]
            raise VolumeError(name, f"hostPath type check failed: {path} is not {what}", permanent=mode is not None)


def checked_sub_path(mount: MountPlan) -> str:
    """The host path of a subPath mount, after checking that it stays inside its volume once
    symlinks are resolved (CVE-2017-1002101); a missing directory is created inside it."""
    if not mount.sub_path:
        return mount.host_path
    root = os.path.realpath(mount.volume_dir)
    existing = Path(mount.host_path)
    missing: list[str] = []
    while not os.path.lexists(existing) and str(existing) != mount.volume_dir:
        missing.insert(0, existing.name)
        existing = existing.parent
    resolved = os.path.realpath(existing)
    if resolved != root and not resolved.startswith(root + os.sep):
        raise VolumeError(mount.volume, f'subPath "{mount.sub_path}" of volume "{mount.volume}" resolves to '
                          f"{resolved}, outside the volume", permanent=True)
    final = Path(resolved, *missing)
    if missing:
        final.mkdir(parents=True, exist_ok=True)
    return str(final)


def tear_down(pod_dir: Path, *, can_mount: bool) -> None:
    """Remove a pod's volume directories (never hostPaths: they are not under the pod dir),
    unmounting tmpfs volumes first; a mount that stays is an error (nothing under it is removed).
    The pod's directory goes too once it is empty."""
    volumes_dir = pod_dir / "volumes"
    if not volumes_dir.exists():
        _remove_if_empty(pod_dir)
        return
    for plugin in volumes_dir.iterdir():
        for directory in plugin.iterdir():
            if _is_mountpoint(directory):
                if not can_mount:
                    raise OSError(f"{directory} is a mount point and this kubelet cannot unmount it")
                subprocess.run(["umount", str(directory)], capture_output=True, check=True)
    shutil.rmtree(volumes_dir)
    _remove_if_empty(pod_dir)


def _remove_if_empty(directory: Path) -> None:
    try:
        directory.rmdir()
    except OSError:  # gone already, or not empty: something else keeps it
        pass
