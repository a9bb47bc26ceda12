"""Garbage collection through ownerReferences, and namespace deletion.

- Background: a dependent whose owners are all gone (confirmed by the API, not only the cache)
  is deleted.
- Foreground: an owner being deleted with the `foregroundDeletion` finalizer has its dependents
  deleted first; when none is left, the finalizer goes and the API server removes the owner.
- Orphan: an owner with the `orphan` finalizer has its reference removed from every dependent,
  then the finalizer.
- Namespaces: a namespace being deleted has everything in it deleted, then its `kubernetes`
  finalizer removed, and the API server removes it.
Both sweep once a second (level-triggered on the informers' state).
"""

from __future__ import annotations

import trio

from orchestrator.api.resources import BY_PATH, OWNS_STORAGE
from orchestrator.client.api import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    NAMESPACES,
    PODS,
    REPLICASETS,
    SERVICES,
    APIStatusError,
)
from orchestrator.controllers.base import Controller, ignore_missing

JOBS = BY_PATH[("batch", "v1", "jobs")]
OWNERS = {"Deployment": DEPLOYMENTS, "ReplicaSet": REPLICASETS, "Service": SERVICES,
          "StatefulSet": BY_PATH[("apps", "v1", "statefulsets")], "DaemonSet": BY_PATH[("apps", "v1", "daemonsets")],
          "Job": JOBS, "CronJob": BY_PATH[("batch", "v1", "cronjobs")]}
DEPENDENTS = [REPLICASETS, PODS, ENDPOINTSLICES, JOBS]


class GarbageCollector(Controller):
    name = "garbagecollector"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.owner_informers = {kind: ctx.informers.informer(res) for kind, res in OWNERS.items()}
        self.dependents = [(res, ctx.informers.informer(res)) for res in DEPENDENTS]
        for informer in self.owner_informers.values():
            informer.add_index("uid", lambda o: [o["metadata"]["uid"]])

    def owner_present(self, ref: dict, namespace: str | None) -> bool:
        informer = self.owner_informers.get(ref.get("kind"))
        return informer is None or bool(informer.by_index("uid", ref.get("uid", "")))

    async def owner_gone(self, ref: dict, namespace: str | None) -> bool:
        """Checked against the API: the cache may simply not have seen a new owner yet."""
        try:
            owner = await self.api.get(OWNERS[ref["kind"]], namespace, ref["name"])
        except APIStatusError as err:
            if err.code == 404:
                return True
            raise
        return owner["metadata"]["uid"] != ref.get("uid")

    def dependents_of(self, uid: str) -> list[tuple]:
        return [(res, obj) for res, informer in self.dependents for obj in informer.items()
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])]

    async def sweep(self) -> None:
        for res, informer in self.dependents:
            for obj in informer.items():
                refs = obj["metadata"].get("ownerReferences") or []
                namespace = obj["metadata"].get("namespace")
                if not refs or obj["metadata"].get("deletionTimestamp") or \
                        any(self.owner_present(ref, namespace) for ref in refs):
                    continue
                if all([await self.owner_gone(ref, namespace) for ref in refs]):
                    await ignore_missing(self.api.delete(res, namespace, obj["metadata"]["name"],
                                                         propagation="Background", uid=obj["metadata"]["uid"]))
        for kind, informer in self.owner_informers.items():
            for owner in informer.items():
                finalizers = owner["metadata"].get("finalizers") or []
                if owner["metadata"].get("deletionTimestamp") and {"foregroundDeletion", "orphan"} & set(finalizers):
                    await self.finish(OWNERS[kind], owner, finalizers)

    async def finish(self, res, owner: dict, finalizers: list[str]) -> None:
        meta = owner["metadata"]
        dependents = self.dependents_of(meta["uid"])
        if "orphan" in finalizers:
            for dep_res, dep in dependents:
                refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != meta["uid"]]
                await ignore_missing(self.api.patch(dep_res, dep["metadata"].get("namespace"), dep["metadata"]["name"],
                                                    {"metadata": {"ownerReferences": refs or None}}))
            remaining = []
        else:
            for dep_res, dep in dependents:
                if not dep["metadata"].get("deletionTimestamp"):
                    await ignore_missing(
                        self.api.delete(
                            dep_res, dep["metadata"].get("namespace"), dep["metadata"]["name"], propagation="Foreground"
                        )
                    )
            remaining = dependents
        if not remaining:
            left = [f for f in finalizers if f not in ("foregroundDeletion", "orphan")]
            await ignore_missing(
                self.api.patch(
                    res,
                    meta.get("namespace"),
                    meta["name"],
                    {"metadata": {"finalizers": left or None, "resourceVersion": meta["resourceVersion"]}},
                )
            )

    async def run(self) -> None:
        while True:
            try:
                self.ctx.reconciles.labels(controller=self.name).inc()
                await self.sweep()
            except Exception as err:  # noqa: BLE001 - one failed sweep; the next second tries again
                self._failed("sweep", err)
            await trio.sleep(1.0)


class NamespaceController(Controller):
    name = "namespace"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.namespaces = ctx.informers.informer(NAMESPACES)

    async def empty(self, namespace: str) -> bool:
        left = 0
        for res in OWNS_STORAGE:
            if not res.namespaced:
                continue
            listing = await self.api.list(res, namespace)
            for obj in listing["items"]:
                left += 1
                if not obj["metadata"].get("deletionTimestamp"):
                    await ignore_missing(
                        self.api.delete(
                            res, namespace, obj["metadata"]["name"], grace_period_s=0, propagation="Background"
                        )
                    )
                elif res is PODS:
                    await ignore_missing(self.api.delete(res, namespace, obj["metadata"]["name"], grace_period_s=0))
        return left == 0

    async def run(self) -> None:
        while True:
            for namespace in self.namespaces.items():
                meta = namespace["metadata"]
                if meta.get("deletionTimestamp") and "kubernetes" in (
                    (namespace.get("spec") or {}).get("finalizers") or []
                ):
                    try:
                        self.ctx.reconciles.labels(controller=self.name).inc()
                        if await self.empty(meta["name"]):
                            await ignore_missing(
                                self.api.patch(NAMESPACES, None, meta["name"], {"spec": {"finalizers": []}})
                            )
                    except Exception as err:  # noqa: BLE001 - retried next second
                        self._failed(meta["name"], err)
            await trio.sleep(1.0)
