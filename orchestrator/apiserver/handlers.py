"""The reading verbs (get, list) and the subresources binding and log; the writing verbs are in
writes.py. A resource that is a view of another's storage (events.k8s.io events, autoscaling/v1
autoscalers) reads from that storage and answers in its own shape."""

from __future__ import annotations

from orchestrator.api import selectors
from orchestrator.api.resources import BY_PATH, Resource, storage_owner
from orchestrator.apiserver import errors, objects, tables
from orchestrator.apiserver.allocation import Allocator
from orchestrator.apiserver.kubelet_client import KubeletClient
from orchestrator.apiserver.request import Request, Route
from orchestrator.apiserver.storage import Store

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
    # spec.nodeName=X (a kubelet's pods; "" the scheduler's unbound ones): the watch cache indexes
    # such watches by node, as Kubernetes' cacher does, instead of offering them every pod event
    accept.node = next((f.value for f in fields if f.field == "spec.nodeName" and not f.negated), None)
    return accept


async def send_object(request: Request, resource: Resource, obj: dict, status: int = 200) -> None:
    """An object as `resource` serves it: JSON, or a one-row Table when the client asks for one."""
    obj = objects.with_type(resource, obj)
    if request.wants_table:
        return await request.json(status, tables.table(resource.kind, [obj], obj["metadata"]["resourceVersion"],
                                                       request.table_rows_carry()), tables.TABLE_CONTENT_TYPE)
    await request.json(status, obj)


class Verbs:
    def __init__(self, store: Store, allocator: Allocator, kubelet: KubeletClient | None = None) -> None:
        self.store, self.allocator = store, allocator
        self.kubelet = kubelet or KubeletClient()

    async def get(self, request: Request, route: Route) -> None:
        obj = await self.store.get(storage_owner(route.resource), route.namespace, route.name)
        await send_object(request, route.resource, obj)

    async def list(self, request: Request, route: Route) -> None:
        accept = matcher(request, route)
        limit = request.int_param("limit", 0)
        items, revision, token = await self.store.list(
            storage_owner(route.resource), route.namespace, resource_version=request.query.get("resourceVersion"),
            limit=limit, continue_token=request.query.get("continue") or None)
        items = [objects.with_type(route.resource, obj) for obj in items if accept(obj)]
        if request.wants_table:
            body = tables.table(route.resource.kind, items, str(revision), request.table_rows_carry())
            if token:
                body["metadata"]["continue"] = token
            return await request.json(200, body, tables.TABLE_CONTENT_TYPE)
        meta = {"resourceVersion": str(revision)}
        if token:
            meta["continue"] = token
        await request.json(200, {"kind": route.resource.kind + "List", "apiVersion": route.resource.api_version,
                                 "metadata": meta, "items": items})

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
        await proxy_log(request, pod, node, self.kubelet)
