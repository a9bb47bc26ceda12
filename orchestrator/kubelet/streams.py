"""The seam between the kubelet and contract D's streaming app (exec, attach, port-forward): the
app asks this object for what to stream to; it finds the pod and container on this node.

    PodStreams(kubelet).exec(namespace, pod, container, argv, stdin=..., tty=...) -> ExecProcess
    PodStreams(kubelet).connect(namespace, pod, port) -> trio stream to the pod's port
    PodStreams(kubelet).attach(...)  -> StreamTargetError 501 until the runtime can attach

Errors are StreamTargetError(code, reason, message), for the app to answer as a Status.
"""

from __future__ import annotations

import trio

from orchestrator.kubelet.model import RUNNING


class StreamTargetError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        self.code, self.reason = code, reason
        super().__init__(message)


class PodStreams:
    def __init__(self, kubelet) -> None:
        self.k = kubelet

    def _pod(self, namespace: str, name: str) -> dict:
        pod = self.k.pods.get(f"{namespace}/{name}")
        if pod is None:
            raise StreamTargetError(404, "NotFound", f'pods "{name}" not found')
        return pod

    def running_container(self, namespace: str, name: str, container: str):
        pod = self._pod(namespace, name)
        for candidate in self.k.cache.of(pod["metadata"]["uid"]):
            if candidate.name == container and candidate.state == RUNNING:
                return candidate
        raise StreamTargetError(400, "BadRequest", f'container {container} is not running in pod {name}: cannot '
                                "stream to it")

    async def exec(self, namespace: str, name: str, container: str, argv: list[str], *, stdin: bool, tty: bool):
        target = self.running_container(namespace, name, container)
        return await trio.to_thread.run_sync(lambda: self.k.runtime.exec(target.id, argv, stdin=stdin, tty=tty))

    async def attach(self, namespace: str, name: str, container: str, *, stdin: bool, tty: bool):
        self.running_container(namespace, name, container)
        raise StreamTargetError(501, "NotImplemented", "attach is not supported by this runtime yet")

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
