"""The CronJob controller: informers on CronJobs and their Jobs; each CronJob is looked at when it
or one of its Jobs changes, and again at its next scheduled time (the plan says when). The clock
is read here and handed to the pure plan (plans/cronjob.py)."""

from __future__ import annotations

from datetime import datetime, timezone

from orchestrator.api.meta import controller_of, split_key
from orchestrator.client.api import resource
from orchestrator.controllers import actions
from orchestrator.controllers.base import Controller
from orchestrator.controllers.plans.cronjob import plan


class CronJobController(Controller):
    name = "cronjob"
    workers = 2

    def __init__(self, ctx) -> None:
        super().__init__(ctx)
        self.cron_resource = resource("cronjobs", "batch")
        self.jobs_resource = resource("jobs", "batch")
        self.cronjobs = ctx.informers.informer(self.cron_resource)
        self.jobs = ctx.informers.informer(self.jobs_resource)
        self.jobs.add_index("owner", lambda j: [ref["uid"] for ref in [controller_of(j)] if ref])
        self.cronjobs.add_handler(self.enqueue, lambda old, new: self.enqueue(new), None)
        self.jobs.add_handler(self._job_event, lambda old, new: self._job_event(new), self._job_event)

    def _job_event(self, job: dict) -> None:
        self.enqueue_owner(job, "CronJob")

    async def reconcile(self, key: str) -> None:
        cronjob = self.cronjobs.get(key)
        if cronjob is None or cronjob["metadata"].get("deletionTimestamp"):
            return
        namespace, _ = split_key(key)
        jobs = self.jobs.by_index("owner", cronjob["metadata"]["uid"])
        result = plan(cronjob, jobs, datetime.now(timezone.utc))
        await actions.delete_each(self.api, self.jobs_resource, namespace, result.delete, propagation="Background")
        if result.create is not None:
            await actions.create_each(self.api, self.jobs_resource, namespace, [result.create])
        await actions.write_status(self.api, self.cron_resource, cronjob, result.status)
        actions.record(self.ctx.events, cronjob, "CronJob", result.events)
        if result.requeue_after_s is not None:
            self.queue.add_after(key, result.requeue_after_s + 0.1)  # just past the scheduled second
