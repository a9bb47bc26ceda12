"""Objects every namespace has, kept by a controller each, as Kubernetes' controller manager does:
- the `default` ServiceAccount (serviceaccount-controller);
- the `kube-root-ca.crt` ConfigMap holding the cluster CA under `ca.crt`
  (root-ca-cert-publisher), so a pod can check the API server's certificate.
Each is created when a namespace appears, again if someone deletes it, and (the ConfigMap)
put back if its data is changed. A namespace being deleted is left alone."""

from __future__ import annotations

from orchestrator.api.resources import BY_PATH, Resource
from orchestrator.client.api import CONFIGMAPS, NAMESPACES, APIStatusError
from orchestrator.controllers.base import Controller, ignore_missing

SERVICEACCOUNTS = BY_PATH[("", "v1", "serviceaccounts")]
DEFAULT = "default"
ROOT_CA = "kube-root-ca.crt"


class PerNamespaceObject(Controller):
    """Keeps one object named `object_name` of `res` in every live namespace, as `wanted` says."""
    res: Resource
    object_name: str

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.objects = ctx.informers.informer(self.res)
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.objects.add_handler(None, lambda old, new: self._object_event(new), self._object_event)

    def wanted(self, namespace: str) -> dict:
        raise NotImplementedError

    def matches(self, current: dict, wanted: dict) -> bool:
        return True

    def _object_event(self, obj: dict) -> None:
        if obj["metadata"]["name"] == self.object_name:
            self.queue.add(obj["metadata"]["namespace"])

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.get(key)
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return
        body = self.wanted(key)
        current = self.objects.get(f"{key}/{self.object_name}")
        if current is not None:
            if not self.matches(current, body):
                await ignore_missing(self.api.patch(self.res, key, self.object_name, body))
            return
        try:
            await self.api.create(self.res, key, body)
        except APIStatusError as err:
            if err.code not in (409, 403):  # 409: it exists; 403: the namespace began terminating
                raise


class ServiceAccountsController(PerNamespaceObject):
    name = "serviceaccount"
    res, object_name = SERVICEACCOUNTS, DEFAULT

    def wanted(self, namespace: str) -> dict:
        return {"metadata": {"name": DEFAULT, "namespace": namespace}}


class RootCAPublisher(PerNamespaceObject):
    name = "root-ca-cert-publisher"
    res, object_name = CONFIGMAPS, ROOT_CA

    def __init__(self, ctx, ca_pem: bytes) -> None:
        self.ca = ca_pem.decode()
        super().__init__(ctx)

    def wanted(self, namespace: str) -> dict:
        return {"metadata": {"name": ROOT_CA, "namespace": namespace}, "data": {"ca.crt": self.ca}}

    def matches(self, current: dict, wanted: dict) -> bool:
        return current.get("data") == wanted["data"]
