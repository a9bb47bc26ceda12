"""The scheduler's cache when leadership is lost with bindings in flight (in-process, with a stand-in
API whose bindings hang: the informers are fed by hand)."""

from __future__ import annotations

import trio

from orchestrator.scheduler.scheduler import Scheduler


class HangingBinds:
    """Bindings never answer until `answer` is set; what was bound is recorded."""

    def __init__(self) -> None:
        self.answer = trio.Event()
        self.bound: list[tuple[str, str]] = []

    async def bind(self, pod: dict, node: str) -> None:
        await self.answer.wait()
        self.bound.append((pod["metadata"]["name"], node))


def node(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}}, "spec": {},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}}


def pod(name: str) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "resourceVersion": "1"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Pending"}}


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
        assert sorted(api.bound) == [("a", "n1"), ("b", "n1"), ("c", "n1")]

    trio.run(main)
