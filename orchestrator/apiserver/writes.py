"""The writing verbs: create, update, patch (three merge kinds and server-side apply), delete and
deletecollection, and the scale and eviction subresources.

Every write, as in Kubernetes:
- decodes and field-validates its body (bodies.py; `fieldValidation` Strict / Warn / Ignore);
- names a field manager (`fieldManager`, else the User-Agent's product) and keeps
  metadata.managedFields (fieldmanager/);
- may be a dry run (`dryRun=All`): everything is checked and the answer is the object as it
  would be stored, but nothing is stored, allocated or released;
- goes through admission (defaulting, validation) and the store's compare-and-swap.

Objects move between two shapes: the served one (what a resource's clients send and read; for
events.k8s.io a core Event in its newer form) and the stored one (objects.stored_form/with_type).
"""

from __future__ import annotations

import logging

from orchestrator.api import timestamps, types
from orchestrator.api.resources import BY_PATH, Resource, storage_owner
from orchestrator.apiserver import admission, bodies, errors, eviction, fieldvalidation, objects, patch
from orchestrator.apiserver.allocation import Allocator
from orchestrator.apiserver.fieldmanager import managedfields as mf
from orchestrator.apiserver.fieldmanager import typed
from orchestrator.apiserver.handlers import send_object
from orchestrator.apiserver.request import Request, Route
from orchestrator.apiserver.storage import DELETE, Store, parse_resource_version

log = logging.getLogger("ketch.apiserver.writes")

MAX_MANAGER_LENGTH = 128
ATTEMPTS = 20
PATCHERS = {bodies.JSON_PATCH: patch.json_patch, bodies.MERGE_PATCH: patch.merge_patch,
            bodies.STRATEGIC: patch.strategic_merge_patch}


# --- what a request asks for --------------------------------------------------------------------


def directive_of(request: Request) -> str:
    try:
        return fieldvalidation.directive(request.query.get("fieldValidation"))
    except ValueError as err:
        raise errors.bad_request(str(err)) from None


def dry_run(request: Request) -> bool:
    value = request.query.get("dryRun")
    if value in (None, ""):
        return False
    if value != "All":
        raise errors.bad_request(f'Invalid dry run value: {value!r}: supported values: "All"')
    return True


def manager_of(request: Request, applying: bool = False) -> str:
    """The request's field manager: fieldManager, else (not for apply) the User-Agent's product."""
    name = request.query.get("fieldManager")
    if not name:
        if applying:
            raise errors.APIError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required '
                                  "value: is required for apply patch")
        name = request.headers.get("user-agent", "").split("/", 1)[0][:MAX_MANAGER_LENGTH] or "unknown"
    if len(name) > MAX_MANAGER_LENGTH or not name.isprintable():
        raise errors.APIError(422, "Invalid", f"fieldManager: Invalid value: {name!r}: must be at most "
                              f"{MAX_MANAGER_LENGTH} printable characters")
    return name


def kind_of(resource: Resource) -> types.Message | None:
    return types.kind(resource.group, resource.version, resource.kind)


def context_of(resource: Resource) -> mf.Context:
    """The field manager's view of a resource's stored objects."""
    owner = storage_owner(resource)
    return mf.Context(kind_of(owner), owner.api_version, "status" in owner.subresources)


def _same(a: dict, b: dict) -> bool:
    strip = lambda o: {**o, "metadata": {k: v for k, v in o["metadata"].items() if k != "resourceVersion"}}  # noqa: E731
    return strip(a) == strip(b)


