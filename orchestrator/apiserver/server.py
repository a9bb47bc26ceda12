"""The API server: an ASGI app on Hypercorn (trio, TLS), routing Kubernetes REST paths to verbs.

    ketch apiserver --kv-endpoints A,B,C --kv-token-file F --bind 127.0.0.1:6443 \\
        --tls-cert apiserver.crt --tls-key apiserver.key --token-file tokens.csv

Every error is a `Status`. Requests other than watches are limited to --max-requests-inflight at once
(429 with Retry-After beyond that) and bodies to request.MAX_BODY_BYTES (413). Reads and watches are
served here (watches stream chunked JSON lines from the watch cache, storage.py); writes by
writes.py; discovery documents by discovery.py and OpenAPI by openapi.py.
"""

from __future__ import annotations

import functools
import ipaddress
import logging
import random
from dataclasses import dataclass, field

import trio
from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.api import selectors
from orchestrator.api.resources import BY_PATH, RESOURCES, Resource, storage_owner
from orchestrator.apiserver import (
    admission,
    auth,
    discovery,
    errors,
    objects,
    openapi,
    openapi_proto,
    tables,
)
from orchestrator.apiserver.allocation import Allocator
from orchestrator.apiserver.request import JSON, Request, encode_line
from orchestrator.apiserver.storage import Store, WatchEvent, parse_resource_version
from orchestrator.apiserver.writes import Route, Writes, send_object
from orchestrator.metrics import Counter, Registry, answer_lifespan

log = logging.getLogger("ketch.apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")


@dataclass
class Settings:
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.96.0.0/16")
    node_ports: tuple[int, int] = (30000, 32767)
    max_in_flight: int = 400
    bookmark_interval_s: float = 10.0


