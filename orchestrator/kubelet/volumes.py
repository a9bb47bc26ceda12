"""Volumes: what each of a pod's volumes is, which files it holds, and where each container
mounts it (pure; atomic_writer.py and the pod worker touch the disk).

Rules kept (Kubernetes' volume plugins and validation):
- Supported: emptyDir (medium "" or Memory, the latter a tmpfs), configMap, secret,
  downwardAPI, projected (configMap, secret and downwardAPI sources), hostPath and
  persistentVolumeClaim (the bound volume's directory on this node, made if missing, as the
  local-path provisioner's volumes are; a claim not yet bound is waited for). Anything else
  is refused with a message naming the volume, before the host is touched.
- configMap/secret/downwardAPI/projected files: every key (or the listed `items`) becomes a file
  with defaultMode (0644) or the item's mode; an item path must descend from the volume (not
  absolute, no `..` element). A missing object or key is an error unless `optional: true`.
  These volumes are mounted read-only, as Kubernetes does since 1.10.
- hostPath: the path must be absolute and contain no `..` element; `type` must be one of
  "", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice, BlockDevice.
- volumeMounts: a mountPath is absolute with no `..`; subPath (or subPathExpr, expanded with the
  container's variables) descends from the volume. Whether the resolved path stays inside the
  volume (symlinks) is checked again on disk before mounting.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field

from orchestrator.kubelet.envvars import (
    ConfigError,
    Lookup,
    PodFacts,
    decoded_data,
    expand,
    field_value,
    resource_value,
)

DEFAULT_MODE = 0o644
PLUGIN_DIRS = {"emptyDir": "kubernetes.io~empty-dir", "configMap": "kubernetes.io~configmap",
               "secret": "kubernetes.io~secret", "downwardAPI": "kubernetes.io~downward-api",
               "projected": "kubernetes.io~projected"}
SUPPORTED = (*PLUGIN_DIRS, "hostPath", "persistentVolumeClaim")
API_DATA = ("configMap", "secret", "downwardAPI", "projected")
HOST_PATH_TYPES = ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket", "CharDevice",
                   "BlockDevice")


class VolumeError(ValueError):
    """A volume cannot be set up. permanent: the spec itself is wrong (a path escape, an unknown
    type), so retrying will not help; otherwise something it needs is missing (for now)."""

    def __init__(self, volume: str, message: str, *, permanent: bool) -> None:
        self.volume, self.permanent = volume, permanent
        super().__init__(message)


@dataclass(frozen=True)
class Volume:
    name: str
    kind: str   # one of SUPPORTED
    spec: dict  # the kind's own fields


@dataclass(frozen=True)
class FileEntry:
    path: str   # relative to the volume
    data: bytes
    mode: int


@dataclass(frozen=True)
class MountPlan:
    volume: str
    volume_dir: str       # the volume's directory on the host
    host_path: str        # volume_dir, or volume_dir/subPath
    container_path: str
    read_only: bool
    sub_path: str = ""


@dataclass
class Files:
    entries: list[FileEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# --- paths ---------------------------------------------------------------------------------------

def descending_path(path: str, what: str) -> str:
    """A relative path that stays below its base (Kubernetes' validateLocalDescendingPath)."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"{what}: must be a non-empty relative path")
    if path.startswith("/"):
        raise ValueError(f"{what}: {path!r} must be a relative path")
    if ".." in path.split("/"):
        raise ValueError(f"{what}: {path!r} must not contain '..'")
    return posixpath.normpath(path)


def absolute_path(path: str, what: str) -> str:
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"{what}: {path!r} must be an absolute path")
    if ".." in path.split("/"):
        raise ValueError(f"{what}: {path!r} must not contain '..'")
    return posixpath.normpath(path)


# --- the pod's volumes -----------------------------------------------------------------------------

ClaimPath = Callable[[str, str], str]  # (namespace, claim name) -> the bound volume's directory, or VolumeError


