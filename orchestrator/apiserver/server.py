"""The API server: an ASGI app on Hypercorn (trio, TLS), routing Kubernetes REST paths to verbs.

    ketch apiserver --kv-endpoints A,B,C --kv-token-file F --bind 127.0.0.1:6443 \\
        --tls-cert apiserver.crt --tls-key apiserver.key --token-file tokens.csv

Every error is a `Status`. Requests other than watches are limited to --max-requests-inflight at once
(429 with Retry-After beyond that) and bodies to request.MAX_BODY_BYTES (413). Watches stream chunked
JSON lines from the watch cache (storage.py).
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import random
from dataclasses import dataclass, field

import trio
from prometheus_client import CONTENT_TYPE_LATEST

from orchestrator.api import selectors
from orchestrator.api.resources import BY_PATH, Resource
from orchestrator.apiserver import (
    admission,
    auth,
    discovery,
    errors,
    jsoncodec,
    objects,
    patch,
    tables,
)
from orchestrator.apiserver.allocation import Allocator
from orchestrator.apiserver.request import JSON, Request, encode_line
from orchestrator.apiserver.storage import Store, WatchEvent, parse_resource_version
from orchestrator.metrics import Counter, Registry, answer_lifespan

log = logging.getLogger("ketch.apiserver")

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-node-lease", "kube-public")


@dataclass
class Route:
    resource: Resource
    namespace: str | None
    name: str | None
    subresource: str | None


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
            return await request.json(200, discovery.VERSION)
        if path == "/metrics":
            return await request.reply(200, self.metrics.text().encode(), CONTENT_TYPE_LATEST)
        if path in ("/api", "/apis"):
            return await self.discovery_root(request, path)
        if path.startswith("/openapi/"):
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
        if discovery.wants_aggregated(request.headers.get("accept", "")):
            await request.json(200, discovery.aggregated(core=path == "/api"), discovery.AGGREGATED_CONTENT_TYPE)
        else:
            await request.json(200, discovery.legacy_api() if path == "/api" else discovery.legacy_groups())

    async def openapi(self, request: Request, path: str) -> None:
        if path == "/openapi/v3":
            return await request.json(200, discovery.openapi_index())
        rest = path[len("/openapi/v3/"):].split("/") if path.startswith("/openapi/v3/") else []
        document = None
        if rest[:1] == ["api"] and len(rest) == 2:
            document = discovery.openapi_document("", rest[1])
        elif rest[:1] == ["apis"] and len(rest) == 3:
            document = discovery.openapi_document(rest[1], rest[2])
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
        if route.subresource == "log":
            return await self.pod_log(request, route)
        if route.subresource == "scale":
            return await self.scale(request, route)
        if verb == "get":
            obj = await self.store.get(resource, route.namespace, route.name)
            return await self.send_object(request, resource, obj)
        if verb in ("list", "watch"):
            return await (self.watch(request, route) if verb == "watch" else self.list(request, route))
        if verb == "create":
            if route.name:
                raise errors.method_not_allowed()
            return await self.create(request, route)
        if verb == "update":
            return await self.update(request, route)
        if verb == "patch":
            return await self.patch(request, route)
        if verb == "delete":
            return await self.delete(request, route)
        return await self.delete_collection(request, route)

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

    async def send_object(self, request: Request, resource: Resource, obj: dict, status: int = 200) -> None:
        obj = objects.with_type(resource, obj)
        if request.wants_table:
            return await request.json(status, tables.table(resource.kind, [obj], obj["metadata"]["resourceVersion"]),
                                      tables.TABLE_CONTENT_TYPE)
        await request.json(status, obj)

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
            route.resource, route.namespace, resource_version=request.query.get("resourceVersion"),
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

    async def create(self, request: Request, route: Route) -> None:
        resource = route.resource
        body = await request.body_object()
        objects.check_type(resource, body)
        obj = objects.prepare_create(resource, body, route.namespace)
        if route.namespace is not None:
            await self.require_namespace(route.namespace)
        admission.apply_defaults(resource, obj)
        admission.validate(resource, obj)
        if request.query.get("dryRun") == "All":
            unsaved = {**obj, "metadata": {**obj["metadata"], "resourceVersion": ""}}
            return await self.send_object(request, resource, unsaved, 201)
        allocated = await self.allocator.allocate(resource, obj)
        try:
            created = await self.store.create(resource, route.namespace, obj)
        except errors.APIError:
            await self.allocator.release(allocated)
            raise
        await self.send_object(request, resource, created, 201)

    async def require_namespace(self, namespace: str) -> None:
        cache = self.store.cache(BY_PATH[("", "v1", "namespaces")])
        if cache.objects.get(f"/registry/core/namespaces/{namespace}") is None:
            try:  # the cache may lag a namespace created a moment ago
                found = await self.store.get(BY_PATH[("", "v1", "namespaces")], None, namespace)
            except errors.APIError as err:
                if err.code == 404:
                    raise errors.APIError(
                        404,
                        "NotFound",
                        f'namespaces "{namespace}" not found',
                        {"name": namespace, "kind": "namespaces"},
                    ) from None
                raise
        else:
            found = cache.objects[f"/registry/core/namespaces/{namespace}"]
        if found["metadata"].get("deletionTimestamp"):
            raise errors.APIError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    async def update(self, request: Request, route: Route) -> None:
        resource = route.resource
        body = await request.body_object()
        objects.check_type(resource, body)
        name = (body.get("metadata") or {}).get("name")
        if name and name != route.name:
            raise errors.bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({route.name})"
            )
        body.setdefault("metadata", {})["name"] = route.name
        expected = parse_resource_version((body.get("metadata") or {}).get("resourceVersion"))
        await self.write(request, route, lambda current: body, expected)

    async def write(self, request: Request, route: Route, change, expected: int | None) -> None:
        """Read-modify-write with `change(current) -> new` (an update or a patch applied), the
        checks, defaulting and validation of an update, and finalizer-driven deletion."""
        resource = route.resource

        def mutate(current: dict) -> dict | None:
            if expected is not None and int(current["metadata"]["resourceVersion"]) != expected:
                raise errors.conflict(resource, route.name)
            new = objects.prepare_update(resource, current, change(current), route.subresource)
            admission.apply_defaults(resource, new)
            admission.validate(resource, new)
            return None if _same(new, current) else new

        result = await self.store.guaranteed_update(resource, route.namespace, route.name, mutate)
        meta = result["metadata"]
        if meta.get("deletionTimestamp") and not objects.pending_finalizers(result) and resource.kind != "Pod":
            await self.store.delete(resource, route.namespace, route.name, int(meta["resourceVersion"]))
        await self.send_object(request, resource, result)

    async def patch(self, request: Request, route: Route) -> None:
        content_type, body = await read_patch(request, allow_empty=True)
        patcher = PATCHERS.get(content_type)
        if patcher is None:
            raise errors.APIError(
                415,
                "UnsupportedMediaType",
                f"the patch content type {content_type!r} is not "
                "supported (json-patch, merge-patch, strategic-merge-patch)",
            )
        apply = lambda current: patcher(current, body)  # noqa: E731
        if content_type != "application/json-patch+json" and not isinstance(body, dict):
            raise errors.bad_request("a merge patch must be a JSON object")
        expected = None
        if isinstance(body, dict):
            expected = parse_resource_version((body.get("metadata") or {}).get("resourceVersion"))
        await self.write(request, route, apply, expected)

    async def delete(self, request: Request, route: Route) -> None:
        resource = route.resource
        options = await request.body_object(allow_empty=True)
        grace = options.get("gracePeriodSeconds", request.int_param("gracePeriodSeconds", -1))
        policy = options.get("propagationPolicy") or request.query.get("propagationPolicy") or "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"propagationPolicy {policy!r} is not Background, Foreground or Orphan")
        wanted_uid = (options.get("preconditions") or {}).get("uid")
        wanted_rv = (options.get("preconditions") or {}).get("resourceVersion")
        for _ in range(20):
            current = await self.store.get(resource, route.namespace, route.name)
            meta = current["metadata"]
            if wanted_uid and wanted_uid != meta.get("uid"):
                raise errors.conflict(
                    resource,
                    route.name,
                    f"Precondition failed: UID in precondition: {wanted_uid}, UID in object meta: {meta.get('uid')}",
                )
            if wanted_rv and wanted_rv != meta["resourceVersion"]:
                raise errors.conflict(resource, route.name)
            graceful = self.deletion_grace(resource, current, grace)
            finalizer = (
                {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy)
                if resource.kind not in ("Pod", "Event")
                else None
            )
            if graceful is None and not objects.pending_finalizers(current) and finalizer is None:
                try:
                    revision = await self.store.delete(
                        resource, route.namespace, route.name, int(meta["resourceVersion"])
                    )
                except errors.APIError as err:
                    if err.reason == "Conflict":
                        continue
                    raise
                await self.allocator.release(self.allocator.allocations_of(resource, current))
                gone = copy.deepcopy(current)
                gone["metadata"]["resourceVersion"] = str(revision)
                return await self.send_object(request, resource, gone)
            marked = objects.mark_deleting(current, graceful or 0, finalizer)
            if _same(marked, current):
                return await self.send_object(request, resource, current)
            try:
                updated = await self.store.update(resource, route.namespace, marked, int(meta["resourceVersion"]))
            except errors.APIError as err:
                if err.reason == "Conflict":
                    continue
                raise
            return await self.send_object(request, resource, updated)
        raise errors.conflict(resource, route.name, "too many concurrent writers, try again")

    @staticmethod
    def deletion_grace(resource: Resource, obj: dict, grace: int) -> int | None:
        """Seconds of graceful deletion, or None to delete at once. A pod bound to a node waits for
        its kubelet (as in Kubernetes); an unbound one, or grace 0, goes at once."""
        if resource.kind != "Pod" or not (obj.get("spec") or {}).get("nodeName") or grace == 0:
            return None
        if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            return None
        return grace if grace > 0 else (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)

    async def delete_collection(self, request: Request, route: Route) -> None:
        accept = self.matcher(request, route)
        items, _, _ = await self.store.list(route.resource, route.namespace)
        deleted = []
        for obj in items:
            if accept(obj):
                try:
                    await self.store.delete(
                        route.resource,
                        obj["metadata"].get("namespace"),
                        obj["metadata"]["name"],
                        int(obj["metadata"]["resourceVersion"]),
                    )
                    await self.allocator.release(self.allocator.allocations_of(route.resource, obj))
                    deleted.append(objects.with_type(route.resource, obj))
                except errors.APIError as err:
                    if err.code not in (404, 409):
                        raise
        await request.json(
            200,
            {
                "kind": route.resource.kind + "List",
                "apiVersion": route.resource.api_version,
                "metadata": {},
                "items": deleted,
            },
        )

    # --- subresources -------------------------------------------------------------------------

    async def scale(self, request: Request, route: Route) -> None:
        resource = route.resource
        if request.method == "GET":
            obj = await self.store.get(resource, route.namespace, route.name)
            return await request.json(200, objects.scale_of(resource, obj))
        if request.method == "PUT":
            body = await request.body_object()
            change = lambda current: objects.apply_scale(current, body)  # noqa: E731
        elif request.method == "PATCH":
            content_type, body = await read_patch(request)
            apply = PATCHERS.get(content_type, patch.merge_patch)
            change = lambda current: objects.apply_scale(current, apply(objects.scale_of(resource, current), body))  # noqa: E731
        else:
            raise errors.method_not_allowed()
        updated = await self.store.guaranteed_update(
            resource, route.namespace, route.name, lambda current: _bump(resource, current, change(current))
        )
        await request.json(200, objects.scale_of(resource, updated))

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
        form = "table" if request.wants_table else "json"
        line = event.encoded.get(form)
        if line is None:
            obj = objects.with_type(resource, event.object)
            if form == "table":
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


PATCHERS = {
    "application/json-patch+json": patch.json_patch,
    "application/merge-patch+json": patch.merge_patch,
    "application/strategic-merge-patch+json": patch.strategic_merge_patch,
}


async def read_patch(request: Request, allow_empty: bool = False) -> tuple[str, object]:
    """(content type without parameters, the decoded body; None if empty and allowed)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    raw = await request.body_bytes()
    try:
        return content_type, (jsoncodec.loads(raw) if raw or not allow_empty else None)
    except ValueError as err:
        raise errors.bad_request(f"the patch is not valid JSON: {err}") from None


def _bump(resource: Resource, current: dict, new: dict) -> dict | None:
    new = objects.prepare_update(resource, current, new, None)
    return None if _same(new, current) else new


def _same(a: dict, b: dict) -> bool:
    strip = lambda o: {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}}  # noqa: E731
    return strip(a) == strip(b)
