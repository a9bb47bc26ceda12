"""Probe and lifecycle-hook executors, and the probe workers (adapter; the rules are probes.py).

Executors, as the kubelet's prober runs them:
- exec: the command inside the container through the runtime; exit 0 is success, anything
  else a failure whose output is the message; past timeoutSeconds it fails ("command timed out").
- httpGet: an HTTP/1.1 request from the node to the pod IP (or `host`), `User-Agent:
  kube-probe/1.32`, the probe's headers; a status of 200-399 is success. HTTPS is not verified.
- tcpSocket: a TCP connection that opens is success.
One worker task per (container, probe kind) runs while the container runs: it sleeps until the
probe is due, runs it, feeds the result to the state machine, records an Unhealthy event for a
failure and pokes the pod's sync when the result changes.
"""

from __future__ import annotations

import logging
import os
import select
import ssl
import time
from dataclasses import dataclass, field, replace
from typing import Callable

import h11
import trio

from orchestrator.client.transport import Connection, ConnectionClosed
from orchestrator.kubelet import probes
from orchestrator.kubelet.probes import ProbeSpec, ProbeState

log = logging.getLogger("ketch.kubelet.probes")
USER_AGENT = "kube-probe/1.32"
OUTPUT_LIMIT = 10 * 1024


# --- executors -------------------------------------------------------------------------------------

def _exec_blocking(runtime, container_id: str, argv: list[str], timeout_s: float) -> tuple[int | None, str]:
    process = runtime.exec(container_id, argv, stdin=False, tty=False)
    output = bytearray()
    fds = [fd for fd in (getattr(process, "stdout", None), getattr(process, "stderr", None)) if fd is not None]
    deadline = time.monotonic() + timeout_s
    try:
        while fds:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "command timed out"
            ready, _, _ = select.select(fds, [], [], left)
            for fd in ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    fds.remove(fd)
                elif len(output) < OUTPUT_LIMIT:
                    output += chunk[:OUTPUT_LIMIT - len(output)]
        return process.wait(), output.decode(errors="replace")
    finally:
        for fd in (getattr(process, "stdout", None), getattr(process, "stderr", None)):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


async def run_exec(runtime, container_id: str, argv: list[str], timeout_s: float) -> tuple[bool, str]:
    try:
        code, output = await trio.to_thread.run_sync(_exec_blocking, runtime, container_id, argv, timeout_s,
                                                     abandon_on_cancel=True)
    except Exception as err:  # noqa: BLE001 - any runtime failure is a failed probe, with its message
        return False, f"exec failed: {err}"
    if code is None:
        return False, output
    return code == 0, output.strip() if code != 0 else output


async def run_http(action: dict, container: dict, pod_ip: str, timeout_s: float) -> tuple[bool, str]:
    port = probes.resolve_port(action.get("port"), container)
    host = action.get("host") or pod_ip
    path = action.get("path") or "/"
    scheme = (action.get("scheme") or "HTTP").upper()
    context = None
    if scheme == "HTTPS":
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    headers = [("User-Agent", USER_AGENT), ("Accept", "*/*"), ("Connection", "close")]
    headers += [(h.get("name", ""), h.get("value", "")) for h in action.get("httpHeaders") or [] if h.get("name")]
    url = f"{scheme.lower()}://{host}:{port}{path}"
    connection = Connection(host, port, context)
    try:
        with trio.fail_after(timeout_s):
            await connection.open()
            code, _, _ = await connection.request("GET", path, headers)
    except trio.TooSlowError:
        return False, f'Get "{url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)'
    except (OSError, ConnectionClosed, h11.ProtocolError) as err:
        return False, f'Get "{url}": {err}'
    finally:
        await connection.aclose()
    if 200 <= code < 400:
        return True, ""
    return False, f"HTTP probe failed with statuscode: {code}"


async def run_tcp(action: dict, container: dict, pod_ip: str, timeout_s: float) -> tuple[bool, str]:
    port = probes.resolve_port(action.get("port"), container)
    host = action.get("host") or pod_ip
    try:
        with trio.fail_after(timeout_s):
            stream = await trio.open_tcp_stream(host, port)
        await stream.aclose()
        return True, ""
    except trio.TooSlowError:
        return False, f"dial tcp {host}:{port}: i/o timeout"
    except OSError as err:
        return False, f"dial tcp {host}:{port}: connect: {err.strerror or err}"


