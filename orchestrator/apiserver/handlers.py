"""The verbs on resources (get, list, create, update, patch, delete, deletecollection) and the
subresources scale, binding and log. Each read-modify-write goes through the storage layer's
guaranteed update (one conflict loop for every verb, deletion included)."""

from __future__ import annotations

from orchestrator.api import selectors
from orchestrator.api.resources import BY_PATH, Resource
from orchestrator.apiserver import admission, errors, jsoncodec, objects, patch, tables
from orchestrator.apiserver.allocation import Allocator
from orchestrator.apiserver.request import Request, Route
from orchestrator.apiserver.storage import DELETE, Store, parse_resource_version

NAMESPACES, NODES = BY_PATH[("", "v1", "namespaces")], BY_PATH[("", "v1", "nodes")]


def matcher(request: Request, route: Route):
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


class Verbs:
    def __init__(self, store: Store, allocator: Allocator) -> None:
        self.store, self.allocator = store, allocator

    async def get(self, request: Request, route: Route) -> None:
        obj = await self.store.get(route.resource, route.namespace, route.name)
        await self.send_object(request, route.resource, obj)

    async def send_object(self, request: Request, resource: Resource, obj: dict, status: int = 200) -> None:
        obj = objects.with_type(resource, obj)
        if request.wants_table:
            return await request.json(status, tables.table(resource.kind, [obj], obj["metadata"]["resourceVersion"]),
                                      tables.TABLE_CONTENT_TYPE)
        await request.json(status, obj)

    async def list(self, request: Request, route: Route) -> None:
        accept = matcher(request, route)
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
        """Objects are created only in a namespace that exists and is not being deleted."""
        found = await self.store.lookup(NAMESPACES, None, namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise errors.APIError(403, "Forbidden", f"unable to create new content in namespace {namespace} "
                                                    "because it is being terminated")

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
        preconditions = options.get("preconditions") or {}
        finalizer = None if resource.kind in ("Pod", "Event") else \
            {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy)

        def decide(current: dict):
            meta = current["metadata"]
            wanted_uid = preconditions.get("uid")
            if wanted_uid and wanted_uid != meta.get("uid"):
                raise errors.conflict(resource, route.name, f"Precondition failed: UID in precondition: {wanted_uid}, "
                                                            f"UID in object meta: {meta.get('uid')}")
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta["resourceVersion"]:
                raise errors.conflict(resource, route.name)
            graceful = self.deletion_grace(resource, current, grace)
            if graceful is None and not objects.pending_finalizers(current) and finalizer is None:
                return DELETE
            marked = objects.mark_deleting(current, graceful or 0, finalizer)
            return None if _same(marked, current) else marked

        result, deleted = await self.store.guaranteed_write(resource, route.namespace, route.name, decide)
        if deleted:
            await self.allocator.release(self.allocator.allocations_of(resource, result))
        await self.send_object(request, resource, result)

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
        accept = matcher(request, route)
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

    async def bind_request(self, request: Request, route: Route) -> None:
        await self.bind(request, route, await request.body_object())

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
        node = await self.store.get(NODES, None, node_name)
        await proxy_log(request, pod, node)


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
