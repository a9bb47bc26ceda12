"""The per-container supervisor (like containerd's shim or conmon): `python -I -S shim.py DIR`
(standard library only, so it starts fast).

It owns the container's stdout and stderr, writes them to the log in the CRI format
(`2026-01-02T03:04:05.123456789Z stdout F text`, `P` for a partial line), waits for the
container, and writes its exit code and finish time to DIR/exit.json. It detaches from the
kubelet first (a double fork and its own session), so a container keeps running, logging and
having its exit recorded while no kubelet runs; a new kubelet reads DIR to adopt it.

It serves `kubectl attach` on the unix socket DIR/attach.sock (the attach protocol below): each
attacher gets the output from then on, not the history (that is `kubectl logs`), may feed stdin
and resize the terminal. A container spec'd with `stdin` gets a pipe the shim holds open (the
workload blocks on it until someone attaches, as Kubernetes' stdin does); with `tty` the workload
gets a pseudo-terminal whose master the shim holds (runc: runc runs in the foreground on it and
relays it to the container's console, as `runc exec -t` does), and its one output stream goes to
the log as stdout. Without stdin, stdin is /dev/null.

DIR/spec.json says what to run:
  {"mode": "runc"|"process"|"local", "argv": [...], "log": PATH, "env": {...}, "cwd": PATH,
   "cgroup": "relative/path" (process, local as root), "netns": PATH (process), "rootfs": PATH,
   "hostname": NAME, "mounts": [[source, target, readonly], ...] (process),
   "stdin": bool, "stdin_once": bool, "tty": bool,
   "pid_ns": PATH|"host"|null, "host_ipc": bool (process: a PID namespace to join, the host's IPC)}
In `process` mode the shim itself enters the pod's network namespace and new mount, UTS, IPC and
PID namespaces, so the workload is PID 1 of its own namespace (unless it joins another PID
namespace, `pid_ns`, or keeps the host's IPC, `host_ipc`) and its exit code is the shim's
direct child's: no `unshare --fork` in between (which reports a killed child as exit 1).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from datetime import datetime, timezone
from pathlib import Path

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x4000000, 0x8000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_BIND, MS_REC, MS_PRIVATE, MS_REMOUNT = 1, 4096, 16384, 1 << 18, 32
MAX_LINE = 16 * 1024  # longer output is cut into partial (P) lines, as the CRI logger does

# --- the attach protocol (pure; the kubelet's side imports it from here) -------------------------
# Frames both ways: one byte naming a channel (Kubernetes' channel numbers where they exist), four
# bytes of payload length (big-endian), the payload. The attacher speaks first: HELLO with a bit
# set per stream it wants; the shim answers HELLO (or ERROR, and closes). Then the attacher sends
# STDIN data, RESIZE (cols, rows as two unsigned shorts) and STDIN_END (its stdin reached EOF); the
# shim sends STDOUT and STDERR data, and closes the connection when the workload's output ends.
STDIN, STDOUT, STDERR, ERROR, RESIZE, HELLO, STDIN_END = 0, 1, 2, 3, 4, 5, 255
WANTS_STDIN, WANTS_STDOUT, WANTS_STDERR = 1, 2, 4
HEADER = struct.Struct("!BI")
SIZE = struct.Struct("!HH")
MAX_FRAME = 64 * 1024
MAX_ATTACHERS = 16
MAX_PENDING = 1 << 20  # per attacher's unsent output, and for stdin not yet read by the workload
ATTACH_SOCKET = "attach.sock"
CLOSE_STDIN, DETACH = "close-stdin", "detach"


class FrameError(ValueError):
    """A frame the protocol does not allow (that connection is closed)."""


def encode(channel: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_FRAME:
        raise FrameError(f"a frame carries at most {MAX_FRAME} bytes, not {len(payload)}")
    return HEADER.pack(channel, len(payload)) + payload


def encode_chunks(channel: int, data: bytes) -> bytes:
    return b"".join(encode(channel, data[i:i + MAX_FRAME]) for i in range(0, len(data), MAX_FRAME))


class FrameReader:
    """Frames out of a byte stream, whatever pieces it arrives in."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER.size:
            channel, length = HEADER.unpack_from(self.buffer)
            if length > MAX_FRAME:
                raise FrameError(f"a frame carries at most {MAX_FRAME} bytes, this one says {length}")
            end = HEADER.size + length
            if len(self.buffer) < end:
                break
            frames.append((channel, self.buffer[HEADER.size:end]))
            self.buffer = self.buffer[end:]
        return frames


