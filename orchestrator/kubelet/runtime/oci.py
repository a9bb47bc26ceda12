"""The OCI runtime spec (config.json) of one container, for runc (pure).

terminal false unless the container asks for a tty (runc then makes the container a console and,
running in the foreground, relays it to its own terminal: the shim's pseudo-terminal), the image's rootfs
(an overlay the runtime mounted), argv, env, cwd, hostname, the pod's network namespace by path,
new PID/IPC/UTS/mount namespaces (the PID namespace joined by path or the host's where the pod
shares it, the host's IPC namespace for hostIPC), the sandbox's /etc/resolv.conf and /etc/hosts, the volumes as
bind mounts, the host image's /usr and /etc read-only, and the cgroup path below the container's
own cgroup (the runtime sets the limits there; see cgroups.py). Capabilities are Docker's default
set, as containerd gives a container that asks for nothing.
"""

from __future__ import annotations

from orchestrator.kubelet.runtime.base import HOST_NAMESPACE

DEFAULT_CAPABILITIES = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]


def _bind(source: str, destination: str, readonly: bool) -> dict:
    return {"destination": destination, "type": "bind", "source": source,
            "options": ["rbind", "rprivate"] + (["ro"] if readonly else ["rw"])}


def config(*, rootfs: str, argv: list[str], env: list[str], cwd: str, hostname: str, netns: str | None,
           cgroups_path: str, mounts: list[tuple[str, str, bool]], host_image: bool = False,
           terminal: bool = False, pid_ns: str | None = None, host_ipc: bool = False) -> dict:
    mount_list = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755",
                                                                              "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
    ]
    # hostIPC: the host's POSIX shared memory too, not a /dev/shm of the container's own
    mount_list.append(_bind("/dev/shm", "/dev/shm", False) if host_ipc else
                      {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                       "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]})
    if host_image:
        mount_list += [_bind("/usr", "/usr", True), _bind("/etc", "/etc", True)]
    mount_list += [_bind(source, target, readonly) for source, target, readonly in mounts]
    namespaces = [] if pid_ns == HOST_NAMESPACE else [{"type": "pid", **({"path": pid_ns} if pid_ns else {})}]
    namespaces += [{"type": kind} for kind in ("uts", "mount") + (() if host_ipc else ("ipc",))]
    if netns:  # no path: the host's network (hostNetwork pods)
        namespaces.append({"type": "network", "path": netns})
    capabilities = {kind: list(DEFAULT_CAPABILITIES) for kind in ("bounding", "effective", "permitted")}
    return {
        "ociVersion": "1.0.2",
        "process": {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": argv, "env": env, "cwd": cwd or "/",
                    "capabilities": capabilities, "noNewPrivileges": False,
                    },
        "root": {"path": rootfs, "readonly": False},
        "hostname": hostname,
        "mounts": mount_list,
        "linux": {"namespaces": namespaces, "cgroupsPath": cgroups_path,
                  "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                  "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]},
    }