async def run_handler(handler: dict, container: dict, container_id: str, pod_ip: str, runtime,
                      timeout_s: float) -> tuple[bool, str]:
    """A probe's or a lifecycle hook's action (exec, httpGet, tcpSocket, sleep)."""
    try:
        if handler.get("exec") is not None:
            return await run_exec(runtime, container_id, list(handler["exec"].get("command") or []), timeout_s)
        if handler.get("httpGet") is not None:
            return await run_http(handler["httpGet"], container, pod_ip, timeout_s)
        if handler.get("tcpSocket") is not None:
            return await run_tcp(handler["tcpSocket"], container, pod_ip, timeout_s)
        if handler.get("sleep") is not None:
            await trio.sleep(min(float(handler["sleep"].get("seconds") or 0), timeout_s))
            return True, ""
    except probes.ProbeSpecError as err:
        return False, str(err)
    return False, "no handler: one of exec, httpGet, tcpSocket, sleep is required"


# --- workers -----------------------------------------------------------------------------------------

@dataclass
class ProbeWorkers:
    """Runs the probes of the running containers of every pod. `results` is read by the sync
    (container id -> kind -> result); on_change(pod uid) asks for a sync."""
    runtime: object
    on_change: Callable[[str], None]
    on_failure: Callable[[dict, str, str], None]  # (pod, container name, event message)
    results: dict[str, dict[str, str]] = field(default_factory=dict)
    states: dict[tuple[str, str], ProbeState] = field(default_factory=dict)
    scopes: dict[tuple[str, str], trio.CancelScope] = field(default_factory=dict)
    owner: dict[str, str] = field(default_factory=dict)  # container id -> pod uid
    nursery: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self.nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def sync_pod(self, pod: dict, running: list, pod_ip: str, ready_before: dict[str, bool]) -> None:
        """Start workers for the running containers' probes; stop those of containers gone.
        ready_before: container id -> ready as last reported (kept over a kubelet restart)."""
        uid = pod["metadata"]["uid"]
        specs = {c.get("name"): c for c in (pod.get("spec") or {}).get("containers") or []}
        wanted = set()
        for container in running:
            spec = specs.get(container.name)
            if spec is None:
                continue
            try:
                kinds = probes.container_probes(spec)
            except probes.ProbeSpecError:
                continue  # refused when the container was created; nothing to run
            for kind, probe in kinds.items():
                key = (container.id, kind)
                wanted.add(key)
                if key not in self.scopes and self.nursery is not None:
                    state = probes.initial_state(kind)
                    if kind in ("readiness", "startup") and ready_before.get(container.id):
                        state = ProbeState(probes.SUCCESS)
                    self.states[key] = state
                    self.results.setdefault(container.id, {})[kind] = state.result
                    scope = trio.CancelScope()
                    self.scopes[key] = scope
                    self.owner[container.id] = uid
                    self.nursery.start_soon(self._worker, scope, pod, spec, container, probe, pod_ip, uid)
        for key in [k for k in self.scopes if self.owner.get(k[0]) == uid and k not in wanted]:
            self.stop(key)

    def stop(self, key: tuple[str, str]) -> None:
        scope = self.scopes.pop(key, None)
        if scope is not None:
            scope.cancel()
        self.states.pop(key, None)
        results = self.results.get(key[0])
        if results is not None:
            results.pop(key[1], None)
            if not results:
                self.results.pop(key[0], None)
                self.owner.pop(key[0], None)

    def forget_pod(self, uid: str) -> None:
        for key in [k for k in self.scopes if self.owner.get(k[0]) == uid]:
            self.stop(key)

    def started(self, container_id: str, spec: dict) -> bool:
        if spec.get("startupProbe") is None:
            return True
        return (self.results.get(container_id) or {}).get("startup") == probes.SUCCESS

    async def _worker(self, scope: trio.CancelScope, pod: dict, spec: dict, container, probe: ProbeSpec,
                      pod_ip: str, uid: str) -> None:
        key = (container.id, probe.kind)
        started_at = container.started_at or time.time()
        with scope:
            while True:
                state = self.states[key]
                await trio.sleep(max(0.0, probes.next_run_at(probe, state, started_at) - time.time()))
                if not probes.should_probe(probe, state, self.started(container.id, spec)):
                    self.states[key] = replace(state, last_run_at=time.time())  # look again a period later
                    continue
                ok, output = await run_handler({probe.handler: probe.action}, spec, container.id, pod_ip,
                                               self.runtime, probe.timeout_s)
                new = probes.observe(probe, state, ok, output, time.time())
                self.states[key] = new
                if not ok:
                    self.on_failure(pod, spec.get("name", ""), probes.failure_event(probe, output))
                if new.result != state.result:
                    self.results.setdefault(container.id, {})[probe.kind] = new.result
                    log.info("event=probe_result pod=%s container=%s kind=%s result=%s", uid, spec.get("name"),
                             probe.kind, new.result)
                    self.on_change(uid)
