"""The work queue: dedup, one worker per key, requeue with backoff after a failure. Time is trio's
MockClock (autojump): the sleeps below are virtual, so the tests neither wait nor race the machine."""

from __future__ import annotations

import trio

from orchestrator.client.workqueue import WorkQueue


async def test_a_key_added_many_times_waits_once_and_is_handled_once_per_change(autojump_clock):
    queue = WorkQueue("t")
    seen = []
    for _ in range(5):
        queue.add("a")
    queue.add("b")
    assert len(queue) == 2

    async def handle(key):
        seen.append(key)
        if key == "a" and seen.count("a") == 1:
            queue.add("a")  # changed while in process: handled once more afterwards
            await trio.sleep(0.05)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run, handle, 3)
        await trio.sleep(0.3)
        nursery.cancel_scope.cancel()
    assert sorted(seen) == ["a", "a", "b"]


async def test_one_worker_per_key_at_a_time(autojump_clock):
    queue = WorkQueue("t")
    running, overlap = set(), []

    async def handle(key):
        if key in running:
            overlap.append(key)
        running.add(key)
        await trio.sleep(0.02)
        running.discard(key)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run, handle, 4)
        for _ in range(20):
            queue.add("k")
            await trio.sleep(0.005)
        await trio.sleep(0.2)
        nursery.cancel_scope.cancel()
    assert overlap == []


async def test_a_failing_key_comes_back_after_a_growing_backoff(autojump_clock):
    queue = WorkQueue("t", base_delay_s=0.02)
    times = []

    async def handle(key):
        times.append(trio.current_time())
        if len(times) < 4:
            raise RuntimeError("not yet")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run, handle, 1)
        queue.add("k")
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    gaps = [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]
    assert len(times) == 4 and queue.errors == 3 and queue.failures == {}
    assert gaps == [0.02, 0.04, 0.08]  # exactly the doubling back-off, on the virtual clock


async def test_every_idle_worker_takes_a_key_added_while_the_others_are_busy(autojump_clock):
    """Four workers, four keys added one after another, each handler busy until released: all
    four run at once (a kubelet's pod waiting out its grace period must not hold up the next)."""
    queue = WorkQueue("t")
    running, release = [], trio.Event()

    async def handle(key):
        running.append(key)
        await release.wait()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.run, handle, 4)
        await trio.sleep(0.1)
        for key in "abcd":
            queue.add(key)
            await trio.sleep(0.1)
        assert sorted(running) == ["a", "b", "c", "d"]
        release.set()
        nursery.cancel_scope.cancel()


async def test_a_consumer_of_a_full_queue_lets_other_tasks_run(autojump_clock):
    """get() is a checkpoint even when a key is waiting: a loop doing synchronous work per key
    (the scheduler's) must not starve the rest of its process (its Lease renewal)."""
    queue = WorkQueue("t")
    for i in range(1000):
        queue.add(str(i))
    ticks = []

    async def other_task():
        while True:
            ticks.append(len(queue))
            await trio.sleep(0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other_task)
        await trio.sleep(0)
        for _ in range(1000):
            queue.done(await queue.get())
        nursery.cancel_scope.cancel()
    assert len(ticks) > 500  # the other task ran all along the draining, not only after it
