"""The holder of a pod's shared PID namespace (`shareProcessNamespace: true`), as Kubernetes'
pause container holds it: `python -I -S pidholder.py PIDFILE [CGROUP_PROCS...]` (standard
library only) joins the given cgroups (a leaf of the pod's: cgroup v2 allows no process beside
child cgroups), makes a new PID namespace and forks its PID 1, writes that PID 1's host pid to
PIDFILE and exits; an error goes to stderr with exit status 1. The PID 1 only reaps the orphans
the containers leave (as pause does), ignores every signal it can, and asks the OOM killer to
pass it by. The pod's containers join its namespace, so each sees the others' processes, and
come and go on their own: none of them is PID 1. It lives until the runtime kills it (by pid,
with the pod's cgroup); its end ends every process in the namespace.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWPID = 0x20000000


def reap_forever() -> None:
    os.setsid()
    quiet = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):  # the starter waits for its output to end: hold none of it
        os.dup2(quiet, fd)
    for number in range(1, signal.NSIG):
        if number not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD):
            try:
                signal.signal(number, signal.SIG_IGN)
            except (OSError, ValueError):
                pass  # not a catchable signal here
    try:
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("-998")
    except OSError:
        pass
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})  # a SIGCHLD waits for sigtimedwait
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        signal.sigtimedwait({signal.SIGCHLD}, 60)


def main() -> int:
    pidfile, procs = sys.argv[1], sys.argv[2:]
    try:
        for path in procs:
            with open(path, "w") as handle:
                handle.write(str(os.getpid()))
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(CLONE_NEWPID) != 0:
            raise OSError(ctypes.get_errno(), f"unshare: {os.strerror(ctypes.get_errno())}")
        child = os.fork()
        if child == 0:
            reap_forever()
        with open(pidfile + ".tmp", "w") as handle:
            handle.write(str(child))
        os.rename(pidfile + ".tmp", pidfile)
    except OSError as err:
        print(f"the pod's PID namespace holder: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
