"""Thin adapters for what the pod network does to a host: netlink sockets in a namespace,
namespaces themselves, sysctls and nft. Failures become `PodNetworkError` with the command's words.

A namespace is always opened with flags=0: pyroute2's default (O_CREAT) would quietly create an
empty namespace for a mistyped name, and everything after it would "work" in the wrong place.
pyroute2 has no sysctl call, and /proc/sys/net shows the namespace of the task that opens it, so
sysctls are written by a forked child that has entered the namespace first.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Mapping

from pyroute2 import IPRoute, netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.process import ChildProcess

from netproxy.podnet.errors import PodNetworkError
from netproxy.podnet.layout import NETNS_DIR, netns_path

NETLINK_ERRORS = (NetlinkError, OSError)
NFT_TIMEOUT_S = 30.0


def open_netlink(namespace: str | None) -> IPRoute:
    """A netlink socket in `namespace` (None: this process's own namespace)."""
    if namespace is None:
        return IPRoute()
    try:
        return IPRoute(netns=namespace, flags=0)
    except NETLINK_ERRORS as err:
        raise PodNetworkError(f"cannot open network namespace {namespace!r}: {err}") from None


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


def create_netns(name: str) -> None:
    netns.create(name)


def remove_netns(name: str) -> None:
    """Unmount and unlink the namespace's file; the kernel frees it (with its veth ends) once no
    process is left in it."""
    if netns_exists(name):
        netns.remove(name)


def _write_sysctls_child(namespace: str | None, values: list[tuple[str, str]]) -> bytes:
    if namespace is not None:
        netns.setns(namespace, flags=0, fork=False)
    for path, value in values:
        with open(path, "w") as handle:
            handle.write(value)
    return b""


def sysctl_path(name: str) -> str:
    if not name or ".." in name or "/" in name:
        raise PodNetworkError(f"not a sysctl name: {name!r}")
    return "/proc/sys/" + name.replace(".", "/")


def write_sysctls(namespace: str | None, values: Mapping[str, str]) -> None:
    items = [(sysctl_path(name), str(value)) for name, value in values.items()]
    try:
        if namespace is None:
            _write_sysctls_child(None, items)
            return
        with ChildProcess(target=_write_sysctls_child, args=[namespace, items]) as child:
            child.communicate(timeout=10)
    except (OSError, TimeoutError, RuntimeError) as err:
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
