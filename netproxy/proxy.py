"""`ketch proxy`: watches Services, EndpointSlices and its Node, and keeps the node's rules in step.

    ketch proxy --kubeconfig K --node-name N [--mode nftables|iptables|userspace] [--netns NS]
                [--cluster-cidr 10.244.0.0/16] [--service-cidr 10.96.0.0/16] [--metrics-bind H:P]
    ketch proxy --cleanup [--netns NS]

Syncs, as kube-proxy's: the informers only record what changed; one loop turns the changes into
rules. Bursts are coalesced: a sync starts at most once per --min-sync-interval, and then takes
everything that changed meanwhile. The first sync is full (it replaces whatever a crashed proxy
or a hand left behind), as is the sync after a failure and one every --full-sync-period; the
others rewrite only the changed services. A sync also runs every --sync-period without changes.
After each sync, UDP conntrack entries to endpoints that stopped serving are deleted.

/healthz answers 200 while the last successful sync is at most --healthz-timeout old (503 with
the same JSON otherwise, as kube-proxy's), /metrics the sync metrics (prometheus-client), and in
userspace mode /services the addresses the listeners were given.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass

import trio

from netproxy import announce
from netproxy.conntrack import cleanup_targets, delete_stale_udp
from netproxy.host import HostError, ensure_service_route, sysctls_for, write_sysctls
from netproxy.model import ProxyError
from netproxy.modes import IptablesMode, NftMode, UserspaceMode
from netproxy.state import ProxyState
from orchestrator.api.services import announced_by
from orchestrator.client.api import ENDPOINTSLICES, NODES, SERVICES, APIClient
from orchestrator.client.informer import InformerFactory
from orchestrator.metrics import Counter, Gauge, Histogram, Registry

log = logging.getLogger("ketch.proxy")
SYNC_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
MAX_RETRY_S = 30.0


@dataclass
class ProxyConfig:
    node_name: str
    mode: str = "nftables"
    netns: str | None = None  # apply rules in this namespace (else where the process runs)
    cluster_cidr: str = ""
    service_cidr: str = "10.96.0.0/16"
    min_sync_interval_s: float = 0.1
    sync_period_s: float = 30.0
    full_sync_period_s: float = 3600.0
    healthz_timeout_s: float = 60.0  # kube-proxy: twice the sync period
    metrics_bind: str | None = None
    bind_address: str | None = None  # userspace listeners (default: the node's address, else loopback)
    iptables_backend: str = "auto"


class ProxyMetrics(Registry):
    """The sync metrics (names as kube-proxy's) and /healthz with kube-proxy's staleness rule."""

    def __init__(self, proxy: Proxy) -> None:
        super().__init__()
        self.proxy = proxy
        self.sync_duration = Histogram("kubeproxy_sync_proxy_rules_duration_seconds",
                                       "SyncProxyRules latency in seconds", buckets=SYNC_BUCKETS, registry=self)
        self.full_duration = Histogram("kubeproxy_sync_full_proxy_rules_duration_seconds",
                                       "Full sync latency in seconds", buckets=SYNC_BUCKETS, registry=self)
        self.partial_duration = Histogram("kubeproxy_sync_partial_proxy_rules_duration_seconds",
                                          "Partial sync latency in seconds", buckets=SYNC_BUCKETS, registry=self)
        self.programming = Histogram("kubeproxy_network_programming_duration_seconds",
                                     "From a Service or EndpointSlice change (its trigger time, else when it was "
                                     "observed) to the rules applied", buckets=LATENCY_BUCKETS, registry=self)
        self.last_sync = Gauge("kubeproxy_sync_proxy_rules_last_timestamp_seconds",
                               "The last time the rules were successfully synced", registry=self)
        self.last_queued = Gauge("kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds",
                                 "The last time a sync was queued", registry=self)
        self.rules = Gauge("kubeproxy_sync_proxy_rules_objects", "Objects in the last synced ruleset, by kind",
                           ["kind"], registry=self)
        self.failures = Counter("kubeproxy_sync_proxy_rules_failures", "Syncs that failed", registry=self)
        self.bad_objects = Counter("kubeproxy_ignored_objects", "Services and EndpointSlices that could not be "
                                   "turned into rules", registry=self)
        self.conntrack = Counter("kubeproxy_sync_proxy_rules_conntrack_deleted",
                                 "Stale UDP conntrack entries deleted", registry=self)
        self.syncs = Counter("kubeproxy_sync_proxy_rules", "Syncs by kind", ["kind"], registry=self)

    def health(self, now_s: float) -> tuple[bool, dict]:
        last = self.proxy.last_success_s
        healthy = last is not None and now_s - last <= self.proxy.config.healthz_timeout_s
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last)) if last else ""
        return healthy, {"lastUpdated": stamp, "currentTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now_s)),
                         "nodeEligible": True}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] in ("/healthz", "/services"):
            if scope["path"] == "/healthz":
                healthy, body = self.health(time.time())
                status = 200 if healthy else 503
            else:
                mode = self.proxy.mode
                body, status = (mode.proxy.published(), 200) if isinstance(mode, UserspaceMode) else ({}, 404)
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json")]})
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})
            return
        await super().__call__(scope, receive, send)


def make_mode(config: ProxyConfig):
    if config.mode == "nftables":
        return NftMode(config.netns)
    if config.mode == "iptables":
        return IptablesMode(config.netns, config.iptables_backend)
    if config.mode == "userspace":
        return UserspaceMode(config.bind_address or "127.0.0.1")
    raise ProxyError(f"unknown mode {config.mode!r}")


class Proxy:
    def __init__(self, api: APIClient, config: ProxyConfig) -> None:
        self.api, self.config = api, config
        self.state = ProxyState(config.node_name, config.cluster_cidr)
        self.mode = make_mode(config)
        self.metrics = ProxyMetrics(self)
        self.last_success_s: float | None = None  # wall clock
        self.wake = trio.Event()
        self.udp_plans: dict[str, object] = {}  # port id -> last applied plan, UDP ports only
        self.announced: dict[str, tuple[str, ...]] = {}  # service key -> LB addresses this node answers for
        self.announce_wake = trio.Event()
        self.factory = InformerFactory(api)
        services = self.factory.informer(SERVICES)
        slices = self.factory.informer(ENDPOINTSLICES)
        nodes = self.factory.informer(NODES, field_selector=f"metadata.name={config.node_name}")
        services.add_handler(lambda o: self._changed(self.state.service_changed, o),
                             lambda _, o: self._changed(self.state.service_changed, o),
                             lambda o: self._changed(self.state.service_changed, o, True))
        slices.add_handler(lambda o: self._changed(self.state.slice_changed, o),
                           lambda _, o: self._changed(self.state.slice_changed, o),
                           lambda o: self._changed(self.state.slice_changed, o, True))
        services.add_handler(self._announce, lambda _, o: self._announce(o), lambda o: self._announce(o, True))
        nodes.add_handler(self._node, lambda _, o: self._node(o), lambda _: self._node(None))

    # --- informer handlers: record and wake the loop ------------------------------------------

    def _changed(self, record, obj: dict, deleted: bool = False) -> None:
        reason = record(obj, time.time(), deleted)
        if reason:
            self.metrics.bad_objects.inc()
            log.warning("event=object_ignored kind=%s name=%s/%s reason=%r", obj.get("kind", ""),
                        obj["metadata"].get("namespace"), obj["metadata"].get("name"), reason)
        self._queue()

    def _node(self, node: dict | None) -> None:
        self.state.node_changed(node)
        self.announce_wake.set()
        self._queue()

    def _announce(self, service: dict, deleted: bool = False) -> None:
        key = f"{service['metadata'].get('namespace')}/{service['metadata'].get('name')}"
        addresses = () if deleted else announced_by(service, self.config.node_name)
        if self.announced.get(key, ()) != addresses:
            if addresses:
                self.announced[key] = addresses
            else:
                self.announced.pop(key, None)
            self.announce_wake.set()

    def _queue(self) -> None:
        if self.state.dirty or self.state.node_dirty:
            self.metrics.last_queued.set(time.time())
            self.wake.set()

    # --- running -----------------------------------------------------------------------------

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            if self.config.metrics_bind:
                await nursery.start(self.metrics.serve, self.config.metrics_bind)
            if isinstance(self.mode, UserspaceMode):
                await nursery.start(self.mode.run)
            await nursery.start(self.factory.run)
            if self.mode.blocking:
                await trio.to_thread.run_sync(self.prepare_host)
                self.announce_wake.set()  # the first pass also drops what an earlier run held
                nursery.start_soon(self.announce_loop)
            task_status.started()
            await self.sync_loop()

    def prepare_host(self) -> None:
        """sysctls and the service route in the node's namespace (failures are logged, not fatal:
        a lab host may lack br_netfilter, and rules still work for traffic that does not need it)."""
        try:
            written = write_sysctls(sysctls_for(self.config.mode), self.config.netns)
            log.info("event=sysctls netns=%s set=%s", self.config.netns or "-", ",".join(sorted(written)))
            device = ensure_service_route(self.config.service_cidr, (self.state.node.addresses or (None,))[0],
                                          self.config.netns)
            if device:
                log.info("event=service_route cidr=%s dev=%s", self.config.service_cidr, device)
        except (HostError, OSError) as err:
            log.warning("event=prepare_host_failed error=%s", err)

    async def sync_loop(self) -> None:
        force_full, last_full, last_start, retry_s = True, -math.inf, -math.inf, 0.0
        while True:
            with trio.move_on_at(last_start + self.config.sync_period_s):
                await self.wake.wait()
            # Coalesce: whatever arrives until the minimum interval has passed joins this sync.
            await trio.sleep_until(max(last_start + self.config.min_sync_interval_s, trio.current_time() + retry_s))
            self.wake = trio.Event()
            last_start = trio.current_time()
            full = force_full or last_start - last_full >= self.config.full_sync_period_s
            if await self.sync_once(full):
                force_full, retry_s = False, 0.0
                last_full = last_start if full else last_full
            else:
                force_full, retry_s = True, min(MAX_RETRY_S, max(1.0, retry_s * 2))

    async def announce_loop(self) -> None:
        """Keep the load balancer addresses this node announces on its interface (announce.py)."""
        while True:
            await self.announce_wake.wait()
            self.announce_wake = trio.Event()
            wanted = {address for addresses in self.announced.values() for address in addresses}
            node_address = (self.state.node.addresses or (None,))[0]
            try:
                added, removed = await trio.to_thread.run_sync(announce.hold, wanted, node_address, self.config.netns)
            except announce.AnnounceError as err:
                log.warning("event=announce_failed error=%s", err)
                await trio.sleep(2.0)
                self.announce_wake.set()
                continue
            if added or removed:
                log.info("event=lb_addresses added=%s removed=%s", ",".join(sorted(added)) or "-",
                         ",".join(sorted(removed)) or "-")

    async def sync_once(self, full: bool) -> bool:
        taken = self.state.take()
        node = self.state.node
        started = time.monotonic()
        try:
            if self.mode.blocking:
                report = await trio.to_thread.run_sync(self.mode.sync, taken, node, started, full)
            else:
                report = self.mode.sync(taken, node, started, full)
        except ProxyError as err:
            self.state.failed(taken)
            self.metrics.failures.inc()
            log.error("event=sync_failed mode=%s full=%s error=%s", self.mode.name, full, err)
            return False
        elapsed = time.monotonic() - started
        applied_at = time.time()
        self.last_success_s = applied_at
        self.metrics.last_sync.set(applied_at)
        self.metrics.sync_duration.observe(elapsed)
        (self.metrics.full_duration if report.full else self.metrics.partial_duration).observe(elapsed)
        self.metrics.syncs.labels(kind="full" if report.full else "partial").inc()
        for kind, count in report.counts.items():
            self.metrics.rules.labels(kind=kind).set(count)
        latencies = [max(0.0, applied_at - since) for since in taken.since.values()]
        for latency in latencies:
            self.metrics.programming.observe(latency)
        for conflict in report.conflicts:
            log.warning("event=service_conflict %s", conflict)
        if report.changed or taken.dirty:
            log.info("event=synced mode=%s full=%s services_changed=%d seconds=%.4f%s", self.mode.name, report.full,
                     len(taken.dirty), elapsed,
                     f" programming_latency_s={max(latencies):.4f}" if latencies else "")
        if self.mode.blocking:
            await self._clean_conntrack(taken)
        return True

    async def _clean_conntrack(self, taken) -> None:
        new = {p.port.id: p for service in taken.dirty for p in taken.plans.get(service, ())
               if p.port.protocol == "udp"}
        old = {pid: p for pid, p in self.udp_plans.items() if p.port.service_key in taken.dirty}
        for pid in old:
            self.udp_plans.pop(pid)
        self.udp_plans.update(new)
        targets = cleanup_targets(old, new)
        if not targets:
            return
        try:
            deleted = await trio.to_thread.run_sync(delete_stale_udp, targets, self.config.netns)
        except Exception as err:  # pyroute2 raises its own kinds; conntrack cleanup must not stop syncs
            log.warning("event=conntrack_cleanup_failed error=%r", err)
            return
        self.metrics.conntrack.inc(deleted)
        if deleted:
            log.info("event=conntrack_cleaned udp_entries=%d", deleted)


def cleanup(netns: str | None = None) -> list[str]:
    """`ketch proxy --cleanup`: remove the nft table and the iptables chains of any earlier run."""
    removed = []
    for name, mode in (("nftables", NftMode), ("iptables", IptablesMode)):
        try:
            if mode(netns).cleanup():
                removed.append(name)
        except ProxyError as err:  # e.g. no iptables here: nothing of ours can be there either
            log.info("event=cleanup_skipped mode=%s reason=%s", name, err)
    if announce.release_all(netns):
        removed.append("load balancer addresses")
    return removed
