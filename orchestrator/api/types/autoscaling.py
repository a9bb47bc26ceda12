"""autoscaling/v2: HorizontalPodAutoscaler; autoscaling/v1: Scale (the scale subresource).

Facts from k8s.io/api autoscaling/v1 and v2 at v0.33: field numbers from generated.proto; JSON names, omitempty,
pointers and list/map markers from types.go. The descriptions are ours.
"""

from __future__ import annotations

from orchestrator.api.types.model import F, Message

MESSAGES = [
    Message("autoscaling.v1.CrossVersionObjectReference", "Identifies the object to scale.", [
        F(1, "kind", "string", "The object's kind.", required=True),
        F(2, "name", "string", "The object's name.", required=True),
        F(3, "apiVersion", "string", "The object's API version."),
    ], atomic=True),
    Message("autoscaling.v1.HorizontalPodAutoscaler",
            "Scales a workload's replicas to keep its pods' average CPU at a target (the older form; autoscaling/v2 has"
            " every metric).", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "HorizontalPodAutoscalerSpec", "The desired behaviour."),
        F(3, "status", "HorizontalPodAutoscalerStatus", "The observed state, written by the controller."),
    ], gvk=("autoscaling", "v1", "HorizontalPodAutoscaler")),
    Message("autoscaling.v1.HorizontalPodAutoscalerSpec", "What to scale and at which CPU use.", [
        F(1, "scaleTargetRef", "CrossVersionObjectReference", "The object to scale.", required=True),
        F(2, "minReplicas", "*int32", "The lower bound (default 1)."),
        F(3, "maxReplicas", "int32", "The upper bound.", required=True),
        F(4, "targetCPUUtilizationPercentage", "*int32",
          "The target average CPU, as a percentage of the pods' requests (default 80)."),
    ]),
    Message("autoscaling.v1.HorizontalPodAutoscalerStatus", "The observed state of an autoscaler.", [
        F(1, "observedGeneration", "*int64", "The generation the controller last acted on."),
        F(2, "lastScaleTime", "*Time", "When the replicas were last changed."),
        F(3, "currentReplicas", "int32", "Current number of pods.", required=True),
        F(4, "desiredReplicas", "int32", "Number of pods the autoscaler wants.", required=True),
        F(5, "currentCPUUtilizationPercentage", "*int32",
          "The current average CPU, as a percentage of the pods' requests."),
    ]),
    Message("autoscaling.v1.Scale", "The scale subresource: desired and observed replicas of a scalable object.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "ScaleSpec", "The desired scale."),
        F(3, "status", "ScaleStatus", "The observed scale."),
    ], gvk=("autoscaling", "v1", "Scale")),
    Message("autoscaling.v1.ScaleSpec", "The desired scale.", [
        F(1, "replicas", "int32", "Desired number of pods."),
    ]),
    Message("autoscaling.v1.ScaleStatus", "The observed scale.", [
        F(1, "replicas", "int32", "Observed number of pods.", required=True),
        F(2, "selector", "string", "The pods' label selector, in its text form."),
    ]),
    Message("autoscaling.v2.ContainerResourceMetricSource", "A resource metric of one container in each pod.", [
        F(1, "name", "string", "The resource (cpu, memory).", required=True),
        F(2, "target", "MetricTarget", "The target value.", required=True),
        F(3, "container", "string", "The container's name.", required=True),
    ]),
    Message("autoscaling.v2.ContainerResourceMetricStatus", "The current value of a container resource metric.", [
        F(1, "name", "string", "The resource (cpu, memory).", required=True),
        F(2, "current", "MetricValueStatus", "The current value.", required=True),
        F(3, "container", "string", "The container's name.", required=True),
    ]),
    Message("autoscaling.v2.CrossVersionObjectReference", "Identifies the object to scale.", [
        F(1, "kind", "string", "The object's kind.", required=True),
        F(2, "name", "string", "The object's name.", required=True),
        F(3, "apiVersion", "string", "The object's API version."),
    ]),
    Message("autoscaling.v2.ExternalMetricSource", "A metric from outside the cluster.", [
        F(1, "metric", "MetricIdentifier", "Which metric.", required=True),
        F(2, "target", "MetricTarget", "The target value.", required=True),
    ]),
    Message("autoscaling.v2.ExternalMetricStatus", "The current value of an external metric.", [
        F(1, "metric", "MetricIdentifier", "Which metric.", required=True),
        F(2, "current", "MetricValueStatus", "The current value.", required=True),
    ]),
    Message("autoscaling.v2.HPAScalingPolicy", "A limit on one scaling step.", [
        F(1, "type", "string", "Pods or Percent.", required=True),
        F(2, "value", "int32", "The amount of change allowed per period.", required=True),
        F(3, "periodSeconds", "int32", "The window the value applies to (1 to 1800 seconds).", required=True),
    ]),
    Message("autoscaling.v2.HPAScalingRules", "How to scale in one direction.", [
        F(3, "stabilizationWindowSeconds", "*int32", "Seconds of past recommendations to consider."),
        F(1, "selectPolicy", "*string", "Max, Min or Disabled: which policy wins."),
        F(2, "policies", "[]HPAScalingPolicy", "The allowed changes.", list_type="atomic"),
        F(4, "tolerance", "*Quantity", "The relative difference from the target below which no scaling happens."),
    ]),
    Message("autoscaling.v2.HorizontalPodAutoscaler",
            "Scales a workload's replicas to keep metrics at their targets.", [
        F(1, "metadata", "meta.v1.ObjectMeta", "Standard object metadata."),
        F(2, "spec", "HorizontalPodAutoscalerSpec", "The desired behaviour."),
        F(3, "status", "HorizontalPodAutoscalerStatus", "The observed state, written by the controller."),
    ], gvk=("autoscaling", "v2", "HorizontalPodAutoscaler")),
    Message("autoscaling.v2.HorizontalPodAutoscalerBehavior", "Scaling rules for each direction.", [
        F(1, "scaleUp", "*HPAScalingRules", "Rules for scaling up."),
        F(2, "scaleDown", "*HPAScalingRules", "Rules for scaling down."),
    ]),
    Message("autoscaling.v2.HorizontalPodAutoscalerCondition", "One aspect of an autoscaler's state.", [
        F(1, "type", "string", "The condition's name.", required=True),
        F(2, "status", "string", "True, False or Unknown.", required=True),
        F(3, "lastTransitionTime", "Time", "When the status last changed."),
        F(4, "reason", "string", "A CamelCase word for the last change."),
        F(5, "message", "string", "Human-readable details."),
    ]),
    Message("autoscaling.v2.HorizontalPodAutoscalerSpec", "What to scale and on which metrics.", [
        F(1, "scaleTargetRef", "CrossVersionObjectReference", "The object to scale.", required=True),
        F(2, "minReplicas", "*int32", "The lower bound (default 1)."),
        F(3, "maxReplicas", "int32", "The upper bound.", required=True),
        F(4, "metrics", "[]MetricSpec", "The metrics to keep at their targets (default: 80% average CPU).",
          list_type="atomic"),
        F(5, "behavior", "*HorizontalPodAutoscalerBehavior", "How fast to scale in each direction."),
    ]),
    Message("autoscaling.v2.HorizontalPodAutoscalerStatus", "The observed state of an autoscaler.", [
        F(1, "observedGeneration", "*int64", "The generation the controller last acted on."),
        F(2, "lastScaleTime", "*Time", "When the replicas were last changed."),
        F(3, "currentReplicas", "int32", "Current number of pods."),
        F(4, "desiredReplicas", "int32", "Number of pods the autoscaler wants.", required=True),
        F(5, "currentMetrics", "[]MetricStatus", "The last read metric values.", keep_zero=True, list_type="atomic"),
        F(6, "conditions", "[]HorizontalPodAutoscalerCondition", "The latest observations of the autoscaler's state.",
          map_keys=("type",), patch="merge", merge_key="type"),
    ]),
    Message("autoscaling.v2.MetricIdentifier", "Names a metric.", [
        F(1, "name", "string", "The metric's name.", required=True),
        F(2, "selector", "*meta.v1.LabelSelector", "Narrows the metric by its labels."),
    ]),
    Message("autoscaling.v2.MetricSpec", "One metric to scale on.", [
        F(1, "type", "string", "Object, Pods, Resource, ContainerResource or External.", required=True),
        F(2, "object", "*ObjectMetricSource", "A metric of one object."),
        F(3, "pods", "*PodsMetricSource", "A metric averaged over the pods."),
        F(4, "resource", "*ResourceMetricSource", "A resource metric of the pods."),
        F(7, "containerResource", "*ContainerResourceMetricSource", "A resource metric of one container in the pods."),
        F(5, "external", "*ExternalMetricSource", "A metric from outside the cluster."),
    ]),
    Message("autoscaling.v2.MetricStatus", "The current value of one metric.", [
        F(1, "type", "string", "Object, Pods, Resource, ContainerResource or External.", required=True),
        F(2, "object", "*ObjectMetricStatus", "A metric of one object."),
        F(3, "pods", "*PodsMetricStatus", "A metric averaged over the pods."),
        F(4, "resource", "*ResourceMetricStatus", "A resource metric of the pods."),
        F(7, "containerResource", "*ContainerResourceMetricStatus", "A resource metric of one container in the pods."),
        F(5, "external", "*ExternalMetricStatus", "A metric from outside the cluster."),
    ]),
    Message("autoscaling.v2.MetricTarget", "The target of a metric.", [
        F(1, "type", "string", "Utilization, Value or AverageValue.", required=True),
        F(2, "value", "*Quantity", "The target value."),
        F(3, "averageValue", "*Quantity", "The target average over the pods."),
        F(4, "averageUtilization", "*int32", "The target average, as a percentage of the pods' requests."),
    ]),
    Message("autoscaling.v2.MetricValueStatus", "The current value of a metric.", [
        F(1, "value", "*Quantity", "The current value."),
        F(2, "averageValue", "*Quantity", "The current average over the pods."),
        F(3, "averageUtilization", "*int32", "The current average, as a percentage of the pods' requests."),
    ]),
    Message("autoscaling.v2.ObjectMetricSource", "A metric describing one object.", [
        F(1, "describedObject", "CrossVersionObjectReference", "The object.", required=True),
        F(2, "target", "MetricTarget", "The target value.", required=True),
        F(3, "metric", "MetricIdentifier", "Which metric.", required=True),
    ]),
    Message("autoscaling.v2.ObjectMetricStatus", "The current value of an object metric.", [
        F(1, "metric", "MetricIdentifier", "Which metric.", required=True),
        F(2, "current", "MetricValueStatus", "The current value.", required=True),
        F(3, "describedObject", "CrossVersionObjectReference", "The object.", required=True),
    ]),
    Message("autoscaling.v2.PodsMetricSource", "A metric averaged over the pods.", [
        F(1, "metric", "MetricIdentifier", "Which metric.", required=True),
        F(2, "target", "MetricTarget", "The target value.", required=True),
    ]),
    Message("autoscaling.v2.PodsMetricStatus", "The current value of a pods metric.", [
        F(1, "metric", "MetricIdentifier", "Which metric.", required=True),
        F(2, "current", "MetricValueStatus", "The current value.", required=True),
    ]),
    Message("autoscaling.v2.ResourceMetricSource", "A resource metric (cpu, memory) of the pods.", [
        F(1, "name", "string", "The resource.", required=True),
        F(2, "target", "MetricTarget", "The target value.", required=True),
    ]),
    Message("autoscaling.v2.ResourceMetricStatus", "The current value of a resource metric.", [
        F(1, "name", "string", "The resource.", required=True),
        F(2, "current", "MetricValueStatus", "The current value.", required=True),
    ]),
]
