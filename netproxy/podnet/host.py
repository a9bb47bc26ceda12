"""Thin adapters for what the pod network does to a host: netlink sockets in a namespace,
namespaces themselves, sysctls and nft. Failures become `PodNetworkError` with the command's words.

Nothing here forks a Python child: pyroute2 opens a namespace's netlink socket (and writes
sysctls) through a forked child process, and a fork of a process with threads (the kubelet's,
trio's worker threads) can inherit a lock held by another thread and hang for good; a kubelet
was found with a pod worker stuck in pyroute2's ChildProcess.stop. Instead the calling thread
enters the namespace with setns(2), which moves only that thread, opens the socket or the
/proc/sys file there (both belong to the namespace they were opened in), and goes back.
Namespaces are made and removed by `ip netns` (fork and exec at once is safe). A mistyped name is
an error, never a new empty namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import subprocess
from collections.abc import Mapping

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netproxy.podnet.errors import PodNetworkError
from netproxy.podnet.layout import NETNS_DIR, netns_path

NETLINK_ERRORS = (NetlinkError, OSError)
NFT_TIMEOUT_S = 30.0


CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, what: str) -> None:
    if _LIBC.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise PodNetworkError(f"cannot enter network namespace {what}: {os.strerror(code)}")


@contextlib.contextmanager
def entered(namespace: str):
    """This thread inside the named namespace for the block, and back in its own after it."""
    try:
        target = os.open(netns_path(namespace), os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise PodNetworkError(f"cannot open network namespace {namespace!r}: {err.strerror}") from None
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(target, repr(namespace))
        try:
            yield
        finally:
            _setns(own, "of this thread (going back)")
    finally:
        os.close(target)
        os.close(own)


def open_netlink(namespace: str | None) -> IPRoute:
    """A netlink socket in `namespace` (None: this thread's own namespace)."""
    try:
        if namespace is None:
            return IPRoute()
        with entered(namespace):
            return IPRoute()
    except NETLINK_ERRORS as err:
        raise PodNetworkError(f"cannot open a netlink socket in {namespace or 'this namespace'}: {err}") from None


def delete_link(ipr: IPRoute, index: int) -> None:
    """Delete a link; one that is already gone is fine (removing a namespace takes its veth ends
    with it a moment later, in the kernel's own time)."""
    try:
        ipr.link("del", index=index)
    except NetlinkError as err:
        if err.code != errno.ENODEV:
            raise


def netns_exists(name: str) -> bool:
    return os.path.exists(netns_path(name))


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def _ip(*argv: str) -> None:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    ip = shutil.which("ip", path=path)
    if ip is None:
        raise PodNetworkError("ip is needed for pod namespaces: apt-get install iproute2")
    try:
        result = subprocess.run([ip, *argv], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PodNetworkError(f"ip {' '.join(argv)} failed to run: {err}") from None
    if result.returncode != 0:
        raise PodNetworkError(f"ip {' '.join(argv)} failed: {result.stderr.strip()}")


def create_netns(name: str) -> None:
    _ip("netns", "add", name)


def remove_netns(name: str) -> None:
    """Unmount and unlink the namespace's file; the kernel frees it (with its veth ends) once no
    process is left in it."""
    if netns_exists(name):
        _ip("netns", "delete", name)


def _write_sysctls_here(values: list[tuple[str, str]]) -> None:
    for path, value in values:
        with open(path, "w") as handle:
            handle.write(value)


def sysctl_path(name: str) -> str:
    if not name or ".." in name or "/" in name:
        raise PodNetworkError(f"not a sysctl name: {name!r}")
    return "/proc/sys/" + name.replace(".", "/")


def write_sysctls(namespace: str | None, values: Mapping[str, str]) -> None:
    items = [(sysctl_path(name), str(value)) for name, value in values.items()]
    try:
        if namespace is None:
            _write_sysctls_here(items)
            return
        with entered(namespace):  # /proc/sys/net shows the namespace of the thread that opens it
            _write_sysctls_here(items)
    except OSError as err:
        raise PodNetworkError(f"cannot set sysctls {dict(values)} in {namespace or 'this namespace'}: {err}") from None


def run_nft(namespace: str | None, ruleset: str) -> None:
    """`nft -f -` (inside `namespace` through `ip netns exec`): one atomic transaction."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"  # where Debian keeps nft and ip
    nft, ip = shutil.which("nft", path=path), shutil.which("ip", path=path)
    if nft is None or (namespace is not None and ip is None):
        raise PodNetworkError("nft (and ip) are needed for the pod network's masquerade rule: apt-get install nftables")
    argv = ([ip, "netns", "exec", namespace] if namespace is not None else []) + [nft, "-f", "-"]
    try:
        result = subprocess.run(argv, input=ruleset, capture_output=True, text=True, timeout=NFT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise PodNetworkError(f"nft -f - failed to run: {err}") from None
    if result.returncode != 0:
        raise PodNetworkError(f"nft -f - in {namespace or 'this namespace'} failed: {result.stderr.strip()}")
