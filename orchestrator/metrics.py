"""Prometheus metrics for the components: counters, gauges and histograms in the text format,
served on /metrics (and /healthz) by Hypercorn."""

from __future__ import annotations

import bisect
import logging
from dataclasses import dataclass, field
from typing import Callable

import trio

DEFAULT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


async def answer_lifespan(receive, send) -> None:
    """ASGI lifespan for apps with nothing to start or stop (Hypercorn insists on an answer)."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


def _labels(labels: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}" if labels else ""


@dataclass
class Counter:
    name: str
    help: str
    values: dict[tuple, float] = field(default_factory=dict)
    kind = "counter"

    def inc(self, amount: float = 1, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        self.values[key] = self.values.get(key, 0) + amount

    def lines(self) -> list[str]:
        return [f"{self.name}{_labels(dict(k))} {v}" for k, v in sorted(self.values.items())] or [f"{self.name} 0"]


@dataclass
class Gauge:
    name: str
    help: str
    read: Callable[[], float]
    kind = "gauge"

    def lines(self) -> list[str]:
        return [f"{self.name} {self.read()}"]


@dataclass
class Histogram:
    name: str
    help: str
    buckets: tuple = DEFAULT_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    observations: int = 0
    kind = "histogram"

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self.buckets, value)
        if index < len(self.counts):
            self.counts[index] += 1
        self.total += value
        self.observations += 1

    def lines(self) -> list[str]:
        out, running = [], 0
        for bound, count in zip(self.buckets, self.counts):
            running += count
            out.append(f'{self.name}_bucket{{le="{bound}"}} {running}')
        out += [f'{self.name}_bucket{{le="+Inf"}} {self.observations}', f"{self.name}_sum {self.total}",
                f"{self.name}_count {self.observations}"]
        return out


class Registry:
    def __init__(self) -> None:
        self.metrics: list = []

    def add(self, metric):
        self.metrics.append(metric)
        return metric

    def text(self) -> str:
        lines = []
        for metric in self.metrics:
            lines += [f"# HELP {metric.name} {metric.help}", f"# TYPE {metric.name} {metric.kind}", *metric.lines()]
        return "\n".join(lines) + "\n"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await answer_lifespan(receive, send)
        if scope["type"] != "http":
            return
        body, status = (self.text().encode(), 200) if scope["path"] == "/metrics" else \
            (b"ok", 200) if scope["path"] == "/healthz" else (b"not found", 404)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/plain; version=0.0.4")]})
        await send({"type": "http.response.body", "body": body})

    async def serve(self, bind: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from hypercorn.config import Config
        from hypercorn.trio import serve
        config = Config()
        config.bind = [bind]
        config.accesslog = None
        config.errorlog = logging.getLogger("ketch.metrics.http")
        await serve(self, config, task_status=task_status)
