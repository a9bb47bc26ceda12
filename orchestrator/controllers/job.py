"""The Job controller (and the TTL-after-finished controller): informers on Jobs and their pods,
one reconcile per Job that runs the pure plan (plans/job.py) and carries it out in the order
finalizer tracking needs: the status with newly finished pods first, then their finalizers off,
then deletions and creations. A pod whose Job is gone loses its tracking finalizer, so garbage
collection can remove it; a finished Job with ttlSecondsAfterFinished is deleted when it expires."""

from __future__ import annotations

import time

from orchestrator.api.meta import controller_of, split_key
from orchestrator.client.api import PODS, APIStatusError, resource
from orchestrator.controllers import actions
from orchestrator.controllers.base import Controller, ignore_missing
from orchestrator.controllers.expectations import Expectations
from orchestrator.controllers.plans.job import TRACKING_FINALIZER, plan, ttl_expiry


class JobController(Controller):
    name = "job"

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.jobs_resource = resource("jobs", "batch")
        self.jobs = ctx.informers.informer(self.jobs_resource)
        self.pods = ctx.informers.informer(PODS)
        self.pods.add_index("owner", lambda p: [ref["uid"] for ref in [controller_of(p)] if ref])
        self.jobs.add_index("uid", lambda j: [j["metadata"]["uid"]])
        self.jobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.expectations = Expectations()
        self.pods.add_handler(self._pod_event, lambda old, new: self._pod_event(new), self._pod_event)

    def _pod_event(self, pod: dict) -> None:
        ref = controller_of(pod)
        if ref and ref.get("kind") == "Job":
            self.queue.add(f"{pod['metadata']['namespace']}/{ref['name']}")
            if TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or []) and \
                    not self.jobs.by_index("uid", ref.get("uid", "")):
                self.queue.add(f"orphan:{pod['metadata']['namespace']}/{pod['metadata']['name']}")

    async def reconcile(self, key: str) -> None:
        if key.startswith("orphan:"):
            return await self.release_orphan(key[len("orphan:"):])
        job = self.jobs.get(key)
        if job is None:
            return
        namespace, _ = split_key(key)
        now = time.time()
        expiry = ttl_expiry(job)
        if expiry is not None:
            if now >= expiry:
                await actions.delete_each(self.api, self.jobs_resource, namespace, [job["metadata"]["name"]],
                                          propagation="Background")
                return
            self.queue.add_after(key, expiry - now)
        pods = self.pods.by_index("owner", job["metadata"]["uid"])
        if not self.expectations.satisfied(job["metadata"]["uid"], pods, now):
            self.queue.add_after(key, 1.0)  # the pod events of our last writes will bring it back sooner
            return
        result = plan(job, pods, now)
        # finished pods are recorded in the status before their finalizers go: nothing counted twice or lost
        await actions.write_status(self.api, self.jobs_resource, job, result.status)
        for name in result.remove_finalizer:
            await self.drop_finalizer(namespace, name)
        self.expectations.expect(job["metadata"]["uid"], [], result.delete, now)
        await actions.delete_each(self.api, PODS, namespace, result.delete)
        created = await actions.create_each(self.api, PODS, namespace, result.create)
        self.expectations.expect(job["metadata"]["uid"], [p["metadata"]["name"] for p in created], result.delete, now)
        if result.create:
            result.events.append(("Normal", "SuccessfulCreate",
                                  f"Created pod(s) {len(result.create)} for job {job['metadata']['name']}"))
        actions.record(self.ctx.events, job, "Job", result.events)
        if result.requeue_after_s is not None:
            self.queue.add_after(key, max(0.5, result.requeue_after_s))

    async def drop_finalizer(self, namespace: str, name: str) -> None:
        pod = self.pods.get(f"{namespace}/{name}")
        if pod is None:
            return
        finalizers = [f for f in pod["metadata"].get("finalizers") or [] if f != TRACKING_FINALIZER]
        # a JSON merge patch replaces the list; the resourceVersion makes it a compare-and-swap
        patch = {"metadata": {"finalizers": finalizers or None,
                              "resourceVersion": pod["metadata"]["resourceVersion"]}}
        try:
            await self.api.patch(PODS, namespace, name, patch)
        except APIStatusError as err:
            if err.code == 409:
                self.queue.add_after(f"{namespace}/{controller_of(pod)['name']}", 0.2)
            elif err.code != 404:
                raise

    async def release_orphan(self, pod_key: str) -> None:
        """A pod whose Job is gone: its tracking finalizer would keep it for ever."""
        namespace, name = split_key(pod_key)
        pod = self.pods.get(pod_key)
        if pod is not None:
            await ignore_missing(self.api.patch(PODS, namespace, name, {"metadata": {"finalizers": [
                f for f in pod["metadata"].get("finalizers") or [] if f != TRACKING_FINALIZER] or None}}))
