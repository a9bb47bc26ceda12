"""The HPA's recommendation: utilization, tolerance, missing and unready pods, windows, policies, limits."""

from orchestrator.controllers.plans.hpa import PodSample, recommend

NOW = 1_000.0


def hpa(target=50, low=1, high=10, behavior=None) -> dict:
    spec = {"minReplicas": low, "maxReplicas": high,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target}}}]}
    if behavior:
        spec["behavior"] = behavior
    return {"metadata": {"name": "web"}, "spec": spec}


def pods(*uses, request=100, ready=True) -> list[PodSample]:
    return [PodSample(f"p{i}", request, use, ready) for i, use in enumerate(uses)]


def test_scales_up_by_the_utilization_ratio_and_reports_the_metric():
    result = recommend(hpa(), 2, pods(100, 100), [], [], NOW)  # 100% against 50%: twice as many
    assert result.desired == 4
    assert result.metric["resource"]["current"]["averageUtilization"] == 100
    assert ("ScalingActive", "True", "ValidMetricFound") == result.conditions[1][:3]


def test_within_tolerance_nothing_changes():
    assert recommend(hpa(), 4, pods(52, 54, 50, 53), [], [], NOW).desired == 4


def test_scale_up_is_limited_by_the_default_policies():
    # 10x the target on 2 pods wants 20; the default allows +100% or +4 pods per 15 s: 6
    assert recommend(hpa(high=50), 2, pods(500, 500), [], [], NOW).desired == 6
    # and 4 were already added within the last 15 s: from 2 at the period start, still at most 6
    assert recommend(hpa(high=50), 6, pods(500, 500, 500, 500, 500, 500), [], [(NOW - 5, 4)], NOW).desired == 6


def test_scale_down_waits_out_the_stabilization_window():
    history = [(NOW - 100, 8)]  # 100 s ago, 8 were recommended
    assert recommend(hpa(), 8, pods(*[10] * 8), history, [], NOW).desired == 8
    assert recommend(hpa(), 8, pods(*[10] * 8), [(NOW - 400, 8)], [], NOW).desired == 2
    quick = hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}})
    assert recommend(quick, 8, pods(*[10] * 8), history, [], NOW).desired == 2


def test_min_and_max_clamp_with_the_limiting_condition():
    limited = recommend(hpa(high=3), 2, pods(100, 100), [], [], NOW)
    assert limited.desired == 3 and ("ScalingLimited", "True", "TooManyReplicas") == limited.conditions[-1][:3]
    floor = recommend(hpa(low=2, behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}), 4,
                      pods(1, 1, 1, 1), [], [], NOW)
    assert floor.desired == 2 and floor.conditions[-1][2] == "TooFewReplicas"


def test_pods_without_figures_or_not_ready_damp_a_scale_up():
    # two busy pods and two new ones not ready yet: counted at 0% the ratio is 1.0: no change
    samples = pods(100, 100) + pods(None, None) + [PodSample("n", 100, 90, ready=False)]
    assert recommend(hpa(), 5, samples, [], [], NOW).desired == 5


def test_no_metric_means_no_change_and_says_why():
    result = recommend(hpa(), 3, pods(None, None, None), [], [], NOW)
    assert result.desired == 3 and result.metric is None
    assert result.conditions[-1][:3] == ("ScalingActive", "False", "FailedGetResourceMetric")
