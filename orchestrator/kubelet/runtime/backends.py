"""The three runtimes behind contract A, chosen by `choose_runtime` (runtime/__init__.py):

- `runc` (root, runc installed): the real OCI runtime. Each container is an OCI bundle: the
  image's rootfs under an overlay of its own, config.json from oci.py, `runc run` in the
  foreground under the shim (runc's exit code is the container's: 3 stays 3, SIGKILL is 137), a
  `runc --root` per kubelet so several nodes share one machine.
- `process` (root without runc): the same sandbox, overlay and cgroups; the shim itself enters
  the pod's network namespace and new mount/UTS/IPC/PID namespaces and chroots into the rootfs:
  namespaced processes, no OCI runtime.
  (In both, a container joins another PID namespace instead of a new one where the pod says so:
  its target's for a debugging container, the pod's for shareProcessNamespace (held by
  pidholder.py, as Kubernetes' pause container holds it), the host's for hostPID; hostIPC keeps
  the host's IPC namespace.)
- `local` (no root): plain processes in their own session, on the host's network; the image's
  binaries come first on PATH (the built-in busybox's applets run as `sh`, `httpd`, ...), the
  working directory is the container's own, limits are best effort (none). The laptop mode: pods
  get their own loopback address from the kubelet's local network, programs that bind to
  0.0.0.0 share the machine's ports; every process is visible to every other, a debugging
  container's target included.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from orchestrator.kubelet.runtime import execs, oci
from orchestrator.kubelet.runtime.base import ContainerConfig, InvalidSpec, RuntimeFailure, SandboxConfig
from orchestrator.kubelet.runtime.containers import RuntimeCore, _read, environment, inside
from orchestrator.kubelet.runtime.images import repository


def _sandbox_mounts(runtime: RuntimeCore, sandbox: SandboxConfig, cfg: ContainerConfig) -> list[tuple[str, str, bool]]:
    directory = runtime.sandbox_dir(sandbox.pod_uid)
    mounts = [(str(directory / "resolv.conf"), "/etc/resolv.conf", False),
              (str(directory / "hosts"), "/etc/hosts", False),
              (str(directory / "hostname"), "/etc/hostname", False)]
    for mount in cfg.mounts:
        if not os.path.isabs(mount.container_path) or ".." in Path(mount.container_path).parts:
            raise InvalidSpec(f"mount path {mount.container_path!r} must be absolute and stay in the container")
        if not os.path.exists(mount.host_path):
            raise InvalidSpec(f"the volume source {mount.host_path} does not exist")
        mounts.append((mount.host_path, mount.container_path, mount.read_only))
    return mounts


def _prepare_targets(rootfs: Path, mounts: list[tuple[str, str, bool]]) -> None:
    """Bind mounts need their targets: a file for a file, a directory for a directory."""
    for source, target, _ in mounts:
        where = Path(inside(str(rootfs), target))
        if where.is_symlink():
            where.unlink()
        if os.path.isdir(source):
            where.mkdir(parents=True, exist_ok=True)
        else:
            where.parent.mkdir(parents=True, exist_ok=True)
            if not where.exists():
                where.touch()


class RuncRuntime(RuntimeCore):
    name = "runc"

    @property
    def runc_root(self) -> Path:
        return self.root / "runc"

    def _started(self, directory: Path) -> bool:
        return (directory / "container.pid").exists()  # runc writes it once the workload runs

    def _init_pid(self, directory: Path) -> int | None:
        if self._state(directory).state != "running":
            return None
        return int((directory / "container.pid").read_text().strip() or 0) or None

    def runc(self) -> list[str]:
        return ["runc", "--root", str(self.runc_root)]

    def _command(self, directory, sandbox, cfg, image, group, container_id) -> dict:
        host_image = repository(cfg.image) == "host"
        rootfs = self.mount_overlay(directory, self.images.rootfs(cfg.image))
        mounts = _sandbox_mounts(self, sandbox, cfg)
        _prepare_targets(rootfs, mounts + ([("/usr", "/usr", True), ("/etc", "/etc", True)] if host_image else []))
        env = [f"{k}={v}" for k, v in environment(image, cfg, sandbox.hostname).items()]
        cgroups_path = "/" + group.child("runc").relative if self.uses_cgroups else ""
        spec = oci.config(rootfs=str(rootfs), argv=cfg.argv, env=env, cwd=cfg.working_dir or image.working_dir or "/",
                          hostname=sandbox.hostname, netns=sandbox.netns_path, cgroups_path=cgroups_path,
                          mounts=mounts, host_image=host_image, terminal=cfg.tty,
                          pid_ns=self.pid_namespace(sandbox, cfg), host_ipc=sandbox.host_ipc)
        (directory / "config.json").write_text(json.dumps(spec))
        self.runc_root.mkdir(parents=True, exist_ok=True)
        return {"mode": "runc", "argv": self.runc() + ["run", "--bundle", str(directory), "--pid-file",
                                                       str(directory / "container.pid"), container_id],
                "cwd": str(directory)}

    def _signal(self, directory, state, sig) -> None:
        container_id = directory.name
        result = subprocess.run(self.runc() + ["kill", "--all", container_id, str(int(sig))], capture_output=True)
        if result.returncode != 0:
            super()._signal(directory, state, sig)

    def _release(self, directory: Path, state: dict) -> None:
        subprocess.run(self.runc() + ["delete", "--force", directory.name], capture_output=True)
        self.unmount(directory / "rootfs")

    def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool, size=None):
        self._require_running(container_id)
        if tty:
            # runc takes --console-socket only with --detach (then nobody can wait for the exit code);
            # attached, runc relays its own terminal to the one it makes inside the container and
            # passes a resize on (SIGWINCH), so its terminal is our pseudo-terminal
            return execs.with_pty(self.runc() + ["exec", "-t", container_id, *argv], size=size)
        return execs.with_pipes(self.runc() + ["exec", container_id, *argv], stdin=stdin)

    def _require_running(self, container_id: str) -> None:
        if self._state(self.container_dir(container_id)).state != "running":
            raise RuntimeFailure(f"container {container_id} is not running")


class ProcessRuntime(RuntimeCore):
    name = "process"

    def _command(self, directory, sandbox, cfg, image, group, container_id) -> dict:
        host_image = repository(cfg.image) == "host"
        rootfs = self.mount_overlay(directory, self.images.rootfs(cfg.image))
        mounts = [("/dev", "/dev", False), ("/sys", "/sys", True)] + _sandbox_mounts(self, sandbox, cfg)
        if host_image:
            mounts = [("/usr", "/usr", True), ("/etc", "/etc", True)] + mounts
        _prepare_targets(rootfs, mounts)
        (rootfs / "proc").mkdir(exist_ok=True)  # the shim mounts the new PID namespace's /proc there
        procs = [str(d / "cgroup.procs") for d in group.dirs()] if self.uses_cgroups else []
        return {
            "mode": "process",
            "argv": cfg.argv,
            "env": environment(image, cfg, sandbox.hostname),
            "rootfs": str(rootfs),
            "cwd": cfg.working_dir or image.working_dir or "/",
            "netns": sandbox.netns_path,
            "pid_ns": self.pid_namespace(sandbox, cfg),
            "host_ipc": sandbox.host_ipc,
            "hostname": sandbox.hostname,
            "mounts": mounts,
            "cgroup_procs": procs,
        }

    def _release(self, directory: Path, state: dict) -> None:
        self.unmount(directory / "rootfs")

    def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool, size=None):
        directory = self.container_dir(container_id)
        state = self._state(directory)
        if state.state != "running" or not state.pid:
            raise RuntimeFailure(f"container {container_id} is not running")
        spec = _read(directory / "spec.json") or {}
        enter = [
            "nsenter",
            "--target",
            str(state.pid),
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--root",
            f"--wd={spec.get('cwd') or '/'}",
            "--",
        ]
        env = spec.get("env")
        if tty:
            return execs.with_pty(enter + argv, env=env, size=size)
        return execs.with_pipes(enter + argv, stdin=stdin, env=env)


class LocalRuntime(RuntimeCore):
    name = "local"
    needs_root = False
    has_namespaces = False

    @property
    def uses_cgroups(self) -> bool:
        return False

    def _command(self, directory, sandbox, cfg, image, group, container_id) -> dict:
        env = environment(image, cfg, sandbox.hostname)
        if repository(cfg.image) != "host":
            rootfs = self.images.rootfs(cfg.image)
            # the image's binaries first, so `httpd` or `sh` of the built-in busybox are found
            env["PATH"] = (
                ":".join(str(rootfs / d) for d in ("bin", "sbin", "usr/bin", "usr/sbin")) + ":" + env.get("PATH", "")
            )
        argv = list(cfg.argv)
        located = shutil.which(argv[0], path=env["PATH"]) if not os.path.isabs(argv[0]) else argv[0]
        if located is None:
            raise InvalidSpec(f'executable "{argv[0]}" not found in the image or on the host ($PATH)')
        argv[0] = located
        work = directory / "work"
        work.mkdir(exist_ok=True)
        return {"mode": "local", "argv": argv, "env": env, "cwd": str(work)}

    def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool, size=None):
        directory = self.container_dir(container_id)
        state = self._state(directory)
        if state.state != "running":
            raise RuntimeFailure(f"container {container_id} is not running")
        spec = _read(directory / "spec.json") or {}
        env = spec.get("env")
        located = shutil.which(argv[0], path=(env or {}).get("PATH")) or argv[0]
        argv = [located, *argv[1:]]
        if tty:
            return execs.with_pty(argv, env=env, cwd=spec.get("cwd"), size=size)
        return execs.with_pipes(argv, stdin=stdin, env=env, cwd=spec.get("cwd"))

    def _signal(self, directory, state, sig) -> None:
        super()._signal(directory, state, sig)
