"""A test double of contract A that runs containers as plain host processes (no namespaces, no
cgroups, no root), writing CRI-format log files and keeping exit codes, so the kubelet's loop can
be tested end to end against a real control plane on any machine. Images: `busybox` (any tag,
entrypoint none, cmd sh) and whatever the test adds; anything else is ImageNotFound with the
message the real store gives. Usage figures are the process's own CPU time and RSS."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from orchestrator.kubelet.runtime import base as rt


def _stamp() -> str:
    now = time.time()
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(now % 1 * 1e9):09d}Z"


@dataclass
class HostProcessRuntime:
    root: Path
    name: str = "host"
    images: dict[str, rt.ImageConfig] = field(default_factory=dict)
    states: dict[str, rt.ContainerState] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    sandboxes: set[str] = field(default_factory=set)
    killed: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    started: list[rt.ContainerConfig] = field(default_factory=list)

    def image_config(self, ref: str) -> rt.ImageConfig:
        base = ref.split("@")[0].rsplit(":", 1)[0] if ":" in ref.split("/")[-1] else ref
        if base in self.images:
            return self.images[base]
        if base == "busybox":
            return rt.ImageConfig(ref, "sha256:" + "b" * 64, [], ["sh"], ["PATH=/usr/bin:/bin"], "")
        raise rt.ImageNotFound(f'image "{ref}" is not in the image store: import it with '
                               f"`ketch image import DIR|TAR` (an OCI layout or a docker-save tar)")

    def create_sandbox(self, cfg: rt.SandboxConfig) -> None:
        (self.root / cfg.pod_uid).mkdir(parents=True, exist_ok=True)
        self.sandboxes.add(cfg.pod_uid)

    def remove_sandbox(self, pod_uid: str) -> None:
        self.sandboxes.discard(pod_uid)

    def start_container(self, sandbox: rt.SandboxConfig, cfg: rt.ContainerConfig) -> rt.ContainerState:
        if cfg.resources.memory_limit_bytes is not None and cfg.resources.memory_limit_bytes < 4096:
            raise rt.InvalidSpec(f"memory limit {cfg.resources.memory_limit_bytes} is below the minimum (4096)")
        cid = f"{cfg.pod_uid[:8]}-{cfg.name}-{cfg.attempt}-{os.urandom(3).hex()}"
        log_path = self.root / cfg.pod_uid / f"{cfg.name}-{cfg.attempt}.log"
        process = subprocess.Popen(cfg.argv, env=dict(cfg.env), cwd=cfg.working_dir or None, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        state = rt.ContainerState(cid, cfg.pod_uid, cfg.name, cfg.attempt, cfg.image, "sha256:" + "b" * 64,
                                  "running", process.pid, time.time(), None, None, "", str(log_path))
        with self.lock:
            self.states[cid], self.processes[cid] = state, process
            self.started.append(cfg)
        writers = [threading.Thread(target=self._copy, args=(process.stdout, "stdout", log_path), daemon=True),
                   threading.Thread(target=self._copy, args=(process.stderr, "stderr", log_path), daemon=True)]
        for writer in writers:
            writer.start()
        threading.Thread(target=self._reap, args=(cid, process, writers), daemon=True).start()
        return state

    def _copy(self, pipe, stream: str, path: Path) -> None:
        for line in iter(pipe.readline, b""):
            tag = b"F" if line.endswith(b"\n") else b"P"
            with self.lock, open(path, "ab") as handle:
                handle.write(f"{_stamp()} {stream} ".encode() + tag + b" " + line.rstrip(b"\n") + b"\n")

    def _reap(self, cid: str, process: subprocess.Popen, writers: list) -> None:
        code = process.wait()
        for writer in writers:
            writer.join(timeout=2)
        code = 128 - code if code < 0 else code
        with self.lock:
            reason = "Completed" if code == 0 else "Error"
            self.states[cid] = replace(self.states[cid], state="exited", exit_code=code, reason=reason,
                                       finished_at=time.time(), pid=None)

    def list_containers(self) -> list[rt.ContainerState]:
        with self.lock:
            return list(self.states.values())

    def list_sandboxes(self) -> list[str]:
        return sorted(self.sandboxes)

    def signal(self, container_id: str, sig: int) -> None:
        process = self.processes.get(container_id)
        if process is not None and process.poll() is None:
            os.killpg(process.pid, sig)

    def remove_container(self, container_id: str) -> None:
        with self.lock:
            if self.states[container_id].state == "running":
                raise rt.RuntimeFailure(f"container {container_id} is running")
            del self.states[container_id]
            self.processes.pop(container_id, None)

    def exec(self, container_id: str, argv: list[str], *, stdin: bool, tty: bool, size=None):
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

        class Exec:
            stdout = os.dup(process.stdout.fileno())
            stderr = None

            @staticmethod
            def wait() -> int:
                return process.wait()

            @staticmethod
            def resize(cols: int, rows: int) -> None:
                pass
        process.stdout.close()
        return Exec()

    def usage(self, pod_uid: str) -> dict[str, rt.ContainerUsage]:
        out = {}
        for state in self.list_containers():
            if state.pod_uid == pod_uid and state.state == "running" and state.pid:
                try:
                    fields = Path(f"/proc/{state.pid}/stat").read_text().rsplit(")", 1)[1].split()
                    ticks = int(fields[11]) + int(fields[12])
                    rss = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
                except (OSError, IndexError, ValueError):
                    continue
                out[state.name] = rt.ContainerUsage(ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK"), rss)
        return out

    def stop_everything(self) -> None:
        for process in list(self.processes.values()):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
