"""`ketch down --purge` deletes what `ketch up` made in the lab directory, nothing else, and
never deletes through a mount (a hostPath volume still bound would lose its source files)."""

from __future__ import annotations

import pytest

from orchestrator.lab import cluster


def make_lab(tmp_path):
    lab = tmp_path / "lab"
    for name in ("kv/cp-1", "pki", "logs/cp-1", "kubelet/worker-1/pods"):
        (lab / name).mkdir(parents=True)
    (lab / "lab.json").write_text("{}")
    (lab / "cluster.toml").write_text("")
    (lab / "notes.txt").write_text("mine")
    return lab


def test_purge_deletes_the_cluster_state_and_keeps_other_files(tmp_path, monkeypatch):
    monkeypatch.setattr(cluster, "mount_points", lambda: [])
    lab = make_lab(tmp_path)
    removed = cluster.purge(lab)
    assert set(removed) == {"kv", "pki", "logs", "kubelet", "lab.json", "cluster.toml"}
    assert sorted(p.name for p in lab.iterdir()) == ["notes.txt"]


def test_purge_refuses_while_anything_is_mounted_under_the_lab(tmp_path, monkeypatch):
    lab = make_lab(tmp_path)
    monkeypatch.setattr(cluster, "mount_points", lambda: [lab.resolve() / "kubelet" / "worker-1" / "pods"])
    with pytest.raises(OSError, match="still mounted"):
        cluster.purge(lab)
    assert (lab / "kv" / "cp-1").is_dir()  # nothing deleted
