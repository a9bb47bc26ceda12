"""`ketch dns`'s I/O: UDP and TCP servers, the upstream forwarder, the response cache, and the
informers that keep the ServiceView current (the decisions are `answer.answer`'s).

- The view is rebuilt from the informers' caches after a change, at most every
  `rebuild_interval_s` (a burst of EndpointSlice updates costs one rebuild), and swapped in whole.
- Responses are cached per (transport, query bytes after the ID) until the view changes: the
  answer is a pure function of those, so a hit only puts the query's ID in front. The cache is
  bounded (oldest entries go first).
- Forwarded queries go to the upstreams in order, each with a timeout, over the transport the
  client used, from a fresh socket each (a random source port, against spoofed answers); the
  upstream's response is relayed unchanged. At most `max_forwards` are in flight: beyond that,
  and when every upstream fails, the client gets SERVFAIL at once.
- TCP connections (RFC 7766) may carry many queries; each is closed after `tcp_idle_s` without
  one, and at most `max_tcp_connections` are served at once (more are closed on accept).
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

import trio

from netproxy.dns.answer import FORWARD, Forward, answer, server_failure
from netproxy.dns.view import ServiceView, build_view
from orchestrator.client.api import ENDPOINTSLICES, SERVICES, APIClient
from orchestrator.client.informer import InformerFactory
from orchestrator.metrics import Counter, Gauge, Histogram, Registry

log = logging.getLogger("ketch.dns")
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
DURATION_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1, 2.5)


class DNSMetrics:
    def __init__(self, registry: Registry) -> None:
        self.requests = Counter("ketch_dns_requests_total", "DNS queries received", ["proto"], registry=registry)
        self.responses = Counter("ketch_dns_responses_total", "DNS responses sent, by rcode", ["rcode"],
                                 registry=registry)
        self.dropped = Counter("ketch_dns_dropped_total", "packets dropped without an answer (runts, responses)",
                               registry=registry)
        self.duration = Histogram("ketch_dns_request_duration_seconds", "time to answer a query (forwarded ones: "
                                  "until the upstream answered)", ["proto"], buckets=DURATION_BUCKETS,
                                  registry=registry)
        self.cache_hits = Counter("ketch_dns_cache_hits_total", "answers served from the response cache",
                                  registry=registry)
        self.cache_misses = Counter("ketch_dns_cache_misses_total", "answers computed from the view",
                                    registry=registry)
        self.forwards = Counter("ketch_dns_forward_requests_total", "queries forwarded upstream", registry=registry)
        self.forward_failures = Counter("ketch_dns_forward_failures_total",
                                        "forwarded queries answered SERVFAIL (no upstream answered, or too many "
                                        "in flight)", registry=registry)
        self.rebuilds = Counter("ketch_dns_view_rebuilds_total", "times the view was rebuilt", registry=registry)
        self.services = Gauge("ketch_dns_view_services", "services in the view", registry=registry)
        self.names = Gauge("ketch_dns_view_names", "names with records in the view", registry=registry)
        self.skipped = Gauge("ketch_dns_view_skipped_services", "services left out as unreadable", registry=registry)
        self.rebuild_seconds = Gauge("ketch_dns_view_rebuild_seconds", "how long the last rebuild took",
                                     registry=registry)
        self._by_proto = {proto: (self.requests.labels(proto), self.duration.labels(proto)) for proto in ("udp", "tcp")}
        self._by_rcode = {code: self.responses.labels(name) for code, name in RCODES.items()}

    def answered(self, proto: str, response: bytes | None, started: float) -> None:
        requests, duration = self._by_proto[proto]
        requests.inc()
        if response is None:
            self.dropped.inc()
            return
        rcode = response[3] & 0xF
        (self._by_rcode.get(rcode) or self.responses.labels(str(rcode))).inc()
        duration.observe(time.perf_counter() - started)


class HealthRegistry(Registry):
    """/healthz answers 503 until `healthy()` (the informers have listed once), then 200."""

    def __init__(self, healthy: Callable[[], bool]) -> None:
        super().__init__()
        self.healthy = healthy

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/healthz" and not self.healthy():
            await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"informers have not listed yet"})
            return
        await super().__call__(scope, receive, send)


async def _receive_exactly(stream: trio.abc.ReceiveStream, count: int, buffer: bytearray) -> bytes | None:
    while len(buffer) < count:
        chunk = await stream.receive_some(65536)
        if not chunk:
            return None
        buffer += chunk
    data = bytes(buffer[:count])
    del buffer[:count]
    return data


class DNSServer:
    def __init__(self, *, upstreams: list[tuple[str, int]] | None = None, ttl_s: int = 5,
                 registry: Registry | None = None, cache_entries: int = 10000, forward_timeout_s: float = 2.0,
                 max_forwards: int = 256, max_tcp_connections: int = 256, tcp_idle_s: float = 10.0) -> None:
        self.view = build_view([], [])
        self.upstreams = list(upstreams or [])
        self.ttl_s = ttl_s
        self.registry = registry or Registry()
        self.metrics = DNSMetrics(self.registry)
        self.cache: dict[tuple[bool, bytes], bytes] = {}
        self.cache_entries = cache_entries
        self.forward_timeout_s = forward_timeout_s
        self.forward_slots = trio.CapacityLimiter(max_forwards)
        self.max_tcp_connections = max_tcp_connections
        self.tcp_connections = 0
        self.tcp_idle_s = tcp_idle_s

    def set_view(self, view: ServiceView) -> None:
        self.view = view
        self.cache = {}
        self.metrics.services.set(view.services)
        self.metrics.names.set(len(view.records))
        self.metrics.skipped.set(len(view.skipped))

    def respond(self, query: bytes, tcp: bool) -> bytes | Forward | None:
        """The response bytes, FORWARD, or None (drop): from the cache when the view has not changed."""
        key = (tcp, query[2:])
        cached = self.cache.get(key)
        if cached is not None:
            self.metrics.cache_hits.inc()
            return query[:2] + cached
        self.metrics.cache_misses.inc()
        result = answer(query, self.view, upstream=bool(self.upstreams), tcp=tcp, ttl_s=self.ttl_s)
        if isinstance(result, bytes):
            if len(self.cache) >= self.cache_entries:
                del self.cache[next(iter(self.cache))]
            self.cache[key] = result[2:]
        return result

    async def handle(self, query: bytes, tcp: bool) -> bytes | None:
        result = self.respond(query, tcp)
        if result is FORWARD:
            return await self.forward(query, tcp)
        return result

    # --- upstream ---------------------------------------------------------------------------

    async def forward(self, query: bytes, tcp: bool) -> bytes | None:
        try:
            self.forward_slots.acquire_nowait()
        except trio.WouldBlock:
            self.metrics.forward_failures.inc()
            return server_failure(query)
        try:
            self.metrics.forwards.inc()
            for host, port in self.upstreams:
                with trio.move_on_after(self.forward_timeout_s):
                    try:
                        reply = await (self._ask_tcp if tcp else self._ask_udp)(host, port, query)
                    except (OSError, trio.BrokenResourceError) as err:
                        log.debug("event=upstream_failed upstream=%s:%s error=%s", host, port, err)
                        continue
                    if reply is not None:
                        return reply
            self.metrics.forward_failures.inc()
            return server_failure(query)
        finally:
            self.forward_slots.release()

    @staticmethod
    def _family(host: str) -> int:
        return socket.AF_INET6 if ":" in host else socket.AF_INET

    async def _ask_udp(self, host: str, port: int, query: bytes) -> bytes | None:
        with trio.socket.socket(self._family(host), socket.SOCK_DGRAM) as sock:
            await sock.connect((host, port))
            await sock.send(query)
            while True:  # a connected socket only hears this upstream; skip answers to other IDs
                reply = await sock.recv(65535)
                if len(reply) >= 12 and reply[:2] == query[:2] and reply[2] & 0x80:
                    return reply

    async def _ask_tcp(self, host: str, port: int, query: bytes) -> bytes | None:
        stream = await trio.open_tcp_stream(host, port)
        async with stream:
            await stream.send_all(len(query).to_bytes(2, "big") + query)
            buffer = bytearray()
            size = await _receive_exactly(stream, 2, buffer)
            return None if size is None else await _receive_exactly(stream, int.from_bytes(size, "big"), buffer)

    # --- serving ----------------------------------------------------------------------------

    async def _answer_udp(self, sock, query: bytes, address, started: float) -> None:
        reply = await self.handle(query, tcp=False)
        self.metrics.answered("udp", reply, started)
        if reply is not None:
            try:
                await sock.sendto(reply, address)
            except OSError as err:  # the client's address is unreachable: its loss
                log.debug("event=udp_send_failed client=%s error=%s", address, err)

    async def serve_udp(self, sock, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Answer datagrams on a bound trio UDP socket until cancelled."""
        async with trio.open_nursery() as nursery:
            task_status.started()
            while True:
                try:
                    query, address = await sock.recvfrom(65535)
                except OSError as err:  # e.g. ECONNREFUSED from an ICMP error of an earlier send
                    log.debug("event=udp_receive_failed error=%s", err)
                    continue
                started = time.perf_counter()
                result = self.respond(query, tcp=False)
                if result is FORWARD:  # the upstream's answer arrives later: do not hold up the others
                    nursery.start_soon(self._answer_udp, sock, query, address, started)
                    continue
                self.metrics.answered("udp", result, started)
                if result is not None:
                    try:
                        await sock.sendto(result, address)
                    except OSError as err:
                        log.debug("event=udp_send_failed client=%s error=%s", address, err)

    async def serve_tcp_connection(self, stream: trio.abc.Stream) -> None:
        if self.tcp_connections >= self.max_tcp_connections:
            await stream.aclose()
            return
        self.tcp_connections += 1
        buffer = bytearray()
        try:
            while True:
                query, started = None, 0.0
                with trio.move_on_after(self.tcp_idle_s):
                    size = await _receive_exactly(stream, 2, buffer)
                    query = None if size is None else await _receive_exactly(stream, int.from_bytes(size, "big"),
                                                                              buffer)
                    started = time.perf_counter()
                if query is None:  # closed by the client, or idle too long
                    return
                reply = await self.handle(query, tcp=True)
                self.metrics.answered("tcp", reply, started)
                if reply is None:
                    return
                await stream.send_all(len(reply).to_bytes(2, "big") + reply)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            return
        finally:
            self.tcp_connections -= 1
            await trio.aclose_forcefully(stream)