def on_stdin_end(stdin_once: bool, tty: bool) -> str:
    """What an attacher's end of stdin (its EOF, or its leaving) does. Kubernetes' stdinOnce: stdin
    "remains open and accepts data until the client disconnects, at which time stdin is closed" --
    the workload reads EOF (`kubectl run -i ... -- cat` ends). Under a terminal, containerd's CRI keeps
    the terminal open and only that attach session ends, and so does an attacher's end of stdin
    without stdinOnce: stdin stays open for the next attacher."""
    return CLOSE_STDIN if stdin_once and not tty else DETACH


def socket_path(dir_fd: int) -> str:
    """The attach socket by way of an open directory: a unix socket's path is limited to 108 bytes,
    a container's directory may be deeper than that."""
    return f"/proc/self/fd/{dir_fd}/{ATTACH_SOCKET}"


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
    volumes bound into the rootfs, and the hostname. The next child is PID 1 of the new PID namespace;
    given `pid_ns` (a path: a debugging container's target, the pod's shared one; or "host") it is a
    process in that one instead, and with `host_ipc` the IPC namespace is the host's."""
    libc = _libc()
    if spec.get("netns"):
        with open(spec["netns"]) as handle:
            _check(libc.setns(handle.fileno(), CLONE_NEWNET), "setns")
    new = CLONE_NEWNS | CLONE_NEWUTS | (0 if spec.get("host_ipc") else CLONE_NEWIPC)
    if spec.get("pid_ns") == "host":
        pass  # hostPID: the host's
    elif spec.get("pid_ns"):
        with open(spec["pid_ns"]) as handle:
            _check(libc.setns(handle.fileno(), CLONE_NEWPID), "setns pid")
    else:
        new |= CLONE_NEWPID
    _check(libc.unshare(new), "unshare")
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
    """preexec_fn: a session of its own (under a tty, with the terminal as its controlling terminal,
    so ^C and a resize's SIGWINCH reach it), the container's cgroup, and in process mode /proc of
    the new PID namespace and the chroot into the image's rootfs."""
    def setup() -> None:
        os.setsid()
        if spec.get("tty"):
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
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


class Workload:
    """The container's process and the shim's ends of its stdio: `outputs` maps a descriptor to its
    log stream; `stdin` is the descriptor to feed (a pipe, or the terminal's master), or None."""

    def __init__(self, spec: dict) -> None:
        options = {"env": spec.get("env"), "cwd": None if spec["mode"] == "process" else (spec.get("cwd") or None),
                   "preexec_fn": child_setup(spec), "close_fds": True}
        self.master = None
        if spec.get("tty"):
            master, slave = os.openpty()
            try:
                self.process = subprocess.Popen(spec["argv"], stdin=slave, stdout=slave, stderr=slave, **options)
            except BaseException:
                os.close(master)
                raise
            finally:
                os.close(slave)
            self.master = self.stdin = master
            self.outputs = {master: b"stdout"}
        else:
            reader, self.stdin = os.pipe() if spec.get("stdin") else (subprocess.DEVNULL, None)
            try:
                self.process = subprocess.Popen(spec["argv"], stdin=reader, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE, **options)
            except BaseException:
                if self.stdin is not None:
                    os.close(self.stdin)
                raise
            finally:
                if self.stdin is not None:
                    os.close(reader)
            self.outputs = {self.process.stdout.fileno(): b"stdout", self.process.stderr.fileno(): b"stderr"}
        if self.stdin is not None:
            os.set_blocking(self.stdin, False)

    def close(self) -> None:
        for fd in {self.stdin, self.master} - {None}:
            try:
                os.close(fd)
            except OSError:
                pass
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def listen(directory: Path) -> socket.socket:
    dir_fd = os.open(directory, os.O_PATH)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    previous = os.umask(0o177)  # the socket is the kubelet's (root's) alone
    try:
        listener.bind(socket_path(dir_fd))
    finally:
        os.umask(previous)
        os.close(dir_fd)
    listener.listen(MAX_ATTACHERS)
    listener.setblocking(False)
    return listener


