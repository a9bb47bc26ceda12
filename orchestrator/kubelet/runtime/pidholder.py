"""The holder of a pod's shared PID namespace (`shareProcessNamespace: true`), as Kubernetes'
pause container holds it: `python -I -S pidholder.py PIDFILE [CGROUP_PROCS...]` (standard
library only) joins the pod's cgroups, makes a new PID namespace and forks its PID 1, which only
reaps the orphans the containers leave (as pause does); it writes that PID 1's host pid to
PIDFILE. The pod's containers join the namespace, so each sees the others' processes, and come
and go on their own: none of them is PID 1. It lives until the pod's cgroup is killed.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

CLONE_NEWPID = 0x20000000


def reap_forever() -> None:
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
    if os.fork():  # the kubelet reaps this parent at once; the holder is then init's (or the subreaper's)
        return 0
    os.setsid()
    for path in procs:
        with open(path, "w") as handle:
            handle.write(str(os.getpid()))
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWPID) != 0:
        print(f"unshare: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
        return 1
    child = os.fork()
    if child == 0:
        reap_forever()
    with open(pidfile + ".tmp", "w") as handle:
        handle.write(str(child))
    os.rename(pidfile + ".tmp", pidfile)
    os.waitpid(child, 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
