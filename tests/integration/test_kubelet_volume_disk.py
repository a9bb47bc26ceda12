"""Volumes on disk: atomic ..data swaps, hostPath type checks, subPath escapes through symlinks."""

from __future__ import annotations

import os

import pytest

from orchestrator.kubelet import volume_disk
from orchestrator.kubelet.volumes import FileEntry, MountPlan, Volume, VolumeError


def test_files_are_swapped_in_atomically_and_unchanged_content_is_not_rewritten(tmp_path):
    target = tmp_path / "cm"
    assert volume_disk.write_atomically(target, [FileEntry("a", b"1", 0o644), FileEntry("d/b", b"2", 0o600)])
    first = os.readlink(target / "..data")
    assert (target / "a").read_bytes() == b"1" and (target / "d" / "b").read_bytes() == b"2"
    assert os.readlink(target / "a") == "..data/a" and oct((target / "d" / "b").stat().st_mode & 0o777) == "0o600"
    assert not volume_disk.write_atomically(target, [FileEntry("a", b"1", 0o644), FileEntry("d/b", b"2", 0o600)])
    assert os.readlink(target / "..data") == first
    assert volume_disk.write_atomically(target, [FileEntry("a", b"changed", 0o644)])
    assert (target / "a").read_bytes() == b"changed" and not (target / "d").exists()
    assert not (target / first).exists(), "the old generation is removed"
    assert sorted(p.name for p in target.iterdir() if not p.name.startswith("..")) == ["a"]


def test_host_path_types(tmp_path):
    def host(path, kind):
        volume_disk.set_up(Volume("h", "hostPath", {"path": str(path), "type": kind}), path, can_mount=False,
                           memory_bytes=None)
    host(tmp_path / "new-dir", "DirectoryOrCreate")
    assert (tmp_path / "new-dir").is_dir()
    host(tmp_path / "new-file", "FileOrCreate")
    assert (tmp_path / "new-file").is_file()
    with pytest.raises(VolumeError, match="is not a directory"):
        host(tmp_path / "new-file", "Directory")
    with pytest.raises(VolumeError, match="is not a file"):
        host(tmp_path / "new-dir", "File")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(VolumeError, match="is not a directory") as err:
        host(tmp_path / "absent", "Directory")
    assert not err.value.permanent and sorted(os.listdir(tmp_path)) == before  # nothing was made


def test_a_sub_path_that_escapes_through_a_symlink_is_refused_and_nothing_is_made(tmp_path):
    volume = tmp_path / "vol"
    (volume / "ok").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (volume / "sneaky").symlink_to(outside)

    def plan(sub):
        return MountPlan("v", str(volume), f"{volume}/{sub}", "/data", False, sub)
    assert volume_disk.checked_sub_path(plan("ok")) == str(volume / "ok")
    assert volume_disk.checked_sub_path(plan("new/deeper")) == str(volume / "new" / "deeper")
    with pytest.raises(VolumeError, match="outside the volume") as err:
        volume_disk.checked_sub_path(plan("sneaky/x"))
    assert err.value.permanent and list(outside.iterdir()) == []


def test_tear_down_removes_the_pods_volumes_only(tmp_path):
    pod = tmp_path / "pod"
    (pod / "volumes" / "kubernetes.io~empty-dir" / "data").mkdir(parents=True)
    host = tmp_path / "host"
    host.mkdir()
    volume_disk.tear_down(pod, can_mount=False)
    assert not (pod / "volumes").exists() and host.exists()
