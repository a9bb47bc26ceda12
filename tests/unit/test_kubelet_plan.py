"""The kubelet's pod sync plan, driven against an in-memory runtime: transcripts of what a pod's
containers go through (init order, restart policies, back-off, probes, deletion, adoption)."""

from __future__ import annotations

import signal

from orchestrator.kubelet import plan as planner
from orchestrator.kubelet.model import (
    FinishDeletion,
    KillContainer,
    PrepareSandbox,
    RemoveContainer,
    StartContainer,
    TeardownSandbox,
)
from tests.unit.kubelet_fakes import Driver, FakeRuntime, pod


def names(actions) -> list[str]:
    return [type(a).__name__ + (f":{a.name}/{a.attempt}" if isinstance(a, StartContainer) else "") for a in actions]


def test_init_containers_run_one_at_a_time_in_order_then_the_app_containers():
    rt = FakeRuntime()
    d = Driver(rt, pod(init=[{"name": "i1", "image": "busybox"}, {"name": "i2", "image": "busybox"}],
                       containers=[{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]))
    assert names(d.sync()) == ["PrepareSandbox", "StartContainer:i1/0"]
    assert d.sync() == []  # i1 still runs: nothing else starts
    rt.exit("u1-i1-0", 0)
    assert names(d.sync()) == ["StartContainer:i2/0"]
    rt.exit("u1-i2-0", 0)
    assert names(d.sync()) == ["StartContainer:a/0", "StartContainer:b/0"]
    assert d.status()["phase"] == "Running"


def test_a_failing_init_container_is_retried_with_backoff_and_blocks_the_app():
    rt = FakeRuntime()
    d = Driver(rt, pod(init=[{"name": "i1", "image": "busybox"}]))
    d.sync()
    rt.exit("u1-i1-0", 1)
    assert names(d.sync()) == ["StartContainer:i1/1"]  # the first restart is immediate
    rt.exit("u1-i1-1", 1)
    assert d.sync() == []
    assert d.last.waiting["i1"][0] == "CrashLoopBackOff"
    status = d.status()
    assert status["phase"] == "Pending"
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["initContainerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1


def test_an_init_container_failing_under_never_fails_the_pod_and_no_app_container_starts():
    rt = FakeRuntime()
    d = Driver(rt, pod(init=[{"name": "i1", "image": "busybox"}], policy="Never"))
    d.sync()
    rt.exit("u1-i1-0", 3)
    assert names(d.sync()) == ["TeardownSandbox"]
    assert d.last.terminal and d.last.init_failed
    assert d.status()["phase"] == "Failed"
    assert not [c for c in rt.of("u1") if c.name == "c"]


def test_crash_loop_backoff_doubles_from_10s_to_a_300s_cap():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    waits = []
    for attempt in range(8):
        rt.exit(f"u1-c-{attempt}", 1)
        rt.now += 1
        d.sync()
        if attempt == 0:
            assert d.log[-1] == StartContainer("c", 1)  # restarted at once
            continue
        reason, message = d.last.waiting["c"]
        assert reason == "CrashLoopBackOff" and "restarting failed container=c pod=web_default(u1)" in message
        waits.append(d.last.wake_in_s + 1)
        rt.now += d.last.wake_in_s
        assert names(d.sync()) == [f"StartContainer:c/{attempt + 1}"] + ["RemoveContainer"] * (attempt >= 1)
    assert [round(w) for w in waits] == [10, 20, 40, 80, 160, 300, 300]


def test_backoff_starts_over_after_ten_minutes_without_a_crash():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    for attempt in range(3):
        rt.exit(f"u1-c-{attempt}", 1)
        rt.now += 0.5
        d.sync()
        if d.last.wake_in_s:
            rt.now += d.last.wake_in_s
            d.sync()
    assert d.crash_backoff["c"].delay_s == 40
    rt.now += 601  # ran for more than twice the cap
    rt.exit("u1-c-3", 1)
    assert names(d.sync()) == ["StartContainer:c/4", "RemoveContainer"]
    assert d.crash_backoff["c"].delay_s == 10


def test_restart_policies_decide_what_an_exit_means():
    cases = [("Always", 0, ["StartContainer:c/1"], "Running"), ("Always", 1, ["StartContainer:c/1"], "Running"),
             ("OnFailure", 1, ["StartContainer:c/1"], "Running"), ("OnFailure", 0, ["TeardownSandbox"], "Succeeded"),
             ("Never", 0, ["TeardownSandbox"], "Succeeded"), ("Never", 2, ["TeardownSandbox"], "Failed")]
    # a finished pod gives its network back but keeps its containers for their logs
    for policy, code, actions, phase in cases:
        rt = FakeRuntime()
        d = Driver(rt, pod(policy=policy))
        d.sync()
        rt.exit("u1-c-0", code)
        assert names(d.sync()) == actions, (policy, code)
        assert d.status()["phase"] == phase, (policy, code)
        assert rt.of("u1"), "the finished pod's containers stay for kubectl logs"


def test_a_failed_liveness_probe_kills_the_container_which_then_restarts():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    d.probes = {"u1-c-0": {"liveness": "failure"}}
    actions = d.sync()
    assert isinstance(actions[0], KillContainer) and actions[0].message == \
        "Container c failed liveness probe, will be restarted"
    assert actions[0].grace_s == 30
    assert actions[1] == StartContainer("c", 1)
    assert rt.signals == [("u1-c-0", signal.SIGTERM)]


def test_a_changed_image_restarts_the_container():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    d.pod["spec"]["containers"][0]["image"] = "busybox:1.36"
    actions = d.sync()
    assert actions[0].message == "Container c definition changed, will be restarted"
    assert rt.running("u1", "c").image == "busybox:1.36"


def test_deletion_kills_gracefully_then_removes_everything_and_finishes():
    rt = FakeRuntime()
    d = Driver(rt, pod(containers=[{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]))
    d.sync()
    d.pod["metadata"].update(deletionTimestamp="2024-01-01T00:00:00Z", deletionGracePeriodSeconds=7)
    actions = d.sync()
    kills = [a for a in actions if isinstance(a, KillContainer)]
    assert [(k.name, k.grace_s, k.run_pre_stop) for k in kills] == [("a", 7, True), ("b", 7, True)]
    assert [type(a) for a in actions[2:]] == [RemoveContainer, RemoveContainer, TeardownSandbox, FinishDeletion]
    assert d.deleted and rt.of("u1") == [] and not rt.sandboxes


def test_grace_is_never_below_two_seconds():
    assert planner.grace_period_s({"metadata": {"deletionGracePeriodSeconds": 0}, "spec": {}}) == 2
    assert planner.grace_period_s({"metadata": {}, "spec": {"terminationGracePeriodSeconds": 45}}) == 45


def test_a_pod_no_longer_bound_here_is_stopped_without_prestop_and_not_deleted_through_the_api():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    d.pod = None
    actions = d.sync("u1")
    assert isinstance(actions[0], KillContainer) and not actions[0].run_pre_stop
    assert not any(isinstance(a, FinishDeletion) for a in actions)
    assert rt.of("u1") == [] and not rt.sandboxes


def test_a_missing_image_shows_err_image_pull_then_image_pull_backoff_and_is_retried():
    rt = FakeRuntime()
    d = Driver(rt, pod(containers=[{"name": "c", "image": "nginx"}]))
    d.sync()
    assert d.last.waiting["c"][0] == "ErrImagePull"
    rt.now += 1.5
    d.sync()
    reason, message = d.last.waiting["c"]
    assert reason == "ImagePullBackOff"
    assert message.startswith('Back-off pulling image "nginx": ErrImagePull: image ')
    assert "ketch image import" in message
    assert d.status()["containerStatuses"][0]["state"]["waiting"]["reason"] == "ImagePullBackOff"
    rt.images.add("nginx")
    rt.now += d.last.wake_in_s
    assert names(d.sync()) == ["StartContainer:c/0"]
    assert d.status()["phase"] == "Running"


def test_only_the_newest_two_attempts_are_kept():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    for attempt in range(4):
        rt.exit(f"u1-c-{attempt}", 1)
        rt.now += 400
        d.sync()
    assert sorted(c.attempt for c in rt.of("u1")) == [3, 4]


def test_adoption_keeps_valid_containers_and_loses_no_restart_count():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    rt.exit("u1-c-0", 1)
    d.sync()
    fresh = Driver(rt, d.pod)  # a restarted kubelet: no memory but the runtime's
    assert fresh.sync() == []
    assert fresh.status()["containerStatuses"][0]["restartCount"] == 1
    assert len([c for c in rt.of("u1") if c.state == "running"]) == 1


def test_a_created_but_never_started_container_is_replaced():
    rt = FakeRuntime()
    d = Driver(rt, pod())
    d.sync()
    from dataclasses import replace
    rt.containers["u1-c-0"] = replace(rt.containers["u1-c-0"], state="created")
    actions = d.sync()
    assert [type(a) for a in actions] == [KillContainer, StartContainer] and not actions[0].run_pre_stop
    assert actions[1].attempt == 1


def test_a_sandbox_failure_waits_its_backoff():
    from orchestrator.kubelet.backoff import BackoffEntry
    from orchestrator.kubelet.model import Failure
    now = 1000.0
    failure = Failure("FailedCreatePodSandBox", "no pod CIDR", now, BackoffEntry(10, now))
    waiting = planner.plan(pod(), [], sandbox_ready=False, probes={}, crash_backoff={}, failures={}, now=now + 5,
                           pod_failure=failure)
    assert waiting.actions == [] and round(waiting.wake_in_s) == 5
    retry = planner.plan(pod(), [], sandbox_ready=False, probes={}, crash_backoff={}, failures={}, now=now + 11,
                         pod_failure=failure)
    assert retry.actions == [PrepareSandbox()]


def test_a_leftover_sandbox_of_a_pod_gone_is_torn_down_even_without_containers():
    leftover = planner.plan(None, [], sandbox_ready=False, probes={}, crash_backoff={}, failures={}, now=0.0,
                            leftovers=True)
    assert leftover.actions == [TeardownSandbox()]
    nothing = planner.plan(None, [], sandbox_ready=False, probes={}, crash_backoff={}, failures={}, now=0.0)
    assert nothing.actions == []


def test_an_ephemeral_container_starts_once_even_during_initialisation_and_is_never_restarted():
    rt = FakeRuntime()
    d = Driver(rt, pod(init=[{"name": "i1", "image": "busybox"}], policy="Always"))
    d.sync()
    d.pod["spec"]["ephemeralContainers"] = [{"name": "debugger", "image": "busybox", "targetContainerName": "c"}]
    assert names(d.sync()) == ["StartContainer:debugger/0"]  # i1 still runs
    status = d.status()["ephemeralContainerStatuses"][0]
    assert status["name"] == "debugger" and "running" in status["state"] and status["ready"] is False
    rt.exit("u1-debugger-0", 1)
    rt.exit("u1-i1-0", 0)
    assert names(d.sync()) == ["StartContainer:c/0"]  # restartPolicy Always, yet it is not restarted
    status = d.status()
    assert status["ephemeralContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 1
    assert status["phase"] == "Running" and [c["name"] for c in status["containerStatuses"]] == ["c"]


def test_a_running_ephemeral_container_is_not_killed_as_unknown():
    rt = FakeRuntime()
    d = Driver(rt, pod(ephemeralContainers=[{"name": "debugger", "image": "busybox"}]))
    assert names(d.sync()) == ["PrepareSandbox", "StartContainer:c/0", "StartContainer:debugger/0"]
    assert d.sync() == []


def test_an_ephemeral_container_still_running_is_stopped_when_the_pod_finishes():
    rt = FakeRuntime()
    d = Driver(rt, pod(policy="Never", ephemeralContainers=[{"name": "debugger", "image": "busybox"}]))
    d.sync()
    rt.exit("u1-c-0", 0)
    actions = d.sync()
    assert [type(a).__name__ for a in actions] == ["KillContainer", "TeardownSandbox"]
    assert actions[0].name == "debugger" and "Pod has finished" in actions[0].message
    assert d.status()["phase"] == "Succeeded"
