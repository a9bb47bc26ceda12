"""`ketch kubelet --cleanup`: remove everything a node's kubelet made (adapter), for `ketch down`
and tests: containers (killed first), sandboxes, the pod network (bridge, routes, masquerade
table, every pod namespace) and pod volumes (tmpfs unmounted first). hostPath volumes are the
host's and stay."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import time
from pathlib import Path

from orchestrator.kubelet import volume_disk
from orchestrator.kubelet.model import RUNNING

log = logging.getLogger("ketch.kubelet.cleanup")
KILL_WAIT_S = 10.0


def clean_node(runtime, node_name: str, root_dir: Path) -> None:
    for container in runtime.list_containers():
        if container.state != RUNNING:
            continue
        runtime.signal(container.id, signal.SIGKILL)
    deadline = time.monotonic() + KILL_WAIT_S
    while any(c.state == RUNNING for c in runtime.list_containers()) and time.monotonic() < deadline:
        time.sleep(0.1)
    for container in runtime.list_containers():
        runtime.remove_container(container.id)
    for uid in runtime.list_sandboxes():
        runtime.remove_sandbox(uid)
    root = os.geteuid() == 0
    if root and runtime.name != "local":
        from netproxy.podnet import PodNetwork
        state_dir = root_dir / "network"
        if state_dir.exists():
            PodNetwork.from_state_dir(node_name, state_dir).cleanup_node()
    pods = root_dir / "pods"
    if pods.exists():
        for pod_dir in pods.iterdir():
            volume_disk.tear_down(pod_dir, can_mount=root)
        shutil.rmtree(pods)
    remove_state = getattr(runtime, "remove_node_state", None)
    if remove_state is not None:
        remove_state()
    log.info("event=node_cleaned node=%s root_dir=%s", node_name, root_dir)