def pod_volumes(pod: dict, claim_path: ClaimPath | None = None) -> dict[str, Volume]:
    """name -> Volume for every volume of the pod; VolumeError (permanent) for one it cannot run.
    A persistentVolumeClaim becomes the hostPath of its volume (claim_path resolves it)."""
    out: dict[str, Volume] = {}
    for raw in (pod.get("spec") or {}).get("volumes") or []:
        name = raw.get("name") if isinstance(raw, dict) else None
        if not name:
            raise VolumeError("", "every volume needs a name", permanent=True)
        kinds = [k for k in raw if k != "name"]
        if len(kinds) != 1:
            raise VolumeError(name, f'volume "{name}": exactly one volume type is required, got {kinds}',
                              permanent=True)
        kind = kinds[0]
        if kind not in SUPPORTED:
            raise VolumeError(name, f'volume "{name}": volume type {kind} is not supported by this kubelet '
                              f"(supported: {', '.join(SUPPORTED)})", permanent=True)
        spec = raw[kind] if isinstance(raw[kind], dict) else {}
        if kind == "persistentVolumeClaim":
            kind, spec = "hostPath", {"path": _claim_path(name, spec, pod, claim_path), "type": "DirectoryOrCreate"}
        _check_spec(name, kind, spec)
        out[name] = Volume(name, kind, spec)
    return out


def _claim_path(name: str, spec: dict, pod: dict, claim_path: ClaimPath | None) -> str:
    claim = spec.get("claimName")
    if not claim:
        raise VolumeError(name, f'volume "{name}": persistentVolumeClaim.claimName is required', permanent=True)
    if claim_path is None:
        raise VolumeError(name, f'volume "{name}": no claim lookup to resolve "{claim}"', permanent=False)
    return claim_path((pod.get("metadata") or {}).get("namespace") or "default", claim)


def _check_spec(name: str, kind: str, spec: dict) -> None:
    try:
        if kind == "hostPath":
            absolute_path(spec.get("path"), f'volume "{name}": hostPath.path')
            if spec.get("type", "") not in HOST_PATH_TYPES:
                raise ValueError(f'volume "{name}": hostPath.type {spec.get("type")!r} is not one of '
                                 f"{', '.join(t or repr(t) for t in HOST_PATH_TYPES)}")
        elif kind == "emptyDir" and spec.get("medium", "") not in ("", "Memory"):
            raise ValueError(f'volume "{name}": emptyDir medium {spec.get("medium")!r} is not supported '
                             '(use "" or "Memory")')
    except ValueError as err:
        raise VolumeError(name, str(err), permanent=True) from None


def volume_dir(pods_dir: str, pod_uid: str, volume: Volume) -> str:
    if volume.kind == "hostPath":
        return posixpath.normpath(volume.spec["path"])
    return posixpath.join(pods_dir, pod_uid, "volumes", PLUGIN_DIRS[volume.kind], volume.name)


# --- files of API data volumes ---------------------------------------------------------------------

def _mode(value, default: int, what: str) -> int:
    mode = default if value is None else value
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= 0o777:
        raise ValueError(f"{what}: mode {mode!r} must be between 0 and 0777 (511)")
    return mode


def _object_files(volume: str, kind: str, source: dict, lookup: Lookup, namespace: str, default_mode: int,
                  out: Files) -> None:
    name, optional = source.get("name", ""), bool(source.get("optional"))
    obj = lookup(namespace, name)
    if obj is None:
        if optional:
            return
        raise VolumeError(volume, f'{kind.lower()} "{name}" not found', permanent=False)
    try:
        data = decoded_data(obj, kind)
    except ConfigError as err:
        raise VolumeError(volume, str(err), permanent=False) from None
    items = source.get("items")
    if not items:
        out.entries += [FileEntry(descending_path(key, f"{kind} key"), value, default_mode)
                        for key, value in sorted(data.items())]
        return
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            raise VolumeError(volume, f"couldn't find key {key} in {kind} {namespace}/{name}", permanent=False)
        out.entries.append(FileEntry(descending_path(item.get("path", ""), f'volume "{volume}" item path'),
                                     data[key], _mode(item.get("mode"), default_mode, f'volume "{volume}"')))


def _downward_files(volume: str, pod: dict, items: list, facts: PodFacts, default_mode: int, out: Files) -> None:
    containers = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
    for item in items or []:
        path = descending_path(item.get("path", ""), f'volume "{volume}" item path')
        try:
            if item.get("fieldRef") is not None:
                value = field_value(pod, item["fieldRef"].get("fieldPath", ""), facts, whole_maps=True)
            elif item.get("resourceFieldRef") is not None:
                ref = item["resourceFieldRef"]
                container = containers.get(ref.get("containerName"))
                if container is None:
                    raise ConfigError(f"resourceFieldRef: no container named {ref.get('containerName')!r}")
                value = resource_value(pod, container, ref, facts)
            else:
                raise ConfigError("each item needs fieldRef or resourceFieldRef")
        except ConfigError as err:
            raise VolumeError(volume, f'volume "{volume}" item {path}: {err}', permanent=True) from None
        out.entries.append(FileEntry(path, value.encode(), _mode(item.get("mode"), default_mode,
                                                                  f'volume "{volume}"')))


