"""The image store: OCI image layouts imported from a directory or a tar, with no registry.

    store/
      refs.json                       "name:tag" -> manifest digest, and the image's config
      unpacked/<digest>/rootfs        every layer applied once (whiteouts honoured), shared read-only
      builtin/busybox/rootfs          made on first use from Debian's busybox-static (/bin/busybox)
      builtin/host/rootfs             empty: the runtime binds the host's /usr and /etc read-only

References are normalised as Docker does: `busybox`, `busybox:1.36` and
`docker.io/library/busybox:1.36` are the same name; a missing tag is `latest`. `busybox` (any
tag) and `host` are built in; anything else must be imported (`ketch image import DIR|TAR`, for
example a layout made by `skopeo copy docker://nginx oci:DIR` or `docker save` from Docker 25+).
A name such as `nginx` in a manifest maps to nothing until it is imported: the pod then shows
ErrImagePull with this store's hint.
"""

from __future__ import annotations

import fcntl
import functools
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from contextlib import contextmanager
from pathlib import Path

from orchestrator.kubelet.runtime.base import ImageConfig, ImageNotFound, RuntimeFailure

BUILTINS = ("busybox", "host")
BUSYBOX_BINARY = Path("/bin/busybox")
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ImageImportError(RuntimeFailure):
    pass


