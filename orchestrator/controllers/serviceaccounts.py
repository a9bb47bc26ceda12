"""The ServiceAccounts controller: every namespace that is not being deleted has a `default`
ServiceAccount (Kubernetes' serviceaccount-controller), created when the namespace appears and
again if someone deletes it."""

from __future__ import annotations

from orchestrator.api.resources import BY_PATH
from orchestrator.client.api import NAMESPACES, APIStatusError
from orchestrator.controllers.base import Controller

SERVICEACCOUNTS = BY_PATH[("", "v1", "serviceaccounts")]
DEFAULT = "default"


class ServiceAccountsController(Controller):
    name = "serviceaccount"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.namespaces = ctx.informers.informer(NAMESPACES)
        self.accounts = ctx.informers.informer(SERVICEACCOUNTS)
        self.namespaces.add_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.accounts.add_handler(None, None, self._account_deleted)

    def _account_deleted(self, account: dict) -> None:
        if account["metadata"]["name"] == DEFAULT:
            self.queue.add(account["metadata"]["namespace"])

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.get(key)
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return
        if self.accounts.get(f"{key}/{DEFAULT}") is not None:
            return
        try:
            await self.api.create(SERVICEACCOUNTS, key, {"metadata": {"name": DEFAULT, "namespace": key}})
        except APIStatusError as err:
            if err.code not in (409, 403):  # 409: it exists; 403: the namespace began terminating
                raise
