"""Deployment: ReplicaSets by pod-template-hash, rolled by RollingUpdate (maxSurge, maxUnavailable)
or Recreate, with revisions (`kubectl rollout undo` reads them), pause, and the status fields and
conditions `kubectl rollout status` and `describe` read.

Availability is counted from the pods themselves (Ready for minReadySeconds), not from the
ReplicaSets' status, so a scale-down never rests on a count that has not caught up.
"""

from __future__ import annotations

import copy
import time

from orchestrator.api import timestamps
from orchestrator.api.meta import controller_of, split_key
from orchestrator.api.pods import is_active, is_available, is_ready
from orchestrator.client.api import DEPLOYMENTS, PODS, REPLICASETS
from orchestrator.controllers.base import Controller, ignore_missing
from orchestrator.controllers.plans.revisions import comparable, template_hash
from orchestrator.controllers.plans.rollout import SetState, plan_rolling_update, surge_and_unavailable

REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"


class DeploymentController(Controller):
    name = "deployment"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.deployments = ctx.informers.informer(DEPLOYMENTS)
        self.sets = ctx.informers.informer(REPLICASETS)
        self.pods = ctx.informers.informer(PODS)
        self.sets.add_index("owner", lambda rs: [ref["uid"] for ref in [controller_of(rs)] if ref])
        self.pods.add_index("owner", lambda p: [ref["uid"] for ref in [controller_of(p)] if ref])
        self.deployments.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.sets.add_handler(self._owned_event, lambda old, new: self._owned_event(new), self._owned_event)
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)

    def _owned_event(self, rs: dict) -> None:
        self.enqueue_owner(rs, "Deployment")

    def _pod_event(self, pod: dict) -> None:
        ref = controller_of(pod)
        if ref and ref.get("kind") == "ReplicaSet":
            rs = self.sets.get(f"{pod['metadata']['namespace']}/{ref['name']}")
            if rs is not None:
                self._owned_event(rs)

    def available(self, rs: dict, min_ready: int) -> int:
        now = time.time()
        return sum(is_available(p, min_ready, now) for p in self.pods.by_index("owner", rs["metadata"]["uid"]))

    def active(self, rs: dict) -> int:
        return sum(is_active(p) for p in self.pods.by_index("owner", rs["metadata"]["uid"]))

    async def reconcile(self, key: str) -> None:
        deployment = self.deployments.get(key)
        if deployment is None or deployment["metadata"].get("deletionTimestamp"):
            return
        sets = [rs for rs in self.sets.by_index("owner", deployment["metadata"]["uid"])
                if not rs["metadata"].get("deletionTimestamp")]
        spec = deployment.get("spec") or {}
        wanted_hash = template_hash(spec.get("template") or {})
        wanted = comparable(spec.get("template") or {})  # as Kubernetes: equal templates, the hash aside
        new = next((rs for rs in sets if comparable((rs.get("spec") or {}).get("template") or {}) == wanted), None)
        old = [rs for rs in sets if rs is not new]
        if spec.get("paused"):
            return await self.update_status(deployment, new, old)
        if new is None:
            new = await self.create_replicaset(deployment, wanted_hash, old)  # with the next revision
            if new is None:
                return
        revision = self.max_revision(old, new)
        if (new["metadata"].get("annotations") or {}).get(REVISION) != str(revision):
            await self.bump_revision(new, revision)
        await self.record_revision(deployment, str(revision))
        strategy = (spec.get("strategy") or {}).get("type", "RollingUpdate")
        if strategy == "Recreate":
            await self.recreate(deployment, new, old)
        else:
            await self.roll(deployment, new, old)
        await self.cleanup(deployment, old)
        await self.update_status(deployment, new, old)

    @staticmethod
    def max_revision(old: list[dict], new: dict | None) -> int:
        revisions = [int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")) for rs in old]
        current = int(((new or {}).get("metadata", {}).get("annotations") or {}).get(REVISION, "0"))
        top = max(revisions, default=0)
        return current if current > top else top + 1

    async def bump_revision(self, rs: dict, revision: int) -> None:
        meta = rs["metadata"]
        await ignore_missing(self.api.patch(REPLICASETS, meta["namespace"], meta["name"],
                                            {"metadata": {"annotations": {REVISION: str(revision)}}}))

    async def record_revision(self, deployment: dict, revision: str) -> None:
        """The Deployment carries its new ReplicaSet's revision, as Kubernetes' controller writes it
        (`kubectl describe` shows it; `kubectl rollout undo` replaces metadata.annotations with a
        JSON patch, which fails on a Deployment that has none, as one made by `kubectl create`)."""
        meta = deployment["metadata"]
        if (meta.get("annotations") or {}).get(REVISION) != revision:
            await ignore_missing(self.api.patch(DEPLOYMENTS, meta["namespace"], meta["name"],
                                                {"metadata": {"annotations": {REVISION: revision}}}))

    async def create_replicaset(self, deployment: dict, wanted_hash: str, old: list[dict]) -> dict | None:
        meta, spec = deployment["metadata"], deployment.get("spec") or {}
        template = copy.deepcopy(spec.get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = wanted_hash
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = wanted_hash
        surge, _ = surge_and_unavailable(deployment)
        replicas = spec.get("replicas", 1)
        running = sum((rs.get("spec") or {}).get("replicas", 0) for rs in old)
        start = replicas if (spec.get("strategy") or {}).get("type") != "Recreate" and running == 0 else 0
        if (spec.get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate" and running:
            start = max(0, min(replicas, replicas + surge - running))
        body = {"metadata": {"name": f"{meta['name']}-{wanted_hash}", "namespace": meta["namespace"],
                             "labels": template["metadata"]["labels"],
                             "annotations": {REVISION: str(self.max_revision(old, None))},
                             "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                                  "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
                "spec": {"replicas": start, "minReadySeconds": spec.get("minReadySeconds", 0),
                         "selector": selector, "template": template}}
        try:
            created = await self.api.create(REPLICASETS, meta["namespace"], body)
        except Exception as err:  # AlreadyExists: the informer will bring it; others are retried
            if "AlreadyExists" not in str(err):
                raise
            return None
        self.ctx.events.record(deployment, "Deployment", "Normal", "ScalingReplicaSet",
                               f"Scaled up replica set {body['metadata']['name']} to {start}")
        return created

    async def scale(self, deployment: dict, rs: dict, replicas: int) -> None:
        current = (rs.get("spec") or {}).get("replicas", 0)
        if current == replicas:
            return
        meta = rs["metadata"]
        await ignore_missing(self.api.patch(REPLICASETS, meta["namespace"], meta["name"],
                                            {"spec": {"replicas": replicas}}))
        rs.setdefault("spec", {})["replicas"] = replicas  # later steps in this pass see the new size
        verb = "up" if replicas > current else "down"
        self.ctx.events.record(
            deployment,
            "Deployment",
            "Normal",
            "ScalingReplicaSet",
            f"Scaled {verb} replica set {meta['name']} to {replicas} from {current}",
        )

    async def roll(self, deployment: dict, new: dict, old: list[dict]) -> None:
        spec = deployment.get("spec") or {}
        replicas, min_ready = spec.get("replicas", 1), spec.get("minReadySeconds", 0)
        surge, unavailable = surge_and_unavailable(deployment)
        old = sorted(old, key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION, "0")))

        def state(rs: dict) -> SetState:
            return SetState(rs["metadata"]["name"], (rs.get("spec") or {}).get("replicas", 0),
                            self.available(rs, min_ready))
        plan = plan_rolling_update(replicas, surge, unavailable, state(new), [state(rs) for rs in old])
        for rs in [new, *old]:
            if rs["metadata"]["name"] in plan:
                await self.scale(deployment, rs, plan[rs["metadata"]["name"]])

    async def recreate(self, deployment: dict, new: dict, old: list[dict]) -> None:
        for rs in old:
            await self.scale(deployment, rs, 0)
        if any(self.active(rs) for rs in old):
            return  # wait for the old pods to be gone
        await self.scale(deployment, new, (deployment.get("spec") or {}).get("replicas", 1))

    async def cleanup(self, deployment: dict, old: list[dict]) -> None:
        limit = (deployment.get("spec") or {}).get("revisionHistoryLimit", 10)
        idle = sorted(
            (rs for rs in old if (rs.get("spec") or {}).get("replicas", 0) == 0 and not self.active(rs)),
            key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION, "0")),
        )
        for rs in idle[: max(0, len(idle) - limit)]:
            await ignore_missing(self.api.delete(REPLICASETS, rs["metadata"]["namespace"], rs["metadata"]["name"]))

    async def update_status(self, deployment: dict, new: dict | None, old: list[dict]) -> None:
        spec = deployment.get("spec") or {}
        replicas, min_ready = spec.get("replicas", 1), spec.get("minReadySeconds", 0)
        sets = [rs for rs in [new, *old] if rs is not None]
        pods = [p for rs in sets for p in self.pods.by_index("owner", rs["metadata"]["uid"]) if is_active(p)]
        updated = sum(is_active(p) for p in self.pods.by_index("owner", new["metadata"]["uid"])) if new else 0
        available = sum(self.available(rs, min_ready) for rs in sets)
        _, unavailable = surge_and_unavailable(deployment)
        complete = updated == replicas and len(pods) == replicas and available >= replicas
        previous = {c.get("type"): c for c in (deployment.get("status") or {}).get("conditions") or []}

        def condition(kind: str, status: str, reason: str, message: str) -> dict:
            old_condition = previous.get(kind) or {}
            same = old_condition.get("status") == status
            stamp = timestamps.now()
            return {
                "type": kind,
                "status": status,
                "reason": reason,
                "message": message,
                "lastUpdateTime": old_condition.get("lastUpdateTime", stamp)
                if same and old_condition.get("reason") == reason
                else stamp,
                "lastTransitionTime": old_condition.get("lastTransitionTime", stamp) if same else stamp,
            }

        name = (new or {}).get("metadata", {}).get("name", "")
        conditions = [
            condition(
                "Available",
                "True" if available >= replicas - unavailable else "False",
                "MinimumReplicasAvailable" if available >= replicas - unavailable else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available >= replicas - unavailable
                else "Deployment does not have minimum availability.",
            ),
            condition(
                "Progressing",
                "True",
                "NewReplicaSetAvailable" if complete else "ReplicaSetUpdated",
                f'ReplicaSet "{name}" has successfully progressed.'
                if complete
                else f'ReplicaSet "{name}" is progressing.',
            ),
        ]
        status = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": len(pods),
            "updatedReplicas": updated,
            "readyReplicas": sum(is_ready(p) for p in pods),
            "availableReplicas": available,
            "unavailableReplicas": max(0, replicas - available),
            "conditions": conditions,
        }
        current = deployment.get("status") or {}
        if any(current.get(k) != v for k, v in status.items() if k != "conditions") or [
            (c["type"], c["status"], c["reason"]) for c in current.get("conditions") or []
        ] != [(c["type"], c["status"], c["reason"]) for c in conditions]:
            namespace, dname = split_key(f"{deployment['metadata']['namespace']}/{deployment['metadata']['name']}")
            await ignore_missing(
                self.api.patch(DEPLOYMENTS, namespace, dname, {"status": status}, subresource="status")
            )
        if min_ready and not complete:
            self.queue.add_after(f"{deployment['metadata']['namespace']}/{deployment['metadata']['name']}", 1.0)