def normalise(ref: str) -> str:
    """"docker.io/library/busybox:1.36" -> "busybox:1.36"; "busybox" -> "busybox:latest"."""
    ref = ref.strip()
    name, digest = (ref.split("@", 1) + [""])[:2]
    for prefix in ("docker.io/library/", "index.docker.io/library/", "library/", "docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    if ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
    return name + (f"@{digest}" if digest else "")


def repository(ref: str) -> str:
    return normalise(ref).split("@")[0].rsplit(":", 1)[0]


class ImageStore:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # --- bookkeeping ----------------------------------------------------------------------------

    @contextmanager
    def _locked(self):
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _refs(self) -> dict:
        try:
            return json.loads((self.path / "refs.json").read_text())
        except (OSError, ValueError):
            return {}

    def _write_refs(self, refs: dict) -> None:
        scratch = self.path / "refs.json.tmp"
        scratch.write_text(json.dumps(refs, indent=1, sort_keys=True))
        os.replace(scratch, self.path / "refs.json")

    def list(self) -> list[dict]:
        """[{ref, id, size}] of imported images, and the built-ins."""
        out = [{"ref": f"{name}:*", "id": "built-in", "size": 0} for name in BUILTINS]
        for ref, entry in sorted(self._refs().items()):
            rootfs = self.path / "unpacked" / entry["digest"].replace(":", "_") / "rootfs"
            out.append({"ref": ref, "id": entry["digest"], "size": _size(rootfs)})
        return out

    def remove(self, ref: str) -> None:
        with self._locked():
            refs = self._refs()
            key = normalise(ref)
            if key not in refs:
                raise ImageNotFound(f'image "{ref}" is not in the image store {self.path}')
            digest = refs.pop(key)["digest"]
            self._write_refs(refs)
            if not any(e["digest"] == digest for e in refs.values()):
                shutil.rmtree(self.path / "unpacked" / digest.replace(":", "_"), ignore_errors=True)

    # --- lookups --------------------------------------------------------------------------------

    def config(self, ref: str) -> ImageConfig:
        name = repository(ref)
        if name == "busybox" and normalise(ref) not in self._refs():
            self.rootfs(ref)
            return ImageConfig(ref, _busybox_id(BUSYBOX_BINARY.stat().st_mtime_ns), [], ["sh"], [DEFAULT_PATH], "")
        if name == "host":
            return ImageConfig(ref, "sha256:" + "0" * 64, [], ["sh"], [DEFAULT_PATH], "")
        entry = self._refs().get(normalise(ref))
        if entry is None:
            raise ImageNotFound(
                f'image "{ref}" is not in the image store {self.path}: import it with `ketch image import '
                f"DIR|TAR` (an OCI image layout, e.g. from `skopeo copy docker://{repository(ref)} oci:DIR`); "
                f"only busybox and host are built in, and names such as nginx map to nothing until imported")
        config = entry.get("config") or {}
        return ImageConfig(ref, entry["digest"], list(config.get("Entrypoint") or []), list(config.get("Cmd") or []),
                           list(config.get("Env") or [DEFAULT_PATH]), config.get("WorkingDir") or "")

    def rootfs(self, ref: str) -> Path:
        name = repository(ref)
        entry = self._refs().get(normalise(ref))
        if entry is not None:
            return self.path / "unpacked" / entry["digest"].replace(":", "_") / "rootfs"
        if name == "busybox":
            return self._busybox()
        if name == "host":
            target = self.path / "builtin" / "host" / "rootfs"
            if not target.exists():
                with self._locked():
                    for sub in ("usr", "etc", "proc", "sys", "dev", "tmp", "root", "var", "run"):
                        (target / sub).mkdir(parents=True, exist_ok=True)
                    for link in ("bin", "sbin", "lib", "lib64"):  # merged /usr, as on Debian
                        if not (target / link).is_symlink():
                            (target / link).symlink_to(f"usr/{link}")
            return target
        raise ImageNotFound(f'image "{ref}" is not in the image store {self.path}')

    def _busybox(self) -> Path:
        target = self.path / "builtin" / "busybox" / "rootfs"
        if (target / "bin" / "sh").exists():
            return target
        if not BUSYBOX_BINARY.exists():
            raise ImageNotFound("the built-in busybox image needs Debian's busybox-static (/bin/busybox): "
                                "apt-get install busybox-static")
        with self._locked():
            scratch = Path(tempfile.mkdtemp(prefix="busybox.", dir=self.path))
            for sub in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
                        "var/www", "run"):
                (scratch / sub).mkdir(parents=True, exist_ok=True)
            shutil.copy2(BUSYBOX_BINARY, scratch / "bin" / "busybox")
            applets = subprocess.run([str(BUSYBOX_BINARY), "--list-full"], capture_output=True, text=True,
                                     check=True).stdout.split()
            for applet in applets:  # relative links: valid inside the container and when unpacked anywhere
                link = scratch / applet
                if not link.exists() and applet != "bin/busybox":
                    depth = applet.count("/")
                    link.symlink_to("../" * depth + "bin/busybox")
            (scratch / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n"
                                                    "nobody:x:65534:65534:nobody:/:/bin/false\n")
            (scratch / "etc" / "group").write_text("root:x:0:\nnobody:x:65534:\n")
            (scratch / "tmp").chmod(0o1777)
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.replace(scratch, target)
            else:
                shutil.rmtree(scratch, ignore_errors=True)
        return target

    # --- import ---------------------------------------------------------------------------------

    def import_path(self, source: Path, name: str | None = None) -> list[str]:
        """Import every image of an OCI layout (a directory, or a tar of one); returns the refs.
        `name` names images whose layout gives only a tag (skopeo's `oci:DIR:TAG`)."""
        source = Path(source)
        if source.is_dir():
            return self._import_layout(source, name)
        if tarfile.is_tarfile(source):
            with tempfile.TemporaryDirectory(dir=self.path if self.path.exists() else None) as scratch:
                with tarfile.open(source) as archive:
                    _extract(archive, archive.getmembers(), Path(scratch))
                return self._import_layout(Path(scratch), name)
        raise ImageImportError(f"{source} is neither an OCI layout directory nor a tar of one")

    def _import_layout(self, layout: Path, name: str | None) -> list[str]:
        try:
            index = json.loads((layout / "index.json").read_text())
        except (OSError, ValueError) as err:
            raise ImageImportError(f"{layout} has no readable index.json: not an OCI image layout ({err})") from None
        imported = []
        for descriptor in index.get("manifests") or []:
            manifest = json.loads(_blob(layout, descriptor["digest"]))
            if "manifests" in manifest:  # an index of platforms: take linux/amd64 or the first
                chosen = next(
                    (
                        m
                        for m in manifest["manifests"]
                        if (m.get("platform") or {}).get("architecture") in ("amd64", None)
                    ),
                    manifest["manifests"][0],
                )
                descriptor = {**chosen, "annotations": descriptor.get("annotations")}
                manifest = json.loads(_blob(layout, chosen["digest"]))
            config = json.loads(_blob(layout, manifest["config"]["digest"])).get("config") or {}
            digest = descriptor["digest"]
            ref = image_name(descriptor.get("annotations") or {}, name, digest)
            rootfs = self.path / "unpacked" / digest.replace(":", "_") / "rootfs"
            if not rootfs.exists():
                scratch = rootfs.parent / "rootfs.partial"
                shutil.rmtree(scratch, ignore_errors=True)
                scratch.mkdir(parents=True)
                for layer in manifest.get("layers") or []:
                    _apply_layer(_blob(layout, layer["digest"]), scratch)
                os.replace(scratch, rootfs)
            with self._locked():
                refs = self._refs()
                refs[normalise(ref)] = {"digest": digest, "config": config}
                self._write_refs(refs)
            imported.append(normalise(ref))
        if not imported:
            raise ImageImportError(f"{layout}/index.json lists no image")
        return imported


