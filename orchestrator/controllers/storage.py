"""The volume controller and the lab's local-path provisioner: informers on claims, volumes, storage
classes and the cleanup helper pods; one pass over all of them (the plan in plans/storage.py is
about their relations) whenever any changes. It also makes sure the default `local-path`
StorageClass exists, as k3s ships it, with volumes under --local-path-root on each node."""

from __future__ import annotations

import time

from orchestrator.api.volumes import DEFAULT_CLASS
from orchestrator.client.api import PODS, APIStatusError, resource
from orchestrator.controllers import actions
from orchestrator.controllers.base import Controller, ignore_missing
from orchestrator.controllers.plans.storage import CLEANUP_LABEL, PROVISIONER, plan

EVERYTHING = "all"


class VolumeController(Controller):
    name = "persistentvolume"
    workers = 1  # one pass sees every claim and volume: no two passes at once

    def __init__(self, ctx, local_path_root: str = "/var/lib/ketch/local-path") -> None:
        super().__init__(ctx)
        self.root = local_path_root
        self.claims_resource = resource("persistentvolumeclaims")
        self.volumes_resource = resource("persistentvolumes")
        self.classes_resource = resource("storageclasses", "storage.k8s.io")
        self.claims = ctx.informers.informer(self.claims_resource)
        self.volumes = ctx.informers.informer(self.volumes_resource)
        self.classes = ctx.informers.informer(self.classes_resource)
        self.pods = ctx.informers.informer(PODS)
        for informer in (self.claims, self.volumes, self.classes):
            informer.add_handler(self._changed, lambda old, new: self._changed(new), self._changed)
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), None)
        self.queue.add(EVERYTHING)

    def _changed(self, _obj: dict) -> None:
        self.queue.add(EVERYTHING)

    def _pod_event(self, pod: dict) -> None:
        if (pod["metadata"].get("labels") or {}).get(CLEANUP_LABEL):
            self.queue.add(EVERYTHING)

    async def ensure_default_class(self) -> None:
        if self.classes.items():
            return
        body = {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "local-path", "annotations": {DEFAULT_CLASS: "true"}},
                "provisioner": PROVISIONER, "reclaimPolicy": "Delete", "volumeBindingMode": "WaitForFirstConsumer",
                "parameters": {"path": self.root}}
        await actions.create_each(self.api, self.classes_resource, None, [body])

    async def reconcile(self, key: str) -> None:
        await self.ensure_default_class()
        helpers = [p for p in self.pods.items() if (p["metadata"].get("labels") or {}).get(CLEANUP_LABEL)]
        result = plan(self.claims.items(), self.volumes.items(), self.classes.items(), helpers, time.time())
        await actions.create_each(self.api, self.volumes_resource, None, result.create_volumes)
        for name, patch in result.volume_patches:
            await ignore_missing(self.api.patch(self.volumes_resource, None, name, patch))
        for namespace, name, patch in result.claim_patches:
            await ignore_missing(self.api.patch(self.claims_resource, namespace, name, patch))
        for namespace, name, status in result.claim_statuses:
            await ignore_missing(self.api.patch(self.claims_resource, namespace, name, {"status": status},
                                                subresource="status"))
        for name, status in result.volume_statuses:
            await ignore_missing(self.api.patch(self.volumes_resource, None, name, {"status": status},
                                                subresource="status"))
        for pod in result.cleanup_pods:
            try:
                await self.api.create(PODS, pod["metadata"]["namespace"], pod)
            except APIStatusError as err:
                if err.code != 409:
                    raise
        await actions.delete_each(self.api, self.volumes_resource, None, result.delete_volumes)
        for namespace, name in result.delete_pods:
            await actions.delete_each(self.api, PODS, namespace, [name])
        for obj, kind, event_type, reason, message in result.events:
            self.ctx.events.record(obj, kind, event_type, reason, message)
