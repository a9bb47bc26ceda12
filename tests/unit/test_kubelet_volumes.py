"""Volume planning: supported kinds, files of API data volumes, path escapes refused (table tests)."""

from __future__ import annotations

import base64

import pytest

from orchestrator.kubelet.envvars import PodFacts
from orchestrator.kubelet.volumes import VolumeError, api_files, container_mounts, pod_volumes, volume_dir

CM = {"metadata": {"name": "site", "namespace": "default"}, "data": {"index.html": "<h1>hi</h1>", "conf": "a=1"},
      "binaryData": {"logo": base64.b64encode(b"\x89PNG").decode()}}
SECRET = {"metadata": {"name": "tls", "namespace": "default"}, "data": {"key": base64.b64encode(b"k").decode()}}
POD = {"metadata": {"name": "p", "namespace": "default", "uid": "u1", "labels": {"a": "1", "b": "2"}},
       "spec": {"containers": [{"name": "c", "resources": {"limits": {"memory": "64Mi"}}}]}}


def files(volume_spec):
    pod = {**POD, "spec": {**POD["spec"], "volumes": [{"name": "v", **volume_spec}]}}
    volume = pod_volumes(pod)["v"]
    out = api_files(volume, pod, PodFacts(pod_ips=("10.1.0.5",)),
                    lambda ns, n: CM if n == "site" else None, lambda ns, n: SECRET if n == "tls" else None)
    return {e.path: (e.data, oct(e.mode)) for e in out.entries}, out.warnings


def test_config_map_volume_has_every_key_with_the_default_mode():
    got, _ = files({"configMap": {"name": "site"}})
    assert got == {"conf": (b"a=1", "0o644"), "index.html": (b"<h1>hi</h1>", "0o644"), "logo": (b"\x89PNG", "0o644")}


def test_items_choose_keys_paths_and_modes():
    got, _ = files({"configMap": {"name": "site", "defaultMode": 0o600,
                                  "items": [{"key": "conf", "path": "etc/app.conf", "mode": 0o400},
                                            {"key": "index.html", "path": "www/index.html"}]}})
    assert got == {"etc/app.conf": (b"a=1", "0o400"), "www/index.html": (b"<h1>hi</h1>", "0o600")}


def test_secret_downward_and_projected():
    assert files({"secret": {"secretName": "tls"}})[0] == {"key": (b"k", "0o644")}
    got, _ = files({"downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "ip", "fieldRef": {"fieldPath": "status.podIP"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}})
    assert got == {"labels": (b'a="1"\nb="2"', "0o644"), "ip": (b"10.1.0.5", "0o644"), "mem": (b"64", "0o644")}
    got, warnings = files({"projected": {"sources": [
        {"configMap": {"name": "site", "items": [{"key": "conf", "path": "conf"}]}},
        {"secret": {"name": "tls"}}, {"serviceAccountToken": {"path": "token"}}]}})
    assert got == {"conf": (b"a=1", "0o644"), "key": (b"k", "0o644")}
    assert warnings == ['volume "v": projected source serviceAccountToken is not supported yet; skipped']


def test_missing_objects_wait_unless_optional():
    with pytest.raises(VolumeError) as err:
        files({"configMap": {"name": "nope"}})
    assert str(err.value) == 'configmap "nope" not found' and not err.value.permanent
    assert files({"configMap": {"name": "nope", "optional": True}})[0] == {}
    with pytest.raises(VolumeError, match="couldn't find key x in ConfigMap default/site"):
        files({"configMap": {"name": "site", "items": [{"key": "x", "path": "x"}]}})


@pytest.mark.parametrize("spec,message", [
    ({"configMap": {"name": "site", "items": [{"key": "conf", "path": "../escape"}]}}, "must not contain '..'"),
    ({"configMap": {"name": "site", "items": [{"key": "conf", "path": "/etc/passwd"}]}}, "must be a relative path"),
    ({"configMap": {"name": "site", "items": [{"key": "conf", "path": "a"}, {"key": "logo", "path": "a/b"}]}},
     "both a file and a directory"),
    ({"configMap": {"name": "site", "defaultMode": 0o1777}}, "mode"),
])
def test_bad_items_are_refused_for_good(spec, message):
    with pytest.raises(VolumeError, match=message) as err:
        files(spec)
    assert err.value.permanent


@pytest.mark.parametrize("volume,message", [
    ({"name": "v", "nfs": {"server": "nas", "path": "/export"}}, "volume type nfs is not supported"),
    ({"name": "v", "persistentVolumeClaim": {}}, "persistentVolumeClaim.claimName is required"),
    ({"name": "v", "hostPath": {"path": "/var/../etc"}}, "must not contain '..'"),
    ({"name": "v", "hostPath": {"path": "relative/dir"}}, "must be an absolute path"),
    ({"name": "v", "hostPath": {"path": "/tmp", "type": "Wormhole"}}, "hostPath.type 'Wormhole' is not one of"),
    ({"name": "v", "emptyDir": {"medium": "HugePages"}}, "medium 'HugePages' is not supported"),
    ({"name": "v", "emptyDir": {}, "hostPath": {"path": "/tmp"}}, "exactly one volume type"),
])
def test_volumes_this_kubelet_cannot_run_are_refused_before_the_host_is_touched(volume, message):
    with pytest.raises(VolumeError, match=message) as err:
        pod_volumes({"spec": {"volumes": [volume]}})
    assert err.value.permanent


def mounts(*volume_mounts, variables=None):
    pod = {"spec": {"volumes": [{"name": "data", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "x"}}]}}
    volumes = pod_volumes(pod)
    dirs = {name: volume_dir("/k/pods", "u1", v) for name, v in volumes.items()}
    return container_mounts({"volumeMounts": list(volume_mounts)}, volumes, dirs, variables or {})


def test_mounts_sub_paths_and_read_only_api_volumes():
    data, cfg, sub = mounts({"name": "data", "mountPath": "/data"}, {"name": "cfg", "mountPath": "/etc/app"},
                            {"name": "data", "mountPath": "/logs", "subPathExpr": "logs/$(POD)"},
                            variables={"POD": "web-1"})
    assert (data.host_path, data.read_only) == ("/k/pods/u1/volumes/kubernetes.io~empty-dir/data", False)
    assert cfg.read_only and cfg.host_path.endswith("kubernetes.io~configmap/cfg")
    assert sub.host_path == "/k/pods/u1/volumes/kubernetes.io~empty-dir/data/logs/web-1"
    assert sub.sub_path == "logs/web-1"


@pytest.mark.parametrize("mount,message", [
    ({"name": "data", "mountPath": "/d", "subPath": "../../etc"}, "must not contain '..'"),
    ({"name": "data", "mountPath": "/d", "subPath": "/etc"}, "must be a relative path"),
    ({"name": "data", "mountPath": "/d", "subPathExpr": "$(NOPE)"}, "undefined variable"),
    ({"name": "data", "mountPath": "d"}, "must be an absolute path"),
    ({"name": "other", "mountPath": "/d"}, "no volume of that name"),
])
def test_mount_escapes_are_refused(mount, message):
    with pytest.raises(VolumeError, match=message):
        mounts(mount)
