"""Processes started inside a running container for `kubectl exec` (contract A's ExecProcess):
file descriptors for stdin, stdout and stderr, or one pseudo-terminal master when tty is asked,
`resize(cols, rows)` and `wait() -> exit code`. The caller owns the descriptors and closes them."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import termios


def set_size(terminal: int, cols: int, rows: int) -> None:
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class Exec:
    def __init__(self, process: subprocess.Popen, stdin: int | None, stdout: int | None, stderr: int | None,
                 master: int | None = None) -> None:
        self.process, self.stdin, self.stdout, self.stderr, self.master = process, stdin, stdout, stderr, master

    def resize(self, cols: int, rows: int) -> None:
        if self.master is not None:
            set_size(self.master, cols, rows)

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


def with_pty(argv: list[str], *, env: dict | None = None, cwd: str | None = None,
             size: tuple[int, int] | None = None) -> Exec:
    """A pseudo-terminal the process has as its controlling terminal (job control works), of
    `size` (cols, rows) from its start when given: a program that reads the size at once (`stty
    size`, an editor; runc, which copies it to the terminal it makes in the container) sees it."""
    master, slave = os.openpty()
    if size:
        set_size(master, *size)

    def controlling() -> None:
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, cwd=cwd,
                               preexec_fn=controlling, close_fds=True)
    os.close(slave)
    return Exec(process, master, os.dup(master), None, master)