class Attacher:
    def __init__(self, conn: socket.socket) -> None:
        self.conn, self.reader, self.wants, self.out, self.leaving = conn, FrameReader(), 0, bytearray(), False


class Relay:
    """The shim's one loop until the workload's output ends: output to the log and to every
    attacher that wants it, attachers' stdin to the workload, resizes to its terminal. Several
    attachers may watch and feed stdin at once, as containerd's CRI allows. Bounded: at most
    MAX_ATTACHERS; an attacher more than MAX_PENDING behind is dropped; stdin beyond MAX_PENDING
    unread by the workload stops the shim reading from attachers until it drains."""

    def __init__(self, spec: dict, log: CRILog, workload: Workload, listener: socket.socket) -> None:
        self.log, self.workload, self.listener = log, workload, listener
        self.outputs = dict(workload.outputs)
        self.stdin_once, self.tty = bool(spec.get("stdin_once")), bool(spec.get("tty"))
        self.has_stdin = bool(spec.get("stdin")) and workload.stdin is not None
        self.stdin_pending, self.stdin_closing = bytearray(), False
        self.attachers: dict[socket.socket, Attacher] = {}

    def run(self) -> None:
        while self.outputs:
            readers: list = [*self.outputs, self.listener]
            if len(self.stdin_pending) < MAX_PENDING:
                readers += list(self.attachers)
            writers: list = [conn for conn, a in self.attachers.items() if a.out]
            if self.stdin_pending and self.workload.stdin is not None:
                writers.append(self.workload.stdin)
            readable, writable, _ = select.select(readers, writers, [])
            for ready in readable:
                if ready is self.listener:
                    self.accept()
                elif isinstance(ready, socket.socket):
                    if ready in self.attachers:
                        self.receive(self.attachers[ready])
                elif ready in self.outputs:
                    self.pump(ready)
            for ready in writable:
                if isinstance(ready, socket.socket):
                    if ready in self.attachers:
                        self.send(self.attachers[ready])
                elif ready == self.workload.stdin:
                    self.feed()
        self.finish()

    # --- the workload's side ----------------------------------------------------------------------

    def pump(self, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError as err:
            if err.errno != errno.EIO:
                raise
            data = b""  # a terminal's EIO once the workload and its children closed it is its EOF
        if not data:
            del self.outputs[fd]
            return
        stream = self.outputs[fd]
        self.log.feed(stream, data)
        channel, want = (STDOUT, WANTS_STDOUT) if stream == b"stdout" else (STDERR, WANTS_STDERR)
        frames = encode_chunks(channel, data)
        for a in list(self.attachers.values()):
            if a.wants & want and not a.leaving:
                a.out += frames
                if len(a.out) > MAX_PENDING:
                    self.leave(a)  # too far behind: drop it rather than hold the container's output

    def feed(self) -> None:
        try:
            written = os.write(self.workload.stdin, self.stdin_pending[:65536])
            del self.stdin_pending[:written]
        except BlockingIOError:
            return
        except OSError:  # the workload closed its stdin (EPIPE) or its terminal is gone (EIO)
            self.stdin_pending.clear()
        if self.stdin_closing and not self.stdin_pending:
            self.close_stdin_now()

    def close_stdin(self) -> None:
        self.stdin_closing = True
        if not self.stdin_pending:
            self.close_stdin_now()

    def close_stdin_now(self) -> None:
        stdin = self.workload.stdin
        if stdin is not None and stdin != self.workload.master:
            os.close(stdin)
            self.workload.stdin = None
        self.stdin_pending.clear()

    def resize(self, cols: int, rows: int) -> None:
        if self.workload.master is not None:
            fcntl.ioctl(self.workload.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    # --- the attachers' side ----------------------------------------------------------------------

    def accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        conn.setblocking(False)
        if len(self.attachers) >= MAX_ATTACHERS:
            try:
                conn.send(encode(ERROR, f"the container has {MAX_ATTACHERS} attach sessions already".encode()))
            except OSError:
                pass
            conn.close()
            return
        self.attachers[conn] = Attacher(conn)

    def receive(self, a: Attacher) -> None:
        try:
            data = a.conn.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        try:
            frames = a.reader.feed(data) if data else None
        except FrameError:
            frames = None
        if frames is None:
            return self.leave(a)
        for channel, payload in frames:
            if a.conn not in self.attachers:
                return
            if channel == HELLO and len(payload) == 1:
                a.wants = payload[0]
                a.out += encode(HELLO)  # the answer: attached; output follows from here on
            elif channel == STDIN:
                if a.wants & WANTS_STDIN and self.has_stdin and not self.stdin_closing:
                    self.stdin_pending += payload
            elif channel == RESIZE and len(payload) == SIZE.size:
                self.resize(*SIZE.unpack(payload))
            elif channel == STDIN_END:
                self.stdin_ended(a)
            else:
                return self.leave(a)

    def stdin_ended(self, a: Attacher) -> None:
        if a.wants & WANTS_STDIN and self.has_stdin and on_stdin_end(self.stdin_once, self.tty) == CLOSE_STDIN:
            a.wants &= ~WANTS_STDIN
            self.close_stdin()
        else:
            a.wants &= ~WANTS_STDIN
            a.leaving = True  # the session ends once what it was sent is out
            if not a.out:
                self.leave(a)

    def send(self, a: Attacher) -> None:
        try:
            sent = a.conn.send(a.out)
            del a.out[:sent]
        except BlockingIOError:
            return
        except OSError:
            return self.leave(a)
        if a.leaving and not a.out:
            self.leave(a)

    def leave(self, a: Attacher) -> None:
        if a.wants & WANTS_STDIN and self.has_stdin and on_stdin_end(self.stdin_once, self.tty) == CLOSE_STDIN:
            self.close_stdin()
        self.attachers.pop(a.conn, None)
        a.conn.close()

    def finish(self, flush_s: float = 2.0) -> None:
        """The output has ended: what attachers were sent goes out (within flush_s), then they are
        closed, which ends their sessions; nobody can attach any more."""
        self.listener.close()
        deadline = time.monotonic() + flush_s
        for a in list(self.attachers.values()):
            try:
                a.conn.settimeout(max(0.01, deadline - time.monotonic()))
                a.conn.sendall(a.out)
            except OSError:
                pass
            a.conn.close()
        self.attachers.clear()


def run(directory: Path) -> int:
    spec = json.loads((directory / "spec.json").read_text())
    log = CRILog(Path(spec["log"]))
    try:
        listener = listen(directory)
        if spec["mode"] == "process":
            enter_namespaces(spec)
        workload = Workload(spec)
    except (OSError, subprocess.SubprocessError) as err:
        log.feed(b"stderr", f"ketch: cannot start the container: {err}\n".encode())
        log.close()
        write_json(directory / "exit.json", {"exit_code": 128, "finished_at": time.time(), "reason": "StartError",
                                             "message": str(err)})
        return 1
    write_json(directory / "shim.json", {"shim_pid": os.getpid(), "child_pid": workload.process.pid,
                                         "started_at": time.time()})
    try:
        Relay(spec, log, workload, listener).run()
    finally:
        try:
            os.unlink(directory / ATTACH_SOCKET)
        except OSError:
            pass
    workload.close()
    code = workload.process.wait()
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
    # an attacher or the workload's stdin may go away mid-write: that is an error to handle, not a death
    # (the workload gets the default disposition back: Popen restores SIGPIPE in the child)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
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