class ServiceWatcher:
    """Services and EndpointSlices through informers, turned into the server's view."""

    def __init__(self, api: APIClient, server: DNSServer, domain: str = "cluster.local",
                 rebuild_interval_s: float = 0.05) -> None:
        self.server = server
        self.domain = domain
        self.rebuild_interval_s = rebuild_interval_s
        self.factory = InformerFactory(api)
        self.services = self.factory.informer(SERVICES)
        self.slices = self.factory.informer(ENDPOINTSLICES)
        self.changed = trio.Event()
        self.synced = False
        self.generation = 0
        self._skipped: tuple[str, ...] = ()
        for informer in (self.services, self.slices):
            informer.add_handler(on_add=self._mark, on_update=lambda old, new: old is not new and self._mark(new),
                                 on_delete=self._mark)

    def _mark(self, _obj: dict) -> None:
        self.changed.set()

    def rebuild(self) -> None:
        started = time.perf_counter()
        self.generation += 1
        view = build_view(self.services.items(), self.slices.items(), self.domain, self.generation)
        self.server.set_view(view)
        self.server.metrics.rebuilds.inc()
        self.server.metrics.rebuild_seconds.set(time.perf_counter() - started)
        if view.skipped != self._skipped:
            for reason in set(view.skipped) - set(self._skipped):
                log.warning("event=service_skipped reason=%r", reason)
            self._skipped = view.skipped

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.factory.run)
            self.changed = trio.Event()
            self.rebuild()
            self.synced = True
            log.info("event=synced services=%d names=%d", self.server.view.services, len(self.server.view.records))
            task_status.started()
            while True:
                await self.changed.wait()
                await trio.sleep(self.rebuild_interval_s)  # let a burst of changes land first
                self.changed = trio.Event()
                self.rebuild()
