"""Userspace mode: a trio TCP and UDP proxy per service port, for labs without root.

Where it listens, and why: without root there are no nft rules, so nothing can make a ClusterIP
(10.96.x.y) reachable, and ports below 1024 cannot be bound. In a non-root lab every "pod" is a
plain process on the host network and every host is a loopback address (127.0.1.N), so what all
of them can reach is a loopback address and an unprivileged port. Each service port therefore
gets, on the proxy's --bind-address (a non-root lab passes its host's 127.0.1.N; default
127.0.0.1):
- a service port chosen by the kernel when the service port first appears and kept for its
  lifetime (old kube-proxy's userspace mode did the same, behind an iptables redirect we cannot
  have); it plays the ClusterIP's role;
- for NodePort and LoadBalancer services, also the NodePort itself (30000-32767 needs no root),
  so "NodePort on the node's address" holds as in Kubernetes.
The proxy publishes the mapping at GET /services on its metrics address (JSON: port id ->
clusterIP, port, address, proxyPort, nodePort) and logs each listener as it opens.

Behaviour kept from the other modes (netproxy.policy): ready endpoints (else serving and
terminating ones), internalTrafficPolicy Local on the service port and externalTrafficPolicy
Local on the NodePort (userspace cannot tell a pod from an outside client: every client counts as
outside), ClientIP affinity with its timeout. Endpoints are used in turn (round robin), as the
userspace proxier did. A TCP service port without endpoints refuses connections at once: its
listener is closed while a bound, non-listening socket (SO_REUSEPORT) keeps the port. UDP
datagrams to such a port are dropped. Connections and UDP clients are bounded.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass, field

import trio

from netproxy.model import Endpoint
from netproxy.policy import PortPlan

log = logging.getLogger("ketch.proxy.userspace")
CONNECT_TIMEOUT_S = 3.0
CONNECT_TRIES = 3
MAX_CONNECTIONS = 4096
MAX_UDP_CLIENTS = 1024
MAX_AFFINITY_CLIENTS = 65536
UDP_IDLE_S = 30.0  # as the kernel's conntrack keeps an idle UDP flow
BUFFER = 65536


@dataclass
class Chooser:
    """Round robin over a plan's endpoints, with ClientIP affinity (pure: time is an argument)."""

    next_index: int = 0
    affinity: dict[str, tuple[Endpoint, float]] = field(default_factory=dict)  # client -> (endpoint, expiry)

    def choose(self, endpoints: tuple[Endpoint, ...], client_ip: str, affinity_s: int, now_s: float,
               skip: frozenset = frozenset()) -> Endpoint | None:
        usable = [e for e in endpoints if (e.ip, e.port) not in skip]
        if not usable:
            return None
        if affinity_s:
            pinned = self.affinity.get(client_ip)
            if pinned and pinned[1] > now_s and pinned[0] in usable:
                self.affinity[client_ip] = (pinned[0], now_s + affinity_s)
                return pinned[0]
        endpoint = usable[self.next_index % len(usable)]
        self.next_index += 1
        if affinity_s:
            if len(self.affinity) >= MAX_AFFINITY_CLIENTS:
                self.affinity = {c: v for c, v in self.affinity.items() if v[1] > now_s}
                if len(self.affinity) >= MAX_AFFINITY_CLIENTS:
                    self.affinity.pop(next(iter(self.affinity)))
            self.affinity[client_ip] = (endpoint, now_s + affinity_s)
        return endpoint