def api_files(volume: Volume, pod: dict, facts: PodFacts, configmaps: Lookup, secrets: Lookup) -> Files:
    """The files of a configMap, secret, downwardAPI or projected volume, with their modes."""
    namespace = (pod.get("metadata") or {}).get("namespace") or "default"
    out = Files()
    try:
        default_mode = _mode(volume.spec.get("defaultMode"), DEFAULT_MODE, f'volume "{volume.name}"')
        if volume.kind == "configMap":
            _object_files(volume.name, "ConfigMap", volume.spec, configmaps, namespace, default_mode, out)
        elif volume.kind == "secret":
            source = {**volume.spec, "name": volume.spec.get("secretName", "")}
            _object_files(volume.name, "Secret", source, secrets, namespace, default_mode, out)
        elif volume.kind == "downwardAPI":
            _downward_files(volume.name, pod, volume.spec.get("items"), facts, default_mode, out)
        elif volume.kind == "projected":
            for source in volume.spec.get("sources") or []:
                if source.get("configMap") is not None:
                    _object_files(volume.name, "ConfigMap", source["configMap"], configmaps, namespace, default_mode,
                                  out)
                elif source.get("secret") is not None:
                    _object_files(volume.name, "Secret", source["secret"], secrets, namespace, default_mode, out)
                elif source.get("downwardAPI") is not None:
                    _downward_files(volume.name, pod, source["downwardAPI"].get("items"), facts, default_mode, out)
                else:
                    kinds = ", ".join(source) or "nothing"
                    out.warnings.append(f'volume "{volume.name}": projected source {kinds} is not supported yet; '
                                        "skipped")
    except ValueError as err:
        if isinstance(err, VolumeError):
            raise
        raise VolumeError(volume.name, str(err), permanent=True) from None
    _no_clashes(volume.name, out.entries)
    return out


def _no_clashes(volume: str, entries: list[FileEntry]) -> None:
    paths = [entry.path for entry in entries]
    for i, path in enumerate(paths):
        if path in paths[:i]:
            raise VolumeError(volume, f'volume "{volume}": two items write {path!r}', permanent=True)
        if any(other.startswith(path + "/") for other in paths):
            raise VolumeError(volume, f'volume "{volume}": {path!r} is both a file and a directory', permanent=True)


# --- mounts ----------------------------------------------------------------------------------------

def container_mounts(container: dict, volumes: dict[str, Volume], dirs: dict[str, str],
                     variables: dict[str, str]) -> list[MountPlan]:
    """Where the container sees each of its volumeMounts (raises VolumeError, permanent)."""
    out = []
    for mount in container.get("volumeMounts") or []:
        name = mount.get("name", "")
        if name not in volumes:
            raise VolumeError(name, f'volumeMount "{name}": the pod has no volume of that name', permanent=True)
        try:
            target = absolute_path(mount.get("mountPath"), f'volumeMount "{name}" mountPath')
            sub_path = mount.get("subPath") or ""
            if mount.get("subPathExpr"):
                if sub_path:
                    raise ValueError(f'volumeMount "{name}": subPath and subPathExpr are mutually exclusive')
                sub_path = expand(mount["subPathExpr"], variables)
                if "$(" in sub_path:
                    raise ValueError(f'volumeMount "{name}": subPathExpr {mount["subPathExpr"]!r} names an '
                                     "undefined variable")
            if sub_path:
                sub_path = descending_path(sub_path, f'volumeMount "{name}" subPath')
        except ValueError as err:
            raise VolumeError(name, str(err), permanent=True) from None
        base = dirs[name]
        read_only = bool(mount.get("readOnly")) or volumes[name].kind in API_DATA
        out.append(MountPlan(name, base, posixpath.join(base, sub_path) if sub_path else base, target, read_only,
                             sub_path))
    return out
