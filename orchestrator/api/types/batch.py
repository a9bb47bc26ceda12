"""batch/v1: Job and CronJob.

Facts from k8s.io/api batch/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("batch.v1.CronJob", "Runs a Job on a schedule.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "CronJobSpec", "The desired state."),
        F(3, "status", "CronJobStatus", "The observed state, written by the controller."),
    ], gvk=("batch", "v1", "CronJob")),
    Message("batch.v1.CronJobSpec", "The schedule and the Job to run.", [
        F(1, "schedule", "string", "A cron expression, e.g. \"*/5 * * * *\".", required=True),
        F(8, "timeZone", "*string", "The time zone of the schedule (an IANA name); the controller's own when unset."),
        F(2, "startingDeadlineSeconds", "*int64", "Seconds after a missed time within which the Job may still start."),
        F(3, "concurrencyPolicy", "string", "Allow (default), Forbid or Replace concurrent Jobs."),
        F(4, "suspend", "*bool", "Stops new Jobs from starting."),
        F(5, "jobTemplate", "JobTemplateSpec", "The Job to create at each scheduled time.", required=True),
        F(6, "successfulJobsHistoryLimit", "*int32", "How many finished successful Jobs to keep (default 3)."),
        F(7, "failedJobsHistoryLimit", "*int32", "How many failed Jobs to keep (default 1)."),
    ]),
    Message("batch.v1.CronJobStatus", "The observed state of a CronJob.", [
        F(1, "active", "[]core.v1.ObjectReference", "The Jobs running now.", list_type="atomic"),
        F(4, "lastScheduleTime", "*Time", "When a Job was last scheduled."),
        F(5, "lastSuccessfulTime", "*Time", "When a Job last succeeded."),
    ]),
    Message("batch.v1.Job", "Runs pods until a number of them complete successfully.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "JobSpec", "The desired state."),
        F(3, "status", "JobStatus", "The observed state, written by the controller."),
    ], gvk=("batch", "v1", "Job")),
    Message("batch.v1.JobCondition", "One aspect of a Job's state (Complete, Failed, Suspended, ...).", [
        F(1, "type", "string", "The condition's name.", required=True),
        F(2, "status", "string", "True, False or Unknown.", required=True),
        F(3, "lastProbeTime", "Time", "When the condition was last checked."),
        F(4, "lastTransitionTime", "Time", "When the status last changed."),
        F(5, "reason", "string", "A CamelCase word for the last change."),
        F(6, "message", "string", "Human-readable details."),
    ]),
    Message("batch.v1.JobSpec", "The desired state of a Job.", [
        F(1, "parallelism", "*int32", "Most pods running at once (default 1)."),
        F(2, "completions", "*int32", "Successful pods needed for the Job to complete."),
        F(3, "activeDeadlineSeconds", "*int64", "Seconds the Job may run before it is failed."),
        F(11, "podFailurePolicy", "*PodFailurePolicy", "How pod failures count, by exit code or pod condition."),
        F(16, "successPolicy", "*SuccessPolicy", "When an Indexed Job counts as succeeded before all indexes do."),
        F(7, "backoffLimit", "*int32", "Retries before the Job is failed (default 6)."),
        F(12, "backoffLimitPerIndex", "*int32", "Retries per index of an Indexed Job."),
        F(13, "maxFailedIndexes", "*int32", "Failed indexes an Indexed Job tolerates before it fails."),
        F(4, "selector", "*meta.v1.LabelSelector",
          "Which pods belong to the Job; generated unless manualSelector is true."),
        F(5, "manualSelector", "*bool", "Whether the selector is set by the user rather than generated."),
        F(6, "template", "core.v1.PodTemplateSpec", "The pods to run.", required=True),
        F(8, "ttlSecondsAfterFinished", "*int32", "Seconds after finishing when the Job is deleted."),
        F(9, "completionMode", "*string", "NonIndexed (default) or Indexed."),
        F(10, "suspend", "*bool", "Whether the Job's pods are stopped and no new ones created."),
        F(14, "podReplacementPolicy", "*string", "When failed pods are replaced: TerminatingOrFailed or Failed."),
        F(15, "managedBy", "*string", "The controller that manages the Job, when not the built-in one."),
    ]),
    Message("batch.v1.JobStatus", "The observed state of a Job.", [
        F(1, "conditions", "[]JobCondition", "The latest observations of the Job's state.", list_type="atomic",
          patch="merge", merge_key="type"),
        F(2, "startTime", "*Time", "When the Job started."),
        F(3, "completionTime", "*Time", "When the Job completed."),
        F(4, "active", "int32", "Pods running or pending."),
        F(5, "succeeded", "int32", "Pods that succeeded."),
        F(6, "failed", "int32", "Pods that failed."),
        F(11, "terminating", "*int32", "Pods being terminated."),
        F(7, "completedIndexes", "string", "The completed indexes of an Indexed Job, as ranges (\"1,3-5\")."),
        F(10, "failedIndexes", "*string", "The failed indexes of an Indexed Job, as ranges."),
        F(8, "uncountedTerminatedPods", "*UncountedTerminatedPods", "Finished pods not yet counted in the status."),
        F(9, "ready", "*int32", "Pods that are ready."),
    ]),
    Message("batch.v1.JobTemplateSpec", "The Job a CronJob creates.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Metadata for the created Jobs."),
        F(2, "spec", "JobSpec", "The spec of the created Jobs."),
    ]),
    Message("batch.v1.PodFailurePolicy", "Rules for how pod failures affect a Job.", [
        F(1, "rules", "[]PodFailurePolicyRule", "Checked in order; the first match decides.", required=True,
          list_type="atomic"),
    ]),
    Message("batch.v1.PodFailurePolicyOnExitCodesRequirement", "Matches a pod failure by container exit codes.", [
        F(1, "containerName", "*string", "Only this container's exit codes, or all containers when unset."),
        F(2, "operator", "string", "In or NotIn.", required=True),
        F(3, "values", "[]int32", "The exit codes.", required=True, list_type="set"),
    ]),
    Message("batch.v1.PodFailurePolicyOnPodConditionsPattern", "Matches a pod failure by a pod condition.", [
        F(1, "type", "string", "The pod condition type.", required=True),
        F(2, "status", "string", "The condition status to match (default True).", required=True),
    ]),
    Message("batch.v1.PodFailurePolicyRule", "An action for matching pod failures.", [
        F(1, "action", "string", "FailJob, FailIndex, Ignore or Count.", required=True),
        F(2, "onExitCodes", "*PodFailurePolicyOnExitCodesRequirement", "Matches by exit codes."),
        F(3, "onPodConditions", "[]PodFailurePolicyOnPodConditionsPattern", "Matches by pod conditions.",
          list_type="atomic"),
    ]),
    Message("batch.v1.SuccessPolicy", "When an Indexed Job counts as succeeded.", [
        F(1, "rules", "[]SuccessPolicyRule", "Any matching rule makes the Job succeed.", required=True,
          list_type="atomic"),
    ]),
    Message("batch.v1.SuccessPolicyRule", "A set of indexes whose success makes the Job succeed.", [
        F(1, "succeededIndexes", "*string", "The indexes, as ranges (\"0,2-4\")."),
        F(2, "succeededCount", "*int32", "How many of them must succeed."),
    ]),
    Message("batch.v1.UncountedTerminatedPods", "Finished pods the Job status does not count yet.", [
        F(1, "succeeded", "[]string", "UIDs of succeeded pods.", list_type="set"),
        F(2, "failed", "[]string", "UIDs of failed pods.", list_type="set"),
    ]),
]