@functools.lru_cache(maxsize=4)
def _busybox_id(mtime_ns: int) -> str:
    """The built-in busybox's image id: its binary's digest, hashed once per binary (a pod start
    hashed the 2 MB binary again, from every pod worker's thread at once)."""
    return "sha256:" + hashlib.sha256(BUSYBOX_BINARY.read_bytes()).hexdigest()


def image_name(annotations: dict, name: str | None, digest: str) -> str:
    """The ref of an imported image: containerd's full name (docker save), else the OCI ref name,
    which skopeo and umoci set to a tag only (then `name` gives the repository)."""
    full = annotations.get("io.containerd.image.name")
    if full:
        return normalise(full)
    tag = annotations.get("org.opencontainers.image.ref.name", "")
    if tag and (":" in tag or "/" in tag):
        return normalise(tag)
    if name:
        return normalise(f"{name}:{tag}" if tag and ":" not in name else name)
    if tag:
        return normalise(tag)
    raise ImageImportError(f"the image {digest} has no name in the layout: give one with --name")


def _blob(layout: Path, digest: str) -> bytes:
    algorithm, _, value = digest.partition(":")
    data = (layout / "blobs" / algorithm / value).read_bytes()
    if algorithm == "sha256" and hashlib.sha256(data).hexdigest() != value:
        raise ImageImportError(f"blob {digest} does not match its digest: the layout is corrupt")
    return data


def _apply_layer(data: bytes, root: Path) -> None:
    """Unpack one layer over root, honouring OCI whiteouts (.wh.NAME deletes NAME; .wh..wh..opq
    empties the directory). Absolute symlinks (busybox --install -s makes them) are kept as they are."""
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = []
        for member in archive.getmembers():
            name = Path(member.name)
            if name.name == ".wh..wh..opq":
                directory = _inside(root, str(name.parent))
                if directory.is_dir():
                    for child in directory.iterdir():
                        _remove(child)
            elif name.name.startswith(".wh."):
                _remove(_inside(root, str(name.parent / name.name[len(".wh.") :])))
            else:
                members.append(member)
        _extract(archive, members, root)


def _extract(archive: tarfile.TarFile, members: list[tarfile.TarInfo], root: Path) -> None:
    """Extract with no path leaving root (through .., an absolute name, a hard link or a symlink
    extracted earlier). Python's "tar" filter does that from 3.11.4; Debian 12's 3.11.2 lacks it."""
    if hasattr(tarfile, "tar_filter"):
        try:
            archive.extractall(root, members=members, filter="tar")
        except tarfile.TarError as err:  # the filter's refusals (OutsideDestinationError, ...) among them
            raise ImageImportError(f"a layer cannot be unpacked safely: {err}") from None
        return
    for member in members:
        _inside(root, member.name)
        if member.islnk():
            _inside(root, member.linkname)
        if member.isdev():
            continue  # device nodes come from the runtime's /dev, never from an image
        archive.extract(member, root, set_attrs=not member.issym())


def _inside(root: Path, name: str) -> Path:
    """root/name, refused (ImageImportError) when it would resolve outside root."""
    top = os.path.realpath(root)
    target = os.path.join(os.path.realpath(os.path.join(top, os.path.dirname(name.lstrip("/")))),
                          os.path.basename(name))
    if os.path.isabs(name) or not (target == top or target.startswith(top.rstrip("/") + "/")):
        raise ImageImportError(f"the layer entry {name!r} leaves the image's root filesystem")
    return Path(target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def _size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total
