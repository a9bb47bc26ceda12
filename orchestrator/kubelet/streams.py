"""The seam between the kubelet and contract D's streaming app (exec, attach, port-forward): the
app asks this object for what to stream to; it finds the pod and container on this node.

    PodStreams(kubelet).exec(namespace, pod, container, argv, stdin=..., tty=...) -> ExecProcess
    PodStreams(kubelet).connect(namespace, pod, port) -> trio stream to the pod's port
    PodStreams(kubelet).attach(namespace, pod, container, stdin=..., stdout=..., stderr=...)
        -> ShimAttachment to the running container's own stdio

Errors are StreamTargetError(code, reason, message), for the app to answer as a Status.
"""

from __future__ import annotations

import trio

from orchestrator.kubelet.model import RUNNING
from orchestrator.kubelet.runtime.attach import ShimAttachment
from orchestrator.kubelet.runtime.base import RuntimeFailure
from orchestrator.streaming import channels


class StreamTargetError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code, self.reason = code, reason
        super().__init__(message)


def _not_running(namespace: str, name: str, container: str, attaching: bool) -> StreamTargetError:
    if attaching:
        return StreamTargetError(500, "InternalError", channels.not_found_in_pod(container, name, namespace))
    return StreamTargetError(400, "BadRequest", f"container {container} is not running in pod {name}: cannot stream "
                             "to it")


class PodStreams:
    def __init__(self, kubelet) -> None:
        self.k = kubelet

    def _pod(self, namespace: str, name: str) -> dict:
        pod = self.k.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise StreamTargetError(404, "NotFound", f'pods "{name}" not found')
        return pod

    def running_container(self, namespace: str, name: str, container: str, *, attaching: bool = False):
        """Kubernetes' kubelet answers an attach to a container that is not running with "container
        C not found in pod NAME_NAMESPACE" (it looks among running containers only)."""
        pod = self._pod(namespace, name)
        for candidate in self.k.cache.of(pod["metadata"]["uid"]):
            if candidate.name == container and candidate.state == RUNNING:
                return candidate
        raise _not_running(namespace, name, container, attaching)

    async def confirm_running(self, namespace: str, name: str, container: str, *, attaching: bool = False) -> None:
        """running_container, confirmed by the runtime (the cache may not have seen the container
        end yet): how a plain request, which starts nothing, learns why it could not stream."""
        target = self.running_container(namespace, name, container, attaching=attaching)
        try:
            await trio.to_thread.run_sync(self.k.runtime.attach_point, target.id)
        except RuntimeFailure:
            raise _not_running(namespace, name, container, attaching) from None

    async def exec(self, namespace: str, name: str, container: str, argv: list[str], *, stdin: bool, tty: bool,
                   terminal_size=None):
        """`terminal_size`, for a tty: awaited once the container is known to be running and before
        the process starts, it gives the client's terminal size (or None)."""
        target = self.running_container(namespace, name, container)
        size = await terminal_size() if tty and terminal_size else None
        return await trio.to_thread.run_sync(
            lambda: self.k.runtime.exec(target.id, argv, stdin=stdin, tty=tty, size=size))

    async def attach(self, namespace: str, name: str, container: str, *, stdin: bool, stdout: bool,
                     stderr: bool) -> ShimAttachment:
        target = self.running_container(namespace, name, container, attaching=True)
        try:
            point = await trio.to_thread.run_sync(self.k.runtime.attach_point, target.id)
            return await ShimAttachment.open(point, stdin=stdin, stdout=stdout, stderr=stderr)
        except RuntimeFailure as err:
            raise StreamTargetError(500, "InternalError", str(err)) from None

    async def connect(self, namespace: str, name: str, port: int) -> trio.abc.Stream:
        pod = self._pod(namespace, name)
        record = self.k.records.get(pod["metadata"]["uid"])
        if record is None or record.net is None:
            raise StreamTargetError(400, "BadRequest", f"pod {name} has no network yet")
        try:
            return await trio.open_tcp_stream(record.net.ip, port)
        except OSError as err:
            raise StreamTargetError(500, "InternalError", f"error forwarding port {port} to pod {name}: "
                                    f"{err.strerror or err}") from None