class Writes:
    def __init__(self, store: Store, allocator: Allocator, admit_pod=None) -> None:
        """admit_pod: an async hook changing a pod being created (the ServiceAccount admission)."""
        self.store, self.allocator, self.admit_pod = store, allocator, admit_pod

    async def send(self, request: Request, resource: Resource, obj: dict, status: int = 200) -> None:
        await send_object(request, resource, obj, status)

    # --- create -----------------------------------------------------------------------------

    async def create(self, request: Request, route: Route) -> None:
        if route.name:
            raise errors.method_not_allowed()
        resource = route.resource
        body = await request.body_object(msg=kind_of(resource), directive=directive_of(request))
        objects.check_type(resource, body)
        await self.insert(request, route, objects.stored_form(resource, body), manager_of(request),
                          lambda obj: mf.update(context_of(resource), None, obj, manager_of(request), timestamps.now()))

    async def insert(self, request: Request, route: Route, body: dict, manager: str, managed) -> None:
        """Store a new object made from `body`; managed(obj) gives its managedFields entries."""
        owner = storage_owner(route.resource)
        obj = objects.prepare_create(owner, body, route.namespace)
        if route.namespace is not None:
            await self.require_namespace(route.namespace)
        if owner.kind == "Pod" and self.admit_pod is not None:
            await self.admit_pod(obj)
        admission.apply_defaults(owner, obj)
        admission.validate_create(owner, obj)
        obj["metadata"]["managedFields"] = mf.encode(managed(obj))
        if dry_run(request):
            obj["metadata"]["resourceVersion"] = ""
            return await self.send(request, route.resource, obj, 201)
        allocated = await self.allocator.allocate(owner, obj)
        try:
            created = await self.store.create(owner, route.namespace, obj)
        except errors.APIError:
            await self.allocator.release(allocated)
            raise
        await self.send(request, route.resource, created, 201)

    async def require_namespace(self, namespace: str) -> None:
        """Objects are created only in a namespace that exists and is not being deleted."""
        found = await self.store.lookup(BY_PATH[("", "v1", "namespaces")], None, namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise errors.APIError(403, "Forbidden", f"unable to create new content in namespace {namespace} "
                                  "because it is being terminated")

    # --- update and patch ---------------------------------------------------------------------

    async def update(self, request: Request, route: Route) -> None:
        resource = route.resource
        body = await request.body_object(msg=kind_of(resource), directive=directive_of(request))
        objects.check_type(resource, body)
        name = (body.get("metadata") or {}).get("name")
        if name and name != route.name:
            raise errors.bad_request(f"the name of the object ({name}) does not match the name on the URL "
                                     f"({route.name})")
        body.setdefault("metadata", {})["name"] = route.name
        expected = parse_resource_version(body["metadata"].get("resourceVersion"))
        stored = objects.stored_form(resource, body)
        await self.write(request, route, lambda current: stored, expected, manager_of(request))

    async def patch(self, request: Request, route: Route) -> None:
        content_type = bodies.media_type(request.headers.get("content-type"))
        decoded = bodies.decode_patch(await request.body_bytes(), content_type)
        directive = directive_of(request)
        if decoded.warnings and directive == "Strict":
            raise errors.bad_request(fieldvalidation.strict_message(route.resource.kind, route.resource.version,
                                                                    decoded.warnings))
        request.warn(decoded.warnings if directive == "Warn" else [])
        if content_type == bodies.APPLY:
            return await self.apply(request, route, decoded.obj, directive)
        patcher, body, resource = PATCHERS[content_type], decoded.obj, route.resource

        def change(current: dict) -> dict:
            served = objects.with_type(resource, current)
            patched = patcher(served, body)
            if not isinstance(patched, dict):
                raise errors.bad_request("the patched object is not an object")
            checked = bodies.validate(patched, kind_of(resource), directive, known=served)
            request.warn(checked.warnings)
            return objects.stored_form(resource, checked.obj)
        expected = None
        if isinstance(body, dict):
            expected = parse_resource_version((body.get("metadata") or {}).get("resourceVersion"))
        await self.write(request, route, change, expected, manager_of(request))

    async def write(self, request: Request, route: Route, change, expected: int | None, manager: str) -> None:
        """Read-modify-write with change(current) -> the new object in stored form; the checks,
        defaulting and validation of an update, managedFields, finalizer-driven deletion."""
        owner, subresource = storage_owner(route.resource), route.subresource
        ctx = context_of(route.resource)

        def mutate(current: dict) -> dict | None:
            if expected is not None and int(current["metadata"]["resourceVersion"]) != expected:
                raise errors.conflict(owner, route.name)
            proposed = change(current)
            new = objects.prepare_update(owner, current, proposed, subresource)
            admission.apply_defaults(owner, new)
            admission.validate_update(owner, current, new, subresource)
            entries = mf.update(ctx, current, {**new, "metadata": {**new["metadata"], "managedFields": (
                proposed.get("metadata") or {}).get("managedFields")}}, manager, timestamps.now(), subresource or "")
            new["metadata"]["managedFields"] = mf.encode(entries)
            return None if _same(new, current) else new
        result = await self.mutate(request, route, mutate)
        meta = result["metadata"]
        if meta.get("deletionTimestamp") and not objects.pending_finalizers(result) and owner.kind != "Pod" \
                and not dry_run(request):
            await self.store.delete(owner, route.namespace, route.name, int(meta["resourceVersion"]))
        await self.send(request, route.resource, result)

    async def mutate(self, request: Request, route: Route, mutate) -> dict:
        """store.guaranteed_update, or for a dry run the same change computed on a fresh read."""
        owner = storage_owner(route.resource)
        if not dry_run(request):
            return await self.store.guaranteed_update(owner, route.namespace, route.name, mutate)
        current = await self.store.get(owner, route.namespace, route.name)
        changed = mutate(current)
        return current if changed is None else {**changed, "metadata": {
            **changed["metadata"], "resourceVersion": current["metadata"]["resourceVersion"]}}

    # --- server-side apply ----------------------------------------------------------------------

    async def apply(self, request: Request, route: Route, config: dict, directive: str) -> None:
        resource = route.resource
        manager = manager_of(request, applying=True)
        force = request.query.get("force") in ("true", "1")
        config = self.applied_config(request, route, config, directive)
        ctx = context_of(resource)
        now = timestamps.now()
        if route.subresource:
            raise errors.bad_request(f"Ketch does not take server-side apply on the {route.subresource} subresource; "
                                     "apply to the object itself, or patch the subresource")
        try:
            await self.store.get(storage_owner(resource), route.namespace, route.name)
        except errors.APIError as err:
            if err.code != 404:
                raise
            merged, entries = _applied(ctx, None, config, manager, force, now)
            return await self.insert(request, route, merged, manager, lambda obj: entries)

        def change_and_own(current: dict) -> dict | None:
            merged, entries = _applied(ctx, current, config, manager, force, now)
            owner = storage_owner(resource)
            new = objects.prepare_update(owner, current, merged, None)
            admission.apply_defaults(owner, new)
            admission.validate_update(owner, current, new)
            new["metadata"]["managedFields"] = mf.encode(entries)
            return None if _same(new, current) else new
        result = await self.mutate(request, route, change_and_own)
        await self.send(request, resource, result)

    @staticmethod
    def applied_config(request: Request, route: Route, config: dict, directive: str) -> dict:
        """The applied configuration, checked as Kubernetes checks it, in stored form."""
        resource = route.resource
        gvk = f"{resource.api_version}, Kind={resource.kind}"
        if not config.get("kind") or not config.get("apiVersion"):
            missing = "Kind" if not config.get("kind") else "apiVersion"
            raise errors.bad_request(f"Object '{missing}' is missing in the apply patch")
        if config["apiVersion"] != resource.api_version or config["kind"] != resource.kind:
            raise errors.bad_request(f"Incorrect version specified in apply patch. Specified patch version: "
                                     f"{config['apiVersion']}, expected: {resource.api_version}")
        meta = config.get("metadata")
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata of the apply patch must be an object")
        if meta.get("name") not in (None, route.name):
            raise errors.bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                                     f"({route.name})")
        if meta.get("managedFields") is not None:
            raise errors.bad_request("metadata.managedFields must be nil")
        where = f"({route.namespace or ''}/{route.name}; {gvk})"
        try:
            cleaned, unknown = fieldvalidation.check(config, kind_of(resource))
        except fieldvalidation.FieldTypeError as err:
            raise errors.bad_request(f"failed to create typed patch object {where}: {err}") from None
        if unknown and directive == "Strict":
            raise errors.bad_request(f"failed to create typed patch object {where}: "
                                     + "; ".join(f".{path}: field not declared in schema" for path in unknown))
        request.warn(fieldvalidation.problems(unknown, []) if directive == "Warn" else [])
        return objects.stored_form(resource, {**cleaned, "metadata": {**cleaned["metadata"], "name": route.name}})

    # --- delete -------------------------------------------------------------------------------

    async def delete(self, request: Request, route: Route) -> None:
        options = await request.body_object(allow_empty=True, msg=types.message("meta.v1.DeleteOptions"),
                                            directive=directive_of(request))
        dry = dry_run(request) or "All" in (options.get("dryRun") or [])
        grace = options.get("gracePeriodSeconds", request.int_param("gracePeriodSeconds", -1))
        policy = options.get("propagationPolicy") or request.query.get("propagationPolicy") or "Background"
        await self.send(request, route.resource, await self.remove(route, options, grace, policy, dry))

    async def remove(self, route: Route, options: dict, grace: int, policy: str, dry: bool) -> dict:
        """Delete (or mark for deletion: graceful pods, finalizers, foreground and orphan
        propagation) through the storage layer's one conflict loop; the object as the answer shows it."""
        owner = storage_owner(route.resource)
        if policy not in ("Background", "Foreground", "Orphan"):
            raise errors.bad_request(f"propagationPolicy {policy!r} is not Background, Foreground or Orphan")
        preconditions = options.get("preconditions") or {}
        finalizer = None if owner.kind in ("Pod", "Event") else \
            {"Foreground": "foregroundDeletion", "Orphan": "orphan"}.get(policy)

        def decide(current: dict):
            meta = current["metadata"]
            wanted_uid = preconditions.get("uid")
            if wanted_uid and wanted_uid != meta.get("uid"):
                raise errors.conflict(owner, route.name, f"Precondition failed: UID in precondition: {wanted_uid}, "
                                                         f"UID in object meta: {meta.get('uid')}")
            if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != meta["resourceVersion"]:
                raise errors.conflict(owner, route.name)
            graceful = deletion_grace(owner, current, grace)
            if graceful is None and not objects.pending_finalizers(current) and finalizer is None:
                return DELETE
            marked = objects.mark_deleting(current, graceful or 0, finalizer)
            return None if _same(marked, current) else marked
        if dry:
            current = await self.store.get(owner, route.namespace, route.name)
            decision = decide(current)
            return current if decision is None or decision is DELETE else decision
        result, deleted = await self.store.guaranteed_write(owner, route.namespace, route.name, decide)
        if deleted:
            await self.allocator.release(self.allocator.allocations_of(owner, result))
        return result

    async def delete_collection(self, request: Request, route: Route, accept) -> None:
        owner = storage_owner(route.resource)
        items, _, _ = await self.store.list(owner, route.namespace)
        deleted = []
        dry = dry_run(request)
        for obj in items:
            if not accept(obj):
                continue
            try:
                if not dry:
                    await self.store.delete(owner, obj["metadata"].get("namespace"), obj["metadata"]["name"],
                                            int(obj["metadata"]["resourceVersion"]))
                    await self.allocator.release(self.allocator.allocations_of(owner, obj))
                deleted.append(objects.with_type(route.resource, obj))
            except errors.APIError as err:
                if err.code not in (404, 409):
                    raise
        await request.json(200, {"kind": route.resource.kind + "List", "apiVersion": route.resource.api_version,
                                 "metadata": {}, "items": deleted})

    # --- subresources -------------------------------------------------------------------------

    async def scale(self, request: Request, route: Route) -> None:
        resource = route.resource
        if request.method == "GET":
            obj = await self.store.get(resource, route.namespace, route.name)
            return await request.json(200, objects.scale_of(resource, obj))
        if request.method == "PUT":
            body = await request.body_object(msg=types.message("autoscaling.v1.Scale"), directive=directive_of(request))
            change = lambda current: objects.apply_scale(current, body)  # noqa: E731
        elif request.method == "PATCH":
            content_type = bodies.media_type(request.headers.get("content-type"))
            decoded = bodies.decode_patch(await request.body_bytes(), content_type)
            apply = PATCHERS.get(content_type, patch.merge_patch)
            change = lambda current: objects.apply_scale(  # noqa: E731
                current, apply(objects.scale_of(resource, current), decoded.obj))
        else:
            raise errors.method_not_allowed()
        manager, ctx = manager_of(request), context_of(resource)

        def mutate(current: dict) -> dict | None:
            new = objects.prepare_update(resource, current, change(current), None)
            new["metadata"]["managedFields"] = mf.encode(mf.update(ctx, current, new, manager, timestamps.now(),
                                                                   "scale"))
            return None if _same(new, current) else new
        updated = await self.mutate(request, route, mutate)
        await request.json(200, objects.scale_of(resource, updated))

    async def evict(self, request: Request, route: Route) -> None:
        """POST pods/NAME/eviction: delete the pod once its disruption budget (if any) granted it
        (eviction.py; 429 when the budget allows no disruption now, so kubectl drain retries)."""
        body = await request.body_object(msg=types.kind("policy", "v1", "Eviction"), directive=directive_of(request))
        options = body.get("deleteOptions") or {}
        dry = dry_run(request) or "All" in (options.get("dryRun") or [])
        pod = await self.store.get(route.resource, route.namespace, route.name)
        await eviction.charge_budget(self.store, pod, dry)
        await self.remove(Route(route.resource, route.namespace, route.name, None), options,
                          options.get("gracePeriodSeconds", -1), options.get("propagationPolicy") or "Background", dry)
        await request.json(201, errors.success(code=201))


def _applied(ctx: mf.Context, current: dict | None, config: dict, manager: str, force: bool,
             now: str) -> tuple[dict, list[mf.Entry]]:
    try:
        return mf.apply(ctx, current, config, manager, force, now)
    except mf.ApplyConflict as conflict:
        raise errors.APIError(409, "Conflict", conflict.message(), {"causes": conflict.causes()}) from None
    except typed.ShapeError as err:
        raise errors.bad_request(f"failed to create typed patch object: {err}") from None


def deletion_grace(resource: Resource, obj: dict, grace: int) -> int | None:
    """Seconds of graceful deletion, or None to delete at once. A pod bound to a node waits for its
    kubelet (as in Kubernetes); an unbound one, or grace 0, goes at once."""
    if resource.kind != "Pod" or not (obj.get("spec") or {}).get("nodeName") or grace == 0:
        return None
    if (obj.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    return grace if grace > 0 else (obj.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
