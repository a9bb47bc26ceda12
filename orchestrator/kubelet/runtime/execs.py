"""Processes started inside a running container for `kubectl exec` (contract A's ExecProcess):
file descriptors for stdin, stdout and stderr, or one pseudo-terminal master when tty is asked,
`resize(cols, rows)` and `wait() -> exit code`. The caller owns the descriptors and closes them."""

from __future__ import annotations

import array
import fcntl
import os
import socket
import struct
import subprocess
import tempfile
import termios
from pathlib import Path


class Exec:
    def __init__(self, process: subprocess.Popen, stdin: int | None, stdout: int | None, stderr: int | None,
                 master: int | None = None) -> None:
        self.process, self.stdin, self.stdout, self.stderr, self.master = process, stdin, stdout, stderr, master

    def resize(self, cols: int, rows: int) -> None:
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def wait(self) -> int:
        code = self.process.wait()
        return 128 - code if code < 0 else code


def with_pipes(argv: list[str], *, stdin: bool, env: dict | None = None, cwd: str | None = None) -> Exec:
    process = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, cwd=cwd, start_new_session=True)
    fds = [os.dup(p.fileno()) if p is not None else None for p in (process.stdin, process.stdout, process.stderr)]
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    return Exec(process, *fds)


def with_pty(argv: list[str], *, env: dict | None = None, cwd: str | None = None) -> Exec:
    """A pseudo-terminal the process has as its controlling terminal (job control works)."""
    master, slave = os.openpty()

    def controlling() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                               preexec_fn=controlling, close_fds=True)
    os.close(slave)
    return Exec(process, master, os.dup(master), None, master)


def with_console_socket(argv_before: list[str], argv_after: list[str]) -> Exec:
    """runc's way: `runc exec -t --console-socket PATH` sends the pty master it made inside the
    container over a unix socket (SCM_RIGHTS)."""
    directory = tempfile.mkdtemp(prefix="ketch-console-")
    path = str(Path(directory) / "console.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(10)
    process = subprocess.Popen(argv_before + ["--console-socket", path] + argv_after, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        connection, _ = listener.accept()
        with connection:
            fds = array.array("i")
            _, ancillary, _, _ = connection.recvmsg(1024, socket.CMSG_LEN(fds.itemsize))
            for level, kind, data in ancillary:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[:fds.itemsize])
        if not fds:
            raise OSError("runc sent no terminal")
    except OSError:
        process.kill()
        error = process.stderr.read().decode(errors="replace") if process.stderr else ""
        process.wait()
        raise OSError(f"runc exec with a terminal failed: {error.strip()}") from None
    finally:
        listener.close()
        os.unlink(path)
        os.rmdir(directory)
    master = fds[0]
    return Exec(process, master, os.dup(master), None, master)