@dataclass
class APIServer:
    store: Store
    tokens: dict[str, auth.User]
    settings: Settings = field(default_factory=Settings)
    in_flight: int = 0

    def __post_init__(self) -> None:
        self.allocator = Allocator(self.store, self.settings.service_cidr, self.settings.node_ports)
        self.writes = Writes(self.store, self.allocator)
        self.metrics = Registry()
        self.requests_total = Counter("ketch_apiserver_requests_total", "Requests answered, by HTTP status.",
                                      ["code"], registry=self.metrics)
        self.metrics.gauge_of("ketch_apiserver_in_flight", "Requests being served (watches excluded).",
                              lambda: self.in_flight)
        self.metrics.gauge_of("ketch_apiserver_watchers", "Open watches.",
                              lambda: sum(len(c.watchers) for c in self.store.caches.values()))

    # --- ASGI ---------------------------------------------------------------------------------

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await answer_lifespan(receive, send)
        if scope["type"] != "http":
            return
        request = Request(scope, receive, send)
        watching = request.query.get("watch") in ("true", "1")
        if not watching and self.in_flight >= self.settings.max_in_flight:
            await request.error(errors.too_many_requests())
            return
        self.in_flight += not watching
        try:
            await self.dispatch(request)
        except errors.APIError as err:
            await request.error(err)
        except Exception:
            log.exception("event=internal_error path=%s", request.path)
            await request.error(errors.APIError(500, "InternalError", "an internal error occurred"))
        finally:
            self.in_flight -= not watching
            self.requests_total.labels(code=str(request.status)).inc()

    async def dispatch(self, request: Request) -> None:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return await request.reply(200, b"ok", "text/plain")
        user = auth.authenticate(self.tokens, request.headers.get("authorization"))
        if user is None:
            raise errors.unauthorized()
        request.user = user
        if path == "/version":
            return await request.json(200, discovery.version_for(request.headers.get("user-agent")))
        if path == "/metrics":
            return await request.reply(200, self.metrics.text().encode(), CONTENT_TYPE_LATEST)
        if path in ("/api", "/apis"):
            return await self.discovery_root(request, path)
        if path.startswith("/openapi/") or path == "/swagger-2.0.0.pb-v1":
            return await self.openapi(request, path)
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.no_such_path(path)
        if not rest:
            listing = discovery.resource_list(group, version)
            if listing is None:
                raise errors.no_such_path(path)
            return await request.json(200, listing)
        route = self.route(group, version, rest, path)
        return await self.serve_resource(request, route)

    def route(self, group: str, version: str, rest: list[str], path: str) -> Route:
        if rest[0] == "namespaces" and len(rest) >= 3:
            resource = BY_PATH.get((group, version, rest[2]))
            if resource is not None and resource.namespaced and len(rest) <= 5:
                return Route(resource, rest[1], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None)
        resource = BY_PATH.get((group, version, rest[0]))
        if resource is None or len(rest) > 3:
            raise errors.no_such_path(path)
        return Route(resource, None, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None)

    # --- discovery ------------------------------------------------------------------------------

    async def discovery_root(self, request: Request, path: str) -> None:
        form = discovery.negotiate(request.headers.get("accept"))
        if form is None:
            raise errors.APIError(406, "NotAcceptable", "only the following media types are accepted: "
                                  "application/json, " + ", ".join(discovery.AGGREGATED.format(version=v)
                                                                   for v in discovery.AGGREGATED_VERSIONS))
        if form == "legacy":
            return await request.json(200, discovery.legacy_api() if path == "/api" else discovery.legacy_groups())
        await request.json(200, discovery.aggregated(core=path == "/api", version=form),
                           discovery.AGGREGATED.format(version=form))

    async def openapi(self, request: Request, path: str) -> None:
        """/openapi/v2 (protobuf when asked for, as kubectl 1.27 and 1.28 do; else JSON) and
        /openapi/v3 (the index, then one document per group-version)."""
        if path in ("/openapi/v2", "/swagger-2.0.0.pb-v1"):
            if "protobuf" in request.headers.get("accept", "") or path == "/swagger-2.0.0.pb-v1":
                return await request.reply(200, _openapi_v2_protobuf(), openapi_proto.CONTENT_TYPE)
            return await request.reply(200, _openapi_v2_json(), JSON)
        if path == "/openapi/v3":
            return await request.json(200, _openapi_v3()[0])
        document = _openapi_v3()[1].get(path[len("/openapi/v3/"):]) if path.startswith("/openapi/v3/") else None
        if document is None:
            raise errors.no_such_path(path)
        await request.json(200, document)

    # --- resources ------------------------------------------------------------------------------

    async def serve_resource(self, request: Request, route: Route) -> None:
        method, resource = request.method, route.resource
        watching = request.query.get("watch") in ("true", "1")
        if route.namespace is None and resource.namespaced and route.name is not None:
            raise errors.no_such_path(request.path)
        verb = {"GET": "watch" if watching else ("get" if route.name else "list"), "POST": "create",
                "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if route.name else "deletecollection"}.get(method)
        if verb is None:
            raise errors.method_not_allowed()
        if route.subresource and route.subresource not in resource.subresources:
            raise errors.no_such_path(request.path)
        await self.authorize(request, route, verb)
        if resource.plural == "selfsubjectaccessreviews":
            return await self.access_review(request)
        if resource.plural == "bindings":
            body = await request.body_object()
            name = (body.get("metadata") or {}).get("name")
            if not name:
                raise errors.bad_request("a binding needs metadata.name (the pod's name)")
            return await self.bind(request, Route(BY_PATH[("", "v1", "pods")], route.namespace, name, "binding"), body)
        if route.subresource == "binding":
            return await self.bind(request, route, await request.body_object())
        if route.subresource == "status" and verb not in ("get", "update", "patch"):
            raise errors.method_not_allowed()
        if route.subresource == "log":
            return await self.pod_log(request, route)
        if route.subresource == "scale":
            return await self.writes.scale(request, route)
        if route.subresource == "eviction":
            if verb != "create":
                raise errors.method_not_allowed()
            budgets, _, _ = await self.store.list(BY_PATH[("policy", "v1", "poddisruptionbudgets")], route.namespace,
                                                  resource_version="0")
            return await self.writes.evict(request, route, budgets)
        if verb == "get":
            obj = await self.store.get(storage_owner(resource), route.namespace, route.name)
            return await send_object(request, resource, obj)
        if verb in ("list", "watch"):
            return await (self.watch(request, route) if verb == "watch" else self.list(request, route))
        writes = {"create": self.writes.create, "update": self.writes.update, "patch": self.writes.patch,
                  "delete": self.writes.delete}
        if verb in writes:
            return await writes[verb](request, route)
        return await self.writes.delete_collection(request, route, self.matcher(request, route))

    async def authorize(self, request: Request, route: Route, verb: str) -> None:
        target = auth.Request(verb, route.resource.plural, route.subresource, route.namespace, route.name)
        pod_node = None
        if auth.needs_pod_node(request.user, target):
            try:
                pod = await self.store.get(route.resource, route.namespace, route.name)
                pod_node = (pod.get("spec") or {}).get("nodeName")
            except errors.APIError:
                pod_node = None
        if not auth.allowed(request.user, target, pod_node):
            raise errors.forbidden(request.user.name, verb, route.resource, route.namespace, route.name,
                                   route.subresource)

    async def access_review(self, request: Request) -> None:
        review = await request.body_object()
        attributes = (review.get("spec") or {}).get("resourceAttributes") or {}
        target = auth.Request(attributes.get("verb", ""), attributes.get("resource", ""),
                              attributes.get("subresource") or None, attributes.get("namespace") or None,
                              attributes.get("name") or None)
        allowed = auth.allowed(request.user, target)
        await request.json(201, {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                                 "metadata": {"creationTimestamp": None}, "spec": review.get("spec") or {},
                                 "status": {"allowed": allowed}})

    def matcher(self, request: Request, route: Route):
        try:
            labels = selectors.parse_label_selector(request.query.get("labelSelector"))
            fields = selectors.parse_field_selector(request.query.get("fieldSelector"), route.resource.kind)
        except selectors.SelectorError as err:
            raise errors.bad_request(str(err)) from None
        namespace = route.namespace

        def accept(obj: dict) -> bool:
            if namespace and obj["metadata"].get("namespace") != namespace:
                return False
            return selectors.labels_match(labels, obj) and selectors.fields_match(fields, obj)
        return accept

    async def list(self, request: Request, route: Route) -> None:
        accept = self.matcher(request, route)
        limit = request.int_param("limit", 0)
        items, revision, token = await self.store.list(
            storage_owner(route.resource), route.namespace, resource_version=request.query.get("resourceVersion"),
            limit=limit, continue_token=request.query.get("continue") or None)
        items = [objects.with_type(route.resource, obj) for obj in items if accept(obj)]
        if request.wants_table:
            body = tables.table(route.resource.kind, items, str(revision))
            if token:
                body["metadata"]["continue"] = token
            return await request.json(200, body, tables.TABLE_CONTENT_TYPE)
        meta = {"resourceVersion": str(revision)}
        if token:
            meta["continue"] = token
        await request.json(200, {"kind": route.resource.kind + "List", "apiVersion": route.resource.api_version,
                                 "metadata": meta, "items": items})

    # --- subresources -------------------------------------------------------------------------

    async def bind(self, request: Request, route: Route, binding: dict) -> None:
        pods = route.resource
        await self.store.guaranteed_update(
            pods, route.namespace, route.name, lambda pod: objects.bind(pod, binding, pods)
        )
        await request.json(201, errors.success(code=201))

    async def pod_log(self, request: Request, route: Route) -> None:
        from orchestrator.apiserver.logs import proxy_log

        pod = await self.store.get(route.resource, route.namespace, route.name)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name:
            raise errors.bad_request(f'pod "{route.name}" does not have a host assigned')
        node = await self.store.get(BY_PATH[("", "v1", "nodes")], None, node_name)
        await proxy_log(request, pod, node)

    # --- watch ----------------------------------------------------------------------------------

    async def watch(self, request: Request, route: Route) -> None:
        resource = route.resource
        accept = self.matcher(request, route)
        rv = request.query.get("resourceVersion")
        since = None if rv in (None, "", "0") else parse_resource_version(rv)
        timeout = request.int_param("timeoutSeconds", 0)
        bookmarks = request.query.get("allowWatchBookmarks") in ("true", "1")
        cache = self.store.cache(resource)
        await cache.ready.wait()
        await request.start_stream(tables.TABLE_CONTENT_TYPE if request.wants_table else JSON)
        try:
            initial, watcher = cache.subscribe(since, accept)
        except errors.APIError as err:
            await request.stream_line({"type": "ERROR", "object": err.status()})
            return await request.end_stream()
        try:
            with trio.move_on_after(timeout or random.uniform(1800, 3600)):
                for event in initial:
                    await request.stream_bytes(self.watch_line(request, resource, event))
                while True:
                    with trio.move_on_after(self.settings.bookmark_interval_s) as idle:
                        event = await watcher.receive.receive()
                        await request.stream_bytes(self.watch_line(request, resource, event))
                    if idle.cancelled_caught and bookmarks:
                        await request.stream_line(
                            {
                                "type": "BOOKMARK",
                                "object": {
                                    "kind": resource.kind,
                                    "apiVersion": resource.api_version,
                                    "metadata": {"resourceVersion": str(cache.revision)},
                                },
                            }
                        )
        except (trio.EndOfChannel, trio.ClosedResourceError, OSError):
            pass  # dropped for being slow, or the cache restarted: the client re-watches
        finally:
            cache.unsubscribe(watcher)
            with trio.CancelScope(shield=True):
                await request.end_stream()

    @staticmethod
    def watch_line(request: Request, resource: Resource, event: WatchEvent) -> bytes:
        """The event's line, encoded once for all the watchers that want the same form."""
        form = ("table:" if request.wants_table else "json:") + resource.group  # a view of shared storage differs
        line = event.encoded.get(form)
        if line is None:
            obj = objects.with_type(resource, event.object)
            if request.wants_table:
                obj = tables.table(resource.kind, [obj], obj["metadata"]["resourceVersion"])
            line = event.encoded[form] = encode_line({"type": event.type, "object": obj})
        return line

    # --- startup and metrics --------------------------------------------------------------------

    async def ensure_default_namespaces(self) -> None:
        namespaces = BY_PATH[("", "v1", "namespaces")]
        for name in DEFAULT_NAMESPACES:
            obj = objects.prepare_create(namespaces, {"metadata": {"name": name}}, None)
            admission.apply_defaults(namespaces, obj)
            try:
                await self.store.create(namespaces, None, obj)
            except errors.APIError as err:
                if err.reason != "AlreadyExists":
                    raise


@functools.lru_cache(maxsize=1)
def _openapi_v2_json() -> bytes:
    from orchestrator.apiserver import jsoncodec
    return jsoncodec.dumps(openapi.v2_document(RESOURCES))


@functools.lru_cache(maxsize=1)
def _openapi_v2_protobuf() -> bytes:
    return openapi_proto.document(openapi.v2_document(RESOURCES))


@functools.lru_cache(maxsize=1)
def _openapi_v3() -> tuple[dict, dict[str, dict]]:
    documents = openapi.v3_documents(RESOURCES)
    return openapi.v3_index(documents), documents
