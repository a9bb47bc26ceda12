"""`ketch apiserver --workers N`: N API server processes on one port.

Each worker is a whole API server (`ketch apiserver ... --workers 1 --reuse-port`) with its own
kv connection and watch cache; the port is bound with SO_REUSEPORT by every worker, so the kernel
spreads new connections over them. Nothing is shared in memory: every semantic a client sees
(resourceVersions, watches from any resourceVersion, 410, 504 for a resourceVersion a worker's
cache has not reached yet) comes from the kv store, as it does across separate API servers.

This process only supervises: it forwards SIGTERM/SIGINT to the workers and waits for them;
a worker that dies is started again after a pause, and a worker that keeps dying at once (a port
taken, a bad flag) ends the whole group with status 1. Workers get SIGTERM if the supervisor
itself is killed (PR_SET_PDEATHSIG), so no worker outlives it.
"""

from __future__ import annotations

import ctypes
import logging
import signal
import subprocess
import sys
import time

log = logging.getLogger("ketch.apiserver.workers")

RESTART_PAUSE_S = 1.0
QUICK_DEATH_S = 5.0  # a worker that dies this soon after starting counts towards giving up
QUICK_DEATHS_TO_GIVE_UP = 5
STOP_TIMEOUT_S = 10.0
PR_SET_PDEATHSIG = 1


def worker_argv(argv: list[str]) -> list[str]:
    """The command line of one worker: the same flags, one worker, the port shared."""
    return [sys.executable, "-m", "orchestrator.cli", "apiserver", *argv, "--workers", "1", "--reuse-port"]


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def supervise(argv: list[str], count: int) -> int:
    command = worker_argv(argv)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def start(index: int) -> tuple[subprocess.Popen, float]:
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.info("event=worker_started worker=%d pid=%d", index, process.pid)
        return process, time.monotonic()

    workers = [start(i) for i in range(count)]
    quick_deaths = 0
    status = 0
    while not stopping:
        time.sleep(0.2)
        for index, (process, started) in enumerate(workers):
            code = process.poll()
            if code is None or stopping:
                continue
            quick_deaths = quick_deaths + 1 if time.monotonic() - started < QUICK_DEATH_S else 0
            log.warning("event=worker_exited worker=%d pid=%d status=%d", index, process.pid, code)
            if quick_deaths >= QUICK_DEATHS_TO_GIVE_UP:
                log.error("event=giving_up detail=%r", f"workers died within {QUICK_DEATH_S:.0f} s of starting "
                          f"{quick_deaths} times in a row; see their errors above")
                stopping, status = True, 1
                break
            time.sleep(RESTART_PAUSE_S)
            workers[index] = start(index)
    for process, _ in workers:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process, _ in workers:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return status
