"""What the three runtimes share: containers and sandboxes on disk, the shim, state and cleanup.

    ROOT/containers/<id>/spec.json      what the shim runs (shim.py)
                        state.json      the container's identity (pod, name, attempt, image, log)
                        shim.json       written by the shim once the workload started (its pid)
                        exit.json       written by the shim when the workload ended (code, time)
                        upper/ work/ rootfs/   the overlay (runc, process)
    ROOT/sandboxes/<pod uid>/           resolv.conf, hosts, hostname
    ROOT/logs/<pod uid>/<name>/<attempt>.log   kept after the container is removed, for --previous

Everything the kubelet needs after a crash is on disk: `list_containers` rebuilds the states
from these files, and a container that exited while no kubelet ran has its exit.json.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.kubelet.runtime import cgroups
from orchestrator.kubelet.runtime.base import (
    HOST_NAMESPACE,
    PID_HOST,
    PID_POD,
    AttachPoint,
    ContainerConfig,
    ContainerState,
    ContainerUsage,
    ImageConfig,
    InvalidSpec,
    RuntimeFailure,
    SandboxConfig,
)
from orchestrator.kubelet.runtime.images import ImageStore
from orchestrator.processes import alive

SAFE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
START_TIMEOUT_S = 10.0
# The shim needs only the standard library: run as a file in isolated mode it starts in ~15 ms
# instead of ~40 ms through `-m` (the package imports and site), once per container started.
SHIM = ["-I", "-S", str(Path(__file__).with_name("shim.py"))]
PID_HOLDER = ["-I", "-S", str(Path(__file__).with_name("pidholder.py"))]
PID_HOLDER_FILE = "pid-holder.pid"


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def inside(root: str, path: str) -> str:
    """A path inside root; a target that would leave it (.., symlinks outside) is InvalidSpec."""
    joined = os.path.normpath(os.path.join(root, path.lstrip("/")))
    if joined != root and not joined.startswith(root.rstrip("/") + "/"):
        raise InvalidSpec(f"the mount target {path!r} leaves the container's filesystem")
    return joined


class RuntimeCore:
    """The shared part; a backend provides `name`, `_command` and `_exec`."""

    name = "base"
    needs_root = True
    has_namespaces = True  # its containers have namespaces of their own (not so the local runtime's)

    def __init__(self, root: Path, images: ImageStore, cgroup_prefix: str) -> None:
        self.root = Path(root)
        self.images = images
        self.cgroup_prefix = cgroup_prefix
        for sub in ("containers", "sandboxes", "logs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # --- images and sandboxes -------------------------------------------------------------------

    def image_config(self, ref: str) -> ImageConfig:
        return self.images.config(ref)

    def sandbox_dir(self, pod_uid: str) -> Path:
        if not SAFE_NAME.match(pod_uid.lower()) and not re.match(r"^[0-9a-f-]+$", pod_uid):
            raise InvalidSpec(f"pod uid {pod_uid!r} cannot name a directory")
        return self.root / "sandboxes" / pod_uid

    def pod_logs_dir(self, pod_uid: str) -> Path:
        return self.root / "logs" / self.sandbox_dir(pod_uid).name

    def pod_cgroup(self, pod_uid: str) -> cgroups.Cgroup:
        return cgroups.Cgroup(f"{self.cgroup_prefix}/pod-{pod_uid}")

    def create_sandbox(self, cfg: SandboxConfig) -> None:
        directory = self.sandbox_dir(cfg.pod_uid)
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in (("resolv.conf", cfg.resolv_conf), ("hosts", cfg.hosts), ("hostname", cfg.hostname + "\n")):
            (directory / name).write_text(text)
        (directory / "sandbox.json").write_text(json.dumps({"pod_uid": cfg.pod_uid, "namespace": cfg.namespace,
                                                             "name": cfg.name, "netns": cfg.netns_path}))
        if self.uses_cgroups:
            cgroups.check(cfg.pod_resources)
            group = self.pod_cgroup(cfg.pod_uid)
            group.create()
            group.limit(cfg.pod_resources)
        if cfg.pid_mode == PID_POD and self.has_namespaces:
            self._pid_holder(cfg.pod_uid) or self._hold_pid_namespace(cfg.pod_uid)

    @property
    def uses_cgroups(self) -> bool:
        return cgroups.available()

    def list_sandboxes(self) -> list[str]:
        return sorted(p.name for p in (self.root / "sandboxes").iterdir() if (p / "sandbox.json").exists())

    def remove_sandbox(self, pod_uid: str) -> None:
        self.release_pid_namespace(pod_uid)
        if self.uses_cgroups:
            group = self.pod_cgroup(pod_uid)
            group.kill_all(signal.SIGKILL)
            group.remove()
        shutil.rmtree(self.sandbox_dir(pod_uid), ignore_errors=True)
        shutil.rmtree(self.pod_logs_dir(pod_uid), ignore_errors=True)

    # --- containers -----------------------------------------------------------------------------

    def container_dir(self, container_id: str) -> Path:
        if not SAFE_NAME.match(container_id):
            raise RuntimeFailure(f"no such container {container_id!r}")
        return self.root / "containers" / container_id

    def container_cgroup(self, pod_uid: str, name: str, attempt: int) -> cgroups.Cgroup:
        return self.pod_cgroup(pod_uid).child(f"{name}-{attempt}")

    def start_container(self, sandbox: SandboxConfig, cfg: ContainerConfig) -> ContainerState:
        if not cfg.argv:
            raise InvalidSpec("the container has no command: the image has no entrypoint or cmd and the pod gives none")
        cgroups.check(cfg.resources)
        image = self.images.config(cfg.image)
        container_id = f"{cfg.pod_uid[:8]}-{cfg.name}-{cfg.attempt}-{secrets.token_hex(3)}".lower()
        if not SAFE_NAME.match(container_id):
            container_id = f"c-{secrets.token_hex(8)}"
        directory = self.container_dir(container_id)
        log = self.pod_logs_dir(cfg.pod_uid) / cfg.name / f"{cfg.attempt}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        directory.mkdir(parents=True)
        group = self.container_cgroup(cfg.pod_uid, cfg.name, cfg.attempt)
        try:
            if self.uses_cgroups:
                group.create()
                group.limit(cfg.resources)
            spec = self._command(directory, sandbox, cfg, image, group, container_id)
            spec.update(log=str(log), stdin=cfg.stdin, stdin_once=cfg.stdin_once, tty=cfg.tty)
            (directory / "spec.json").write_text(json.dumps(spec))
            state = {"id": container_id, "pod_uid": cfg.pod_uid, "name": cfg.name, "attempt": cfg.attempt,
                     "image": cfg.image, "image_id": image.image_id, "log_path": str(log),
                     "cgroup": group.relative, "created_at": time.time()}
            (directory / "state.json").write_text(json.dumps(state))
            subprocess.run([sys.executable, *SHIM, str(directory)], check=True,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True, timeout=30)
            deadline = time.monotonic() + START_TIMEOUT_S
            while not self._started(directory) and not (directory / "exit.json").exists():
                if time.monotonic() > deadline:
                    raise RuntimeFailure(f"container {container_id} did not start within {START_TIMEOUT_S:.0f} s")
                time.sleep(0.005)
        except BaseException:
            self._teardown(container_id)
            raise
        return self._state(directory)

    def _started(self, directory: Path) -> bool:
        return (directory / "shim.json").exists()

    def _command(self, directory: Path, sandbox: SandboxConfig, cfg: ContainerConfig, image: ImageConfig,
                 group: cgroups.Cgroup, container_id: str) -> dict:
        raise NotImplementedError

    def pid_namespace(self, sandbox: SandboxConfig, cfg: ContainerConfig) -> str | None:
        """The PID namespace a container joins: its target's (kubectl debug --target), the pod's
        (shareProcessNamespace), the host's (HOST_NAMESPACE, for hostPID); None for a new one."""
        if cfg.pid_namespace_of is not None:
            pid = self._init_pid(self.container_dir(cfg.pid_namespace_of))
            if not pid:
                raise RuntimeFailure(f"container {cfg.pid_namespace_of} is not running: there are no processes to "
                                     "share")
        elif sandbox.pid_mode == PID_HOST:
            return HOST_NAMESPACE
        elif sandbox.pid_mode == PID_POD:
            # A holder that ended took the pod's processes with it (its containers restart per
            # their policy): a new one holds a new namespace, as a new pause container would.
            pid = self._pid_holder(sandbox.pod_uid) or self._hold_pid_namespace(sandbox.pod_uid)
        else:
            return None
        return f"/proc/{pid}/ns/pid"

    def release_pid_namespace(self, pod_uid: str) -> None:
        """Stop the pod's PID namespace holder, if it has one: its PID 1, and every process in it."""
        holder = self._pid_holder(pod_uid)
        if holder:
            try:
                os.kill(holder, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def _pid_holder(self, pod_uid: str) -> int | None:
        """The pid of the PID 1 that holds the pod's namespace, if it still runs (and is still it)."""
        pidfile = self.sandbox_dir(pod_uid) / PID_HOLDER_FILE
        try:
            pid = int(pidfile.read_text().strip())
            running = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(pidfile).encode() in running else None

    def _hold_pid_namespace(self, pod_uid: str) -> int:
        """shareProcessNamespace: start the process that holds the pod's PID namespace (pidholder.py),
        in a leaf cgroup of the pod's (cgroup v2 allows no process beside child cgroups)."""
        pidfile = self.sandbox_dir(pod_uid) / PID_HOLDER_FILE
        pidfile.unlink(missing_ok=True)
        procs = []
        if self.uses_cgroups:
            group = self.pod_cgroup(pod_uid).child("pid-holder")
            group.create()
            procs = [str(d / "cgroup.procs") for d in group.dirs()]
        try:
            subprocess.run([sys.executable, *PID_HOLDER, str(pidfile), *procs], check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30)
        except subprocess.CalledProcessError as err:
            raise RuntimeFailure(err.stderr.decode(errors="replace").strip() or str(err)) from None
        except subprocess.TimeoutExpired:
            self.release_pid_namespace(pod_uid)
            raise RuntimeFailure("the pod's PID namespace holder did not start within 30 s") from None
        pid = self._pid_holder(pod_uid)
        if not pid:
            raise RuntimeFailure("the pod's PID namespace holder ended as it started")
        return pid

    def _init_pid(self, directory: Path) -> int | None:
        """The host pid of the container's first process inside its namespaces, while it runs."""
        state = self._state(directory)
        return state.pid if state.state == "running" else None

    def _state(self, directory: Path) -> ContainerState:
        state = _read(directory / "state.json") or {}
        shim = _read(directory / "shim.json") or {}
        ended = _read(directory / "exit.json")
        signals = _read(directory / "signals.json") or {}
        pid = shim.get("child_pid")
        if ended is None and shim and not alive(shim.get("shim_pid")) and not alive(pid):
            ended = {"exit_code": 255, "finished_at": time.time(), "reason": "Error"}  # the shim itself died
        if ended is None:
            return ContainerState(state["id"], state["pod_uid"], state["name"], state["attempt"], state["image"],
                                  state["image_id"], "running" if self._started(directory) else "created", pid,
                                  shim.get("started_at"), None, None, "", state["log_path"])
        code = ended["exit_code"]
        if code == 1 and signals.get("last") == signal.SIGKILL:
            code = 137  # a tool between us and the workload reported our SIGKILL as 1
        reason = ended.get("reason") or ("Completed" if code == 0 else "Error")
        killed_by_us = signals.get("last") == signal.SIGKILL
        if code in (137, 255, 1) and not killed_by_us and self.uses_cgroups and \
                cgroups.Cgroup(state["cgroup"]).oom_killed():
            code, reason = 137, "OOMKilled"
        return ContainerState(state["id"], state["pod_uid"], state["name"], state["attempt"], state["image"],
                              state["image_id"], "exited", None, shim.get("started_at"), ended["finished_at"], code,
                              reason, state["log_path"])

    def list_containers(self) -> list[ContainerState]:
        out = []
        for directory in sorted((self.root / "containers").iterdir()):
            if (directory / "state.json").exists():
                try:
                    out.append(self._state(directory))
                except (KeyError, TypeError):
                    continue
        return out

    def attach_point(self, container_id: str) -> AttachPoint:
        """The running container's shim socket; RuntimeFailure when it is not running."""
        directory = self.container_dir(container_id)
        if not (directory / "state.json").exists() or self._state(directory).state != "running":
            raise RuntimeFailure(f"container {container_id} is not running")
        spec = _read(directory / "spec.json") or {}
        return AttachPoint(str(directory), bool(spec.get("tty")), bool(spec.get("stdin")))

    def signal(self, container_id: str, sig: int) -> None:
        directory = self.container_dir(container_id)
        (directory / "signals.json").write_text(json.dumps({"last": int(sig), "at": time.time()}))
        state = _read(directory / "state.json") or {}
        self._signal(directory, state, sig)

    def _signal(self, directory: Path, state: dict, sig: int) -> None:
        shim = _read(directory / "shim.json") or {}
        pid = shim.get("child_pid")
        if sig == signal.SIGKILL and self.uses_cgroups and state.get("cgroup"):
            cgroups.Cgroup(state["cgroup"]).kill_all(signal.SIGKILL)
        if alive(pid):
            try:
                os.killpg(pid, sig)
            except (ProcessLookupError, PermissionError):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass

    def remove_container(self, container_id: str) -> None:
        directory = self.container_dir(container_id)
        if not directory.exists():
            return
        if self._state(directory).state == "running":
            raise RuntimeFailure(f"container {container_id} is running: stop it first")
        self._teardown(container_id)

    def _teardown(self, container_id: str) -> None:
        directory = self.container_dir(container_id)
        state = _read(directory / "state.json") or {}
        self._release(directory, state)
        if self.uses_cgroups and state.get("cgroup"):
            group = cgroups.Cgroup(state["cgroup"])
            group.kill_all(signal.SIGKILL)
            try:
                group.remove()
            except OSError:
                pass
        shutil.rmtree(directory, ignore_errors=True)

    def _release(self, directory: Path, state: dict) -> None:
        """Backend resources of a container (runc state, overlay mounts)."""

    def remove_node_state(self) -> None:
        """After every container and sandbox is gone (`ketch kubelet --cleanup`): the node's cgroups
        and the runtime's own directories."""
        if self.uses_cgroups:
            cgroups.Cgroup(self.cgroup_prefix).remove()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- overlay ----------------------------------------------------------------------------------

    def mount_overlay(self, directory: Path, lower: Path) -> Path:
        merged = directory / "rootfs"
        for sub in ("upper", "work", "rootfs"):
            (directory / sub).mkdir(exist_ok=True)
        result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                                 f"lowerdir={lower},upperdir={directory / 'upper'},workdir={directory / 'work'}",
                                 str(merged)], capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeFailure(f"cannot mount the container's filesystem: {result.stderr.strip()}")
        return merged

    @staticmethod
    def unmount(path: Path) -> None:
        if os.path.ismount(path):
            subprocess.run(["umount", "-l", str(path)], capture_output=True)

    # --- usage ------------------------------------------------------------------------------------

    def usage(self, pod_uid: str) -> dict[str, ContainerUsage]:
        out = {}
        for state in self.list_containers():
            if state.pod_uid != pod_uid or state.state != "running":
                continue
            if self.uses_cgroups:
                cpu, memory = self.container_cgroup(state.pod_uid, state.name, state.attempt).usage()
            else:
                cpu, memory = _process_usage(state.pid)
            out[state.name] = ContainerUsage(cpu, memory)
        return out


def _process_usage(pid: int | None) -> tuple[int, int]:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks = int(fields[11]) + int(fields[12])
        rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError, TypeError):
        return 0, 0
    return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK"), rss


def environment(image: ImageConfig, cfg: ContainerConfig, hostname: str) -> dict[str, str]:
    """The image's variables, overridden by the pod's (as containerd merges them); HOSTNAME is the
    pod's hostname, as a container's shell sees it in Kubernetes."""
    env = dict(item.split("=", 1) for item in image.env if "=" in item)
    env.update(dict(cfg.env))
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    env.setdefault("HOSTNAME", hostname)
    if cfg.tty:
        env.setdefault("TERM", "xterm")  # as containerd gives a container with a terminal
    return env
