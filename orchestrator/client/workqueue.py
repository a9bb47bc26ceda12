"""A work queue of keys, as client-go's: a key waits at most once in the queue, is handled by one
worker at a time (added again while in process, it is handled once more afterwards), and a
failed key comes back after an exponential backoff."""

from __future__ import annotations

import collections
from typing import Awaitable, Callable

import trio


class WorkQueue:
    def __init__(self, name: str, base_delay_s: float = 0.05, max_delay_s: float = 30.0) -> None:
        self.name = name
        self.base_delay_s, self.max_delay_s = base_delay_s, max_delay_s
        self.queue: collections.deque[str] = collections.deque()
        self.queued: set[str] = set()
        self.processing: set[str] = set()
        self.dirty: set[str] = set()
        self.failures: dict[str, int] = {}
        self.ready = trio.Event()
        self.nursery: trio.Nursery | None = None
        self.handled = 0
        self.errors = 0

    def __len__(self) -> int:
        return len(self.queue)

    def add(self, key: str) -> None:
        if key in self.processing:
            self.dirty.add(key)
            return
        if key in self.queued:
            return
        self.queued.add(key)
        self.queue.append(key)
        self.ready.set()

    def add_after(self, key: str, delay_s: float) -> None:
        async def later() -> None:
            await trio.sleep(delay_s)
            self.add(key)
        if self.nursery is None:
            raise RuntimeError("the queue is not running")
        self.nursery.start_soon(later)

    def add_rate_limited(self, key: str) -> None:
        attempts = self.failures.get(key, 0)
        self.failures[key] = attempts + 1
        self.add_after(key, min(self.base_delay_s * 2 ** attempts, self.max_delay_s))

    def forget(self, key: str) -> None:
        self.failures.pop(key, None)

    async def get(self) -> str:
        # Always a checkpoint, as trio's own async functions are: a loop taking keys from a full
        # queue with synchronous work in between (the scheduler's) otherwise never lets another
        # task run, and its Lease renewal starved (leadership lost every 5 s with 3,000 pods queued).
        await trio.lowlevel.checkpoint()
        while not self.queue:
            # Idle workers share one event; only a set one is replaced. (Replacing it on every wait
            # orphaned the workers already waiting: they slept forever, and a kubelet was left with
            # one worker, every pod behind a 30 s grace period.)
            if self.ready.is_set():
                self.ready = trio.Event()
            await self.ready.wait()
        key = self.queue.popleft()
        self.queued.discard(key)
        self.processing.add(key)
        return key

    def done(self, key: str) -> None:
        self.processing.discard(key)
        if key in self.dirty:
            self.dirty.discard(key)
            self.add(key)

    async def run(self, handle: Callable[[str], Awaitable[None]], workers: int = 4, on_error=None) -> None:
        """Workers take keys and call handle(key); an exception requeues the key with backoff."""
        async with trio.open_nursery() as nursery:
            self.nursery = nursery

            async def worker() -> None:
                while True:
                    key = await self.get()
                    try:
                        await handle(key)
                        self.forget(key)
                        self.handled += 1
                    except Exception as err:  # noqa: BLE001 - any failure of one key requeues that key
                        self.errors += 1
                        if on_error:
                            on_error(key, err)
                        self.add_rate_limited(key)
                    finally:
                        self.done(key)
            for _ in range(workers):
                nursery.start_soon(worker)
