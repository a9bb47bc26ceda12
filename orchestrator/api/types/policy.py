"""policy/v1: PodDisruptionBudget and Eviction.

Facts from k8s.io/api policy/v1 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("policy.v1.Eviction", "Asks to evict a pod, honouring its disruption budgets (POST pods/NAME/eviction).", [
        F(1, "metadata", "meta.v1.ObjectMeta", "The pod's name and namespace."),
        F(2, "deleteOptions", "*meta.v1.DeleteOptions", "Options for the pod's deletion."),
    ], gvk=("policy", "v1", "Eviction")),
    Message("policy.v1.PodDisruptionBudget",
            "Limits how many pods of a set voluntary disruptions may take down at once.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "PodDisruptionBudgetSpec", "The desired budget."),
        F(3, "status", "PodDisruptionBudgetStatus", "The observed state."),
    ], gvk=("policy", "v1", "PodDisruptionBudget")),
    Message("policy.v1.PodDisruptionBudgetSpec", "The budget.", [
        F(1, "minAvailable", "*IntOrString", "Pods (count or percentage) that must stay available."),
        F(2, "selector", "*meta.v1.LabelSelector", "The pods the budget covers.", patch="replace"),
        F(3, "maxUnavailable", "*IntOrString", "Pods (count or percentage) that may be unavailable."),
        F(4, "unhealthyPodEvictionPolicy", "*string",
          "IfHealthyBudget or AlwaysAllow: when unhealthy pods may be evicted."),
    ]),
    Message("policy.v1.PodDisruptionBudgetStatus", "The observed state of a budget.", [
        F(1, "observedGeneration", "int64", "The generation last acted on."),
        F(2, "disruptedPods", "map[string]Time", "Pods being evicted, with when."),
        F(3, "disruptionsAllowed", "int32", "How many pods may be disrupted now.", required=True),
        F(4, "currentHealthy", "int32", "Healthy pods now.", required=True),
        F(5, "desiredHealthy", "int32", "Healthy pods wanted.", required=True),
        F(6, "expectedPods", "int32", "Pods the budget counts.", required=True),
        F(7, "conditions", "[]meta.v1.Condition", "The latest observations of the budget's state.", map_keys=("type",),
          patch="merge", merge_key="type"),
    ]),
]