def _socket(kind: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return sock


def _reset(stream: trio.SocketStream) -> None:
    stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")


@dataclass
class Listener:
    """One address:port serving one service port's traffic (role "service" or "nodeport")."""

    port_id: str
    role: str
    protocol: str
    address: str
    port: int
    holder: socket.socket  # keeps the port while there is no listener
    scope: trio.CancelScope | None = None
    chooser: Chooser = field(default_factory=Chooser)


class UserspaceProxy:
    def __init__(self, bind_address: str = "127.0.0.1", clock=trio.current_time) -> None:
        self.bind_address = bind_address
        self.clock = clock
        self.plans: dict[str, PortPlan] = {}
        self.listeners: dict[tuple[str, str], Listener] = {}
        self.connections = 0
        self.nursery: trio.Nursery | None = None

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self.nursery = nursery
                task_status.started()
                await trio.sleep_forever()
        finally:
            for listener in self.listeners.values():
                if listener.protocol == "tcp":
                    listener.holder.close()

    # --- applying plans ---------------------------------------------------------------------

    def apply(self, plans: list[PortPlan]) -> dict[str, int]:
        """Open, retarget and close listeners for these plans; returns counts for the metrics."""
        wanted: dict[tuple[str, str], PortPlan] = {}
        for plan in plans:
            if plan.port.protocol not in ("tcp", "udp"):
                continue
            wanted[(plan.port.id, "service")] = plan
            if plan.port.node_port:
                wanted[(plan.port.id, "nodeport")] = plan
        for key in [k for k in self.listeners if k not in wanted]:
            self._close(self.listeners.pop(key))
        self.plans = {plan.port.id: plan for plan in wanted.values()}
        for key, plan in wanted.items():
            listener = self.listeners.get(key)
            if listener is None or listener.protocol != plan.port.protocol:
                if listener is not None:
                    self._close(listener)
                listener = self.listeners[key] = self._open(plan, key[1])
            self._serve_or_refuse(listener)
        return {"listeners": len(self.listeners), "connections": self.connections}

    def _open(self, plan: PortPlan, role: str) -> Listener:
        kind = socket.SOCK_STREAM if plan.port.protocol == "tcp" else socket.SOCK_DGRAM
        holder = _socket(kind)
        holder.bind((self.bind_address, plan.port.node_port if role == "nodeport" else 0))
        listener = Listener(plan.port.id, role, plan.port.protocol, self.bind_address, holder.getsockname()[1], holder)
        log.info("event=userspace_listen service=%s role=%s protocol=%s address=%s:%d", plan.port.id, role,
                 plan.port.protocol, listener.address, listener.port)
        return listener

    def _close(self, listener: Listener) -> None:
        if listener.scope is not None:
            listener.scope.cancel()  # a UDP listener's task closes its socket as it ends
        if listener.protocol == "tcp" or listener.scope is None:
            listener.holder.close()

    def endpoints_for(self, listener: Listener) -> tuple[Endpoint, ...]:
        plan = self.plans.get(listener.port_id)
        if plan is None:
            return ()
        return plan.internal if listener.role == "service" else plan.external

    def _serve_or_refuse(self, listener: Listener) -> None:
        serving = listener.scope is not None
        if listener.protocol == "udp":
            wanted = True  # the datagram loop drops what has nowhere to go
        else:
            wanted = bool(self.endpoints_for(listener))
        if wanted and not serving:
            listener.scope = trio.CancelScope()
            self.nursery.start_soon(self._serve, listener, listener.scope)
        elif serving and not wanted:
            listener.scope.cancel()  # the TCP listener closes; the holder keeps the port: refused
            listener.scope = None

    async def _serve(self, listener: Listener, scope: trio.CancelScope) -> None:
        with scope:
            if listener.protocol == "udp":
                # The UDP socket serves itself: a second bound socket in the SO_REUSEPORT group
                # would take a share of the datagrams.
                with trio.socket.from_stdlib_socket(listener.holder) as trio_sock:
                    await self._datagram_loop(listener, trio_sock)
                return
            sock = _socket(socket.SOCK_STREAM)
            sock.bind((listener.address, listener.port))
            with trio.socket.from_stdlib_socket(sock) as trio_sock:
                trio_sock.listen(1024)
                await self._accept_loop(listener, trio.SocketListener(trio_sock))

    # --- TCP --------------------------------------------------------------------------------

    async def _accept_loop(self, listener: Listener, tcp: trio.SocketListener) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                stream = await tcp.accept()
                if self.connections >= MAX_CONNECTIONS:
                    log.warning("event=userspace_refused service=%s reason=too_many_connections limit=%d",
                                listener.port_id, MAX_CONNECTIONS)
                    _reset(stream)
                    await stream.aclose()
                    continue
                nursery.start_soon(self._relay, listener, stream)

    async def _relay(self, listener: Listener, client: trio.SocketStream) -> None:
        self.connections += 1
        try:
            async with client:
                client_ip = client.socket.getpeername()[0]
                backend = await self._connect(listener, client_ip)
                if backend is None:
                    _reset(client)
                    return
                async with backend, trio.open_nursery() as nursery:
                    nursery.start_soon(_pump, client, backend)
                    nursery.start_soon(_pump, backend, client)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            self.connections -= 1

    async def _connect(self, listener: Listener, client_ip: str) -> trio.SocketStream | None:
        tried: set[tuple[str, int]] = set()
        plan = self.plans.get(listener.port_id)
        for _ in range(CONNECT_TRIES):
            endpoint = listener.chooser.choose(self.endpoints_for(listener), client_ip,
                                               plan.port.affinity_timeout_s if plan else 0, self.clock(),
                                               frozenset(tried))
            if endpoint is None:
                return None
            tried.add((endpoint.ip, endpoint.port))
            with trio.move_on_after(CONNECT_TIMEOUT_S):
                try:
                    return await trio.open_tcp_stream(endpoint.ip, endpoint.port)
                except OSError as err:
                    log.info("event=userspace_connect_failed service=%s endpoint=%s:%d error=%s",
                             listener.port_id, endpoint.ip, endpoint.port, err)
        return None

    # --- UDP --------------------------------------------------------------------------------

    async def _datagram_loop(self, listener: Listener, sock) -> None:
        sessions: dict[tuple, tuple[object, trio.CancelScope]] = {}
        async with trio.open_nursery() as nursery:
            while True:
                data, client = await sock.recvfrom(BUFFER)
                session = sessions.get(client)
                if session is None:
                    plan = self.plans.get(listener.port_id)
                    endpoint = listener.chooser.choose(self.endpoints_for(listener), client[0],
                                                       plan.port.affinity_timeout_s if plan else 0, self.clock())
                    if endpoint is None:
                        continue  # nowhere to go: dropped
                    if len(sessions) >= MAX_UDP_CLIENTS:
                        oldest = next(iter(sessions))
                        sessions.pop(oldest)[1].cancel()
                    upstream = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    await upstream.connect((endpoint.ip, endpoint.port))
                    scope = trio.CancelScope()
                    session = sessions[client] = (upstream, scope)
                    nursery.start_soon(self._replies, sock, upstream, client, scope, sessions)
                try:
                    await session[0].send(data)
                except OSError:
                    sessions.pop(client, (None, trio.CancelScope()))[1].cancel()

    async def _replies(self, sock, upstream, client, scope: trio.CancelScope, sessions: dict) -> None:
        with scope, upstream:
            while True:
                with trio.move_on_after(UDP_IDLE_S) as idle:
                    try:
                        data = await upstream.recv(BUFFER)
                    except OSError:
                        break  # e.g. ICMP port unreachable from a dead endpoint
                    await sock.sendto(data, client)
                if idle.cancelled_caught:
                    break
        if sessions.get(client, (None,))[0] is upstream:
            del sessions[client]

    def published(self) -> dict[str, dict]:
        """port id -> where clients reach it (served at GET /services)."""
        out: dict[str, dict] = {}
        for (port_id, role), listener in sorted(self.listeners.items()):
            plan = self.plans.get(port_id)
            entry = out.setdefault(port_id, {"protocol": listener.protocol, "address": listener.address,
                                             "clusterIP": plan.port.cluster_ips[0] if plan else "",
                                             "port": plan.port.port if plan else 0})
            entry["proxyPort" if role == "service" else "nodePort"] = listener.port
        return out


async def _pump(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    try:
        while data := await source.receive_some(BUFFER):
            await sink.send_all(data)
        await sink.send_eof()
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
        await sink.aclose()
