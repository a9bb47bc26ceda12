"""Prometheus metrics for the components, through `prometheus_client` (the ecosystem's library):
each component owns one registry, and a small ASGI app serves it on /metrics (with /healthz)."""

from __future__ import annotations

import logging

import prometheus_client
import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

__all__ = ["Counter", "Gauge", "Histogram", "Registry", "answer_lifespan"]

prometheus_client.disable_created_metrics()  # Kubernetes' components do not expose *_created either


async def answer_lifespan(receive, send) -> None:
    """ASGI lifespan for apps with nothing to start or stop (Hypercorn insists on an answer)."""
    while (await receive())["type"] != "lifespan.shutdown":
        await send({"type": "lifespan.startup.complete"})
    await send({"type": "lifespan.shutdown.complete"})


class Registry(CollectorRegistry):
    """A component's metrics. Create them with `registry=` this object; `gauge_of` reads a value
    when scraped. As an ASGI app it answers /metrics, /healthz (ok) and 404 for anything else."""

    def __init__(self) -> None:
        super().__init__(auto_describe=True)

    def gauge_of(self, name: str, documentation: str, read) -> Gauge:
        gauge = Gauge(name, documentation, registry=self)
        gauge.set_function(read)
        return gauge

    def text(self) -> str:
        return prometheus_client.generate_latest(self).decode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await answer_lifespan(receive, send)
        if scope["type"] != "http":
            return
        body, status = (self.text().encode(), 200) if scope["path"] == "/metrics" else \
            (b"ok", 200) if scope["path"] == "/healthz" else (b"not found", 404)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", prometheus_client.CONTENT_TYPE_LATEST.encode())]})
        await send({"type": "http.response.body", "body": body})

    async def serve(self, bind: str, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        from hypercorn.config import Config
        from hypercorn.trio import serve
        config = Config()
        config.bind = [bind]
        config.accesslog = None
        config.errorlog = logging.getLogger("ketch.metrics.http")
        await serve(self, config, task_status=task_status)
