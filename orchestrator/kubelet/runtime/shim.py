"""The per-container supervisor (like containerd's shim or conmon): `python -I -S shim.py DIR`
(standard library only, so it starts fast).

It owns the container's stdout and stderr, writes them to the log in the CRI format
(`2026-01-02T03:04:05.123456789Z stdout F text`, `P` for a partial line), waits for the
container, and writes its exit code and finish time to DIR/exit.json. It detaches from the
kubelet first (a double fork and its own session), so a container keeps running, logging and
having its exit recorded while no kubelet runs; a new kubelet reads DIR to adopt it.

DIR/spec.json says what to run:
  {"mode": "runc"|"process"|"local", "argv": [...], "log": PATH, "env": {...}, "cwd": PATH,
   "cgroup": "relative/path" (process, local as root), "netns": PATH (process), "rootfs": PATH,
   "hostname": NAME, "mounts": [[source, target, readonly], ...] (process)}
In `process` mode the shim itself enters the pod's network namespace and new mount, UTS, IPC and
PID namespaces, so the workload is PID 1 of its own namespace and its exit code is the shim's
direct child's: no `unshare --fork` in between (which reports a killed child as exit 1).
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x4000000, 0x8000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_BIND, MS_REC, MS_PRIVATE, MS_REMOUNT = 1, 4096, 16384, 1 << 18, 32
MAX_LINE = 16 * 1024  # longer output is cut into partial (P) lines, as the CRI logger does


def stamp(now: float | None = None) -> str:
    now = time.time() if now is None else now
    return datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(now % 1 * 1e9):09d}Z"


class CRILog:
    """Lines of one stream, cut at newlines and MAX_LINE, in the CRI log format."""

    def __init__(self, path: Path) -> None:
        self.file = open(path, "ab", buffering=0)
        self.pending = {b"stdout": b"", b"stderr": b""}

    def feed(self, stream: bytes, data: bytes) -> None:
        buffer = self.pending[stream] + data
        while True:
            cut = buffer.find(b"\n")
            if cut < 0 and len(buffer) < MAX_LINE:
                break
            if 0 <= cut < MAX_LINE:
                self._write(stream, b"F", buffer[:cut])
                buffer = buffer[cut + 1:]
            else:
                self._write(stream, b"P", buffer[:MAX_LINE])
                buffer = buffer[MAX_LINE:]
        self.pending[stream] = buffer

    def close(self) -> None:
        for stream, rest in self.pending.items():
            if rest:
                self._write(stream, b"P", rest)
        self.file.close()

    def _write(self, stream: bytes, tag: bytes, text: bytes) -> None:
        self.file.write(stamp().encode() + b" " + stream + b" " + tag + b" " + text + b"\n")


def write_json(path: Path, value: dict) -> None:
    scratch = path.with_suffix(".tmp")
    scratch.write_text(json.dumps(value))
    os.replace(scratch, path)


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def enter_namespaces(spec: dict) -> None:
    """process mode, in the shim: the pod's network, then new mount/UTS/IPC/PID namespaces, the
    volumes bound into the rootfs, and the hostname. The next child is PID 1 of the new PID namespace."""
    libc = _libc()
    if spec.get("netns"):
        with open(spec["netns"]) as handle:
            _check(libc.setns(handle.fileno(), CLONE_NEWNET), "setns")
    _check(libc.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID), "unshare")
    _check(libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "make mounts private")
    rootfs = spec["rootfs"]
    for source, target, readonly in spec.get("mounts") or []:
        where = os.path.join(rootfs, target.lstrip("/")).encode()
        _check(libc.mount(source.encode(), where, None, MS_BIND | MS_REC, None), f"bind {source}")
        if readonly:
            _check(libc.mount(None, where, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, None), f"ro {target}")
    hostname = spec.get("hostname", "").encode()
    if hostname:
        _check(libc.sethostname(hostname, len(hostname)), "sethostname")


def child_setup(spec: dict):
    """preexec_fn: a session of its own, the container's cgroup, and in process mode /proc of the
    new PID namespace and the chroot into the image's rootfs."""
    def setup() -> None:
        os.setsid()
        if spec.get("cgroup_procs"):
            for procs in spec["cgroup_procs"]:
                with open(procs, "w") as handle:
                    handle.write(str(os.getpid()))
        if spec["mode"] == "process":
            libc = _libc()
            proc = os.path.join(spec["rootfs"], "proc").encode()
            _check(libc.mount(b"proc", proc, b"proc", 0, None), "mount /proc")
            os.chroot(spec["rootfs"])
            os.chdir(spec.get("cwd") or "/")
    return setup


def run(directory: Path) -> int:
    spec = json.loads((directory / "spec.json").read_text())
    log = CRILog(Path(spec["log"]))
    try:
        if spec["mode"] == "process":
            enter_namespaces(spec)
        process = subprocess.Popen(spec["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env=spec.get("env"),
                                   cwd=None if spec["mode"] == "process" else (spec.get("cwd") or None),
                                   preexec_fn=child_setup(spec), close_fds=True)
    except (OSError, subprocess.SubprocessError) as err:
        log.feed(b"stderr", f"ketch: cannot start the container: {err}\n".encode())
        log.close()
        write_json(directory / "exit.json", {"exit_code": 128, "finished_at": time.time(), "reason": "StartError",
                                             "message": str(err)})
        return 1
    write_json(directory / "shim.json", {"shim_pid": os.getpid(), "child_pid": process.pid,
                                         "started_at": time.time()})
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ, b"stdout")
    selector.register(process.stderr, selectors.EVENT_READ, b"stderr")
    open_streams = 2
    while open_streams:
        for key, _ in selector.select():
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:
                selector.unregister(key.fileobj)
                open_streams -= 1
            else:
                log.feed(key.data, data)
    code = process.wait()
    log.close()
    write_json(directory / "exit.json", {"exit_code": 128 - code if code < 0 else code, "finished_at": time.time()})
    return 0


def main() -> int:
    directory = Path(sys.argv[1])
    if os.fork():  # the kubelet reaps this parent at once; the shim is then init's (or the subreaper's)
        return 0
    os.setsid()
    if os.fork():
        os._exit(0)
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    try:
        os._exit(run(directory))
    except BaseException as err:  # noqa: BLE001 - the last word goes to the container's directory
        write_json(directory / "exit.json", {"exit_code": 128, "finished_at": time.time(), "reason": "StartError",
                                             "message": f"shim: {err}"})
        os._exit(1)


if __name__ == "__main__":
    sys.exit(main())
