"""The API server: an ASGI app on Hypercorn (trio, TLS), routing Kubernetes REST paths to verbs.

    ketch apiserver --kv-endpoints A,B,C --kv-token-file F --bind 127.0.0.1:6443 \\
        --tls-cert apiserver.crt --tls-key apiserver.key --token-file tokens.csv

This module authenticates, routes a path to a resource and verb, authorizes, and hands the request
to the reads (handlers.py), the writes (writes.py) or a watch stream (watch.py); it answers
discovery (discovery.py) and OpenAPI (openapi.py) itself. Every error is a `Status`. Requests
other than watches are limited to --max-requests-inflight at once (429 with Retry-After beyond
that) and bodies to request.MAX_BODY_BYTES (413).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from dataclasses import dataclass, field

from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.api.resources import BY_PATH, RESOURCES
from orchestrator.apiserver import admission, auth, discovery, errors, jsoncodec, objects, openapi, openapi_proto
from orchestrator.apiserver.allocation import Allocator
from orchestrator.apiserver.handlers import Verbs, matcher
from orchestrator.apiserver.kubelet_client import KubeletClient
from orchestrator.apiserver.request import JSON, Request, Route
from orchestrator.apiserver.storage import Store
from orchestrator.apiserver.streams import STREAM_SUBRESOURCES, WebSocketRequest
from orchestrator.apiserver.streams import serve as serve_stream
from orchestrator.apiserver.tokens import ServiceAccountTokens
from orchestrator.apiserver.watch import serve_watch
from orchestrator.apiserver.writes import Writes, directive_of
from orchestrator.metrics import Counter, Registry, answer_lifespan
from orchestrator.streaming.asgi import WebSocket

log = logging.getLogger("ketch.apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")


@dataclass
class Settings:
    service_cidr: ipaddress.IPv4Network = ipaddress.IPv4Network("10.96.0.0/16")
    node_ports: tuple[int, int] = (30000, 32767)
    max_in_flight: int = 400
    bookmark_interval_s: float = 10.0
    kubelet: KubeletClient = field(default_factory=KubeletClient)
    service_account_key: object = None  # signs and checks ServiceAccount tokens (tokens.py); None: no tokens


@dataclass
class APIServer:
    store: Store
    tokens: dict[str, auth.User]
    settings: Settings = field(default_factory=Settings)
    in_flight: int = 0

    def __post_init__(self) -> None:
        self.allocator = Allocator(self.store, self.settings.service_cidr, self.settings.node_ports)
        self.verbs = Verbs(self.store, self.allocator, self.settings.kubelet)
        self.service_accounts = ServiceAccountTokens(self.store, self.settings.service_account_key)
        self.writes = Writes(self.store, self.allocator, self.service_accounts.admit_pod)
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
        if scope["type"] == "websocket":
            return await self.websocket(scope, receive, send)
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

    async def websocket(self, scope, receive, send) -> None:
        """A WebSocket upgrade (kubectl exec and port-forward): routed as a GET; not counted in flight,
        as a watch is not: it lasts as long as the session."""
        ws = WebSocket(scope, receive, send)
        if not await ws.connected():
            return
        request = WebSocketRequest(ws)
        try:
            await self.dispatch(request)
        except errors.APIError as err:
            await request.error(err)
        except Exception:
            log.exception("event=internal_error path=%s", request.path)
            await request.error(errors.APIError(500, "InternalError", "an internal error occurred"))
        finally:
            await ws.close(1000)
            self.requests_total.labels(code=str(request.status)).inc()

    async def dispatch(self, request: Request) -> None:
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return await request.reply(200, b"ok", "text/plain")
        header = request.headers.get("authorization")
        user = auth.authenticate(self.tokens, header)
        if user is None and auth.bearer_token(header):
            user = await self.service_accounts.authenticate(auth.bearer_token(header))
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
        if group == "metrics.k8s.io":
            return await self.resource_metrics(request, version, rest, path)
        route = self.route(group, version, rest, path)
        return await self.serve_resource(request, route)

    async def resource_metrics(self, request: Request, version: str, rest: list[str], path: str) -> None:
        """metrics.k8s.io (kubectl top), read from the kubelets: metrics_api.py."""
        from orchestrator.apiserver import metrics_api
        route = self.route("metrics.k8s.io", version, rest, path)
        await self.authorize(request, route, "get" if route.name else "list")
        await metrics_api.serve(request, self.store, self.settings.kubelet, rest)

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
        if route.subresource in STREAM_SUBRESOURCES and method in ("GET", "POST"):
            # Kubernetes asks for create on pods/exec (and attach, portforward) whatever the method,
            # a WebSocket's GET included, so read-only users cannot run commands in pods
            await self.authorize(request, route, "create")
            return await serve_stream(request, route, self.store, self.settings.kubelet)
        await self.authorize(request, route, verb)
        if resource.plural == "selfsubjectaccessreviews":
            return await self.access_review(request)
        if resource.plural == "selfsubjectreviews":  # kubectl auth whoami
            user = request.user
            return await request.json(201, {
                "kind": "SelfSubjectReview", "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"creationTimestamp": None}, "status": {"userInfo": {
                    "username": user.name, "uid": user.uid, "groups": [*user.groups, "system:authenticated"]}}})
        verbs = self.verbs
        if resource.plural == "bindings":
            body = await request.body_object()
            name = (body.get("metadata") or {}).get("name")
            if not name:
                raise errors.bad_request("a binding needs metadata.name (the pod's name)")
            return await verbs.bind(request, Route(BY_PATH[("", "v1", "pods")], route.namespace, name, "binding"), body)
        if route.subresource in ("status", "ephemeralcontainers") and verb not in ("get", "update", "patch"):
            raise errors.method_not_allowed()
        if route.subresource == "eviction":
            if verb != "create":
                raise errors.method_not_allowed()
            return await self.writes.evict(request, route)
        if route.subresource == "token":
            if verb != "create":
                raise errors.method_not_allowed()
            return await self.service_accounts.create(request, route, directive_of(request))
        if route.subresource in ("binding", "log", "scale"):
            serve = {"binding": verbs.bind_request, "log": verbs.pod_log, "scale": self.writes.scale}[route.subresource]
            return await serve(request, route)
        if verb == "watch":
            return await serve_watch(self.store, self.settings.bookmark_interval_s, request, route)
        if verb == "deletecollection":
            return await self.writes.delete_collection(request, route, matcher(request, route))
        writes = self.writes
        serve = {"get": verbs.get, "list": verbs.list, "create": writes.create, "update": writes.update,
                 "patch": writes.patch, "delete": writes.delete}[verb]
        return await serve(request, route)

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
    return jsoncodec.dumps(openapi.v2_document(RESOURCES))


@functools.lru_cache(maxsize=1)
def _openapi_v2_protobuf() -> bytes:
    return openapi_proto.document(openapi.v2_document(RESOURCES))


@functools.lru_cache(maxsize=1)
def _openapi_v3() -> tuple[dict, dict[str, dict]]:
    documents = openapi.v3_documents(RESOURCES)
    return openapi.v3_index(documents), documents
