"""The scheduler's queues and cache, in-process: a stand-in API records bindings (or holds them),
and the informers are fed by hand."""

from __future__ import annotations

import trio

from orchestrator.scheduler.scheduler import Scheduler


class HangingBinds:
    """Bindings never answer until `answer` is set; what was bound is recorded."""

    def __init__(self, answer_at_once: bool = False) -> None:
        self.answer = trio.Event()
        if answer_at_once:
            self.answer.set()
        self.bound: list[tuple[str, str, float]] = []

    async def bind(self, pod: dict, node: str) -> None:
        await self.answer.wait()
        self.bound.append((pod["metadata"]["name"], node, trio.current_time()))

    async def patch(self, *args, **kwargs) -> dict:  # the PodScheduled=False condition
        return {}


def node(name: str, cpu: str = "4") -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {},
            "status": {"allocatable": {"cpu": cpu, "memory": "8Gi", "pods": "110"}}}


def pod(name: str, cpu: str | None = None) -> dict:
    resources = {"requests": {"cpu": cpu}} if cpu else {}
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {"containers": [{"name": "c", "image": "busybox", "resources": resources}]},
            "status": {"phase": "Pending"}}


def test_pods_whose_binding_was_cut_off_by_a_lost_lease_are_scheduled_again():
    api = HangingBinds()
    scheduler = Scheduler(api, identity="test")
    scheduler.nodes._put(node("n1"))
    for name in ("a", "b", "c"):
        scheduler.pods._put(pod(name))

    async def main() -> None:
        with trio.move_on_after(0.5):  # leading, until the lease is lost mid-binding
            await scheduler.schedule_loop()
        assert api.bound == []  # every binding was in flight when leadership went
        assert not scheduler.placed and not scheduler.assumed
        assert scheduler.infos["n1"].pods == []  # nor does n1 still count them
        api.answer.set()
        with trio.move_on_after(0.5):  # the lease is won again
            await scheduler.schedule_loop()
        assert sorted(name_node for *name_node, _ in api.bound) == [["a", "n1"], ["b", "n1"], ["c", "n1"]]

    trio.run(main)


async def test_a_pod_that_fit_nowhere_waits_out_its_backoff_when_the_cluster_changes(autojump_clock):
    api = HangingBinds(answer_at_once=True)
    scheduler = Scheduler(api, identity="test")
    scheduler.nodes._put(node("small", cpu="1"))
    scheduler.pods._put(pod("big", cpu="2"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scheduler.schedule_loop)
        await trio.sleep(0.1)
        assert "default/big" in scheduler.unschedulable
        found_at = scheduler.found_unschedulable["default/big"]
        scheduler.nodes._put(node("large", cpu="8"))  # the cluster changed: it may fit now
        await trio.sleep(2.0)
        nursery.cancel_scope.cancel()
    assert [(name, node_name) for name, node_name, _ in api.bound] == [("big", "large")]
    waited = api.bound[0][2] - found_at
    assert 1.0 <= waited < 1.5  # the first backoff (1 s), not at once and not much later


async def test_pods_waiting_out_their_backoff_are_pending_again_when_leadership_ends(autojump_clock):
    scheduler = Scheduler(HangingBinds(answer_at_once=True), identity="test")
    scheduler.nodes._put(node("small", cpu="1"))
    scheduler.pods._put(pod("big", cpu="2"))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(scheduler.schedule_loop)
        await trio.sleep(0.1)
        scheduler.nodes._put(node("other", cpu="1"))  # a change: "big" waits the rest of its backoff
        assert scheduler.backing_off == {"default/big"}
        nursery.cancel_scope.cancel()  # the lease is lost meanwhile
    assert scheduler.unschedulable == {"default/big"} and not scheduler.backing_off
    scheduler.nodes._put(node("third", cpu="1"))  # a handler after the loop ended: no nursery is used
    assert scheduler.unschedulable == set() and len(scheduler.active) == 1
